"""QC figures (primitives) and the pages each workflow rule registers in the report."""
