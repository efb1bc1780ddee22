"""Layout of the procedural head: where the ray origin, the eyes, the mouth and the neck are.

Metres, FLAME's head frame (y up, face towards +z, x towards the subject's left); paired
features are given for the subject's left (x > 0) and mirrored. Angles are in ray space
(:mod:`.layout`): elevation above and azimuth around the head-ray origin.
"""

from __future__ import annotations

import numpy as np

RAY_ORIGIN = np.array([0.0, 0.020, 0.015])  # head rays start here (behind the nose)
NECK_AXIS_Z = -0.020  # neck rays start on the vertical line x = 0, z = NECK_AXIS_Z
NECK_BOTTOM_Y = -0.165
EYE_CENTER = np.array([0.0315, 0.031, 0.061])  # left eyeball centre
EYE_RADIUS = 0.0125
LID_OFFSET = 0.0015  # eyelid skin lies on a sphere this much outside the eyeball
LID_MARGIN = 0.0008  # the lid edges roll in to this distance from the eyeball
FISSURE_HALF_ANGLE = np.deg2rad(59.0)  # canthi, seen from the eye centre
MOUTH_ELEVATION = np.deg2rad(-38.5)  # elevation of the mouth slit (ray space)
MOUTH_CORNER_AZIMUTH = np.deg2rad(19.5)
