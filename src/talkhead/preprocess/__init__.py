"""Preprocess (DAG step 2): what a raw capture lacks: frames decoded from video, colour
calibration, mattes, 2D landmarks, facial segmentation, audio."""
