"""Depth and normal maps per camera and frame (DAG step 3, "depth").

Backends: a portable multi-view stereo in torch (:mod:`talkhead.depth.mvs`, CPU or GPU),
COLMAP (:mod:`talkhead.depth.colmap`), or precomputed maps shipped with a capture
(:mod:`talkhead.depth.precomputed`). The stereo backends search the depth range of
:mod:`talkhead.depth.range` (one for every backend); :mod:`talkhead.depth.stage` runs a
sequence. :mod:`talkhead.depth.io` is the frame format; it imports neither torch nor open3d.
Import submodules directly: this package imports nothing eagerly.
"""
