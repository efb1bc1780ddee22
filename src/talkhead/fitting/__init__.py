"""Fitting a parametric model to a sequence: optimiser loop, schedules, correspondences, losses."""
