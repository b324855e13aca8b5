"""Citewise retrieval package."""
