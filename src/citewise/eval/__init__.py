"""Offline evaluation: BEIR datasets, retrieval metrics, evaluation runs and reports."""
