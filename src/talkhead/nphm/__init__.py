"""The implicit head model (NPHM-style): identity SDF, expression deformation, fitting, meshing."""
