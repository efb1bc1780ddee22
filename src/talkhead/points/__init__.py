"""Back-projection of depth maps to world points and 2D landmarks to 3D (DAG step 4, "points")."""
