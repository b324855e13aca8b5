"""Citewise answer package."""
