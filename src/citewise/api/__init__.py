"""Citewise api package."""
