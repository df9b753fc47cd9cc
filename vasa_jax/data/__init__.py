"""Datasets and grain input pipelines."""
