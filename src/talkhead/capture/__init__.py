"""Capture trees (DAG step 1): layout (paths), calibration, sequence, readers, masks (the
face-mask policy) and the validator."""
