"""The procedural head of the synthetic studio, built in FLAME's file format.

The skin is one structured grid: each vertex is the outermost hit of a ray against a smooth
signed-distance head (cranium, midface, jaw, chin, cheeks, brow ridge, eye sockets, nose,
ears, neck). Rows of head rays leave a point behind the face at fixed elevations, rows of
neck rays leave the neck axis horizontally. Three grid rows are cut into slits: the mouth
(an upper and a lower lip edge that touch at rest, joined by an inner mouth cavity that
runs back into the head) and the two palpebral fissures (pulled open in ray space into
almond openings whose lids wrap separate eyeball spheres).

Expressions that slide skin over the head (lip rounding, closure, smile, brow raise, blink)
are computed by moving the rays and casting again, so the deformed skin stays on the head.
Identity and the remaining expression components are smooth analytic displacement fields.

Frame and units: metres, FLAME's head frame (y up, face towards +z, x towards the subject's
left). Joints: root, neck, jaw, left eye, right eye (parents -1, 0, 1, 1, 1).

Modules, bottom up:

- :mod:`.constants` — layout of the head frame (ray origin, eyes, mouth, neck);
- :mod:`.falloff` — smooth scalar falloffs (smoothstep, Gaussian);
- :mod:`.sdf` — the head's signed distance, its normals, ray casting;
- :mod:`.layout` — ray space and the feature curves drawn in it (fissure, vermilion, brows);
- :mod:`.grid` — the skin grid: rows, columns, slits, faces;
- :mod:`.skin` — casting the grid onto the head: eyelids, lip relief, neck rows;
- :mod:`.template` — the rest mesh: skin, mouth cavity and eyeballs;
- :mod:`.rig` — joints, skinning weights, joint regressor, pose correctives;
- :mod:`.blendshapes` — shape and expression bases;
- :mod:`.annotations` — the 68 landmarks and the region masks;
- :mod:`.model` — :func:`build_head_model`, :func:`pose_head`, :func:`write_head_model`.
"""

from .annotations import MASK_NAMES
from .blendshapes import EXPRESSION_NAMES, SHAPE_NAMES
from .constants import EYE_CENTER, EYE_RADIUS, LID_MARGIN
from .model import build_head_model, pose_head, write_head_model
from .rig import JOINT_NAMES, PARENTS
from .sdf import cast_rays, head_sdf, sdf_normals

__all__ = [
    "EXPRESSION_NAMES",
    "EYE_CENTER",
    "EYE_RADIUS",
    "JOINT_NAMES",
    "LID_MARGIN",
    "MASK_NAMES",
    "PARENTS",
    "SHAPE_NAMES",
    "build_head_model",
    "cast_rays",
    "head_sdf",
    "pose_head",
    "sdf_normals",
    "write_head_model",
]
