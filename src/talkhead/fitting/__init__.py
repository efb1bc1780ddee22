"""Fitting parametric head models to multi-view landmarks and points."""
