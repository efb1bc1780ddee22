"""Capture trees: layouts, the sequence reader, masks and the validator (DAG step 1)."""
