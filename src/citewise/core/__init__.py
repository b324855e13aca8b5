"""Citewise core package."""
