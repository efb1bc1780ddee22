"""Neural parametric head model: training on the head model's family, fitting, marching cubes."""
