"""Citewise eval package."""
