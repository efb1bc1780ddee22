"""Camera geometry, rotations, triangulation, depth maps and mesh distances (no I/O, no stage)."""
