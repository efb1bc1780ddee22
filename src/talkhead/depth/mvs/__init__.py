"""Portable multi-view stereo in torch (the ``torch`` depth backend).

Per frame and per reference camera:

1. **Neighbours** — the ``n_neighbours`` cameras with the smallest angle between viewing
   directions, excluding nearly identical views and very wide baselines
   (:mod:`.neighbours`).
2. **Coarse plane sweep** — fronto-parallel planes sampled uniformly in inverse depth over
   the view's depth range (from triangulated landmarks or from the rig geometry:
   :mod:`talkhead.depth.range`), at ``coarse_scale`` of the image size. Each neighbour is
   warped onto the reference pixels with ``grid_sample``; the photometric cost is
   ``1 - ZNCC`` over a square window on grayscale, aggregated over the neighbours as the mean
   of the best ``n_best``. Winner-take-all, then a parabola fit around the minimum gives
   sub-plane precision (:mod:`.sweep`).
3. **Narrow-band refinement** — ``refine_steps`` sweeps at full resolution over
   ``refine_hypotheses`` inverse-depth offsets of the (median then mean filtered,
   :mod:`.filters`) previous estimate, each band narrower than the last: the matching
   windows follow the surface, which brings the error below a millimetre (:mod:`.refine`).
4. **Filtering** — photometric (cost, texture, band edge), multi-view geometric consistency
   (:mod:`.consistency`: reproject into the other views, compare with their depth, reproject
   back), and a valid-aware median filter (:mod:`.filters`).
5. **Normals** from a plane fit over a window of back-projected pixels
   (:func:`talkhead.geometry.normals.normals_from_depth_plane_fit`), and a **confidence** in
   [0, 1] from the ZNCC score and the fraction of consistent views.

:mod:`.estimate` runs the steps (``estimate_depth_batch``, ``estimate_depth``,
``estimate_depth_sequence``); :mod:`.config` holds the settings (``MVSConfig``); :mod:`.crops`
the mask bounding boxes the work is restricted to. Every step is batched over frames x views
and runs on any torch device. Conventions: metres, OpenCV cameras, ``world_2_cam``
extrinsics, pixel centres at integer coordinates. This package imports nothing eagerly.
"""
