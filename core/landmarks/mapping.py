"""The iBUG 68-point layout and its mapping from MediaPipe FaceMesh's 478 points.

iBUG 68 (300-W) numbering, 0-based here (the usual 1-based number in brackets). "Right"/"left" are
the *subject's*: the subject's right side is on the image's left in a frontal view.

====================  ==========  =====================================================================
group                 0-based     points
====================  ==========  =====================================================================
jaw                   0-16        right ear (image left) along the jaw, chin tip = 8 [9], to left ear
right brow            17-21       outer end -> inner end, along the brow's upper edge
left brow             22-26       inner end -> outer end
nose bridge           27-30       top (between the eyes) -> tip 30 [31]
nose base             31-35       right alar base -> subnasale 33 [34] -> left alar base
right eye             36-41       outer corner, upper lid x2, inner corner, lower lid x2 (clockwise)
left eye              42-47       inner corner, upper lid x2, outer corner, lower lid x2
outer lips            48-59       right corner 48, upper lip -> top centre 51 -> left corner 54,
                                  lower lip -> bottom centre 57 -> back
inner lips            60-67       right inner corner 60, top centre 62, left inner corner 64,
                                  bottom centre 66
====================  ==========  =====================================================================

:data:`MEDIAPIPE_TO_IBUG68` gives, for each iBUG point, the MediaPipe mesh vertices whose mean is
used. The table was written for this project from MediaPipe's published mesh topology
(``mediapipe/modules/face_geometry/data/canonical_face_model_uv_visualization.png`` and the contour
lists ``FACEMESH_FACE_OVAL``, ``FACEMESH_LIPS``, ``FACEMESH_LEFT_EYE``... in
``mediapipe.python.solutions.face_mesh_connections``) and then checked by eye: the 68 points drawn
with their numbers on frames of the two real clips (``bench/landmarks.py --overlay``) land on the jaw
line, the upper brow edges, the nose ridge/base, the eyelid margins and the lip contours. Where the
iBUG point falls between two mesh vertices (jaw points spaced evenly by arc length, eyelid points at
a third of the lid) the two are averaged.

MediaPipe's silhouette ("face oval") does not follow the jaw bone exactly: at the cheeks it runs on
the visible face outline, like iBUG's jaw points do; near the ears iBUG point 0/16 sits at about the
height of the eye corners, which is MediaPipe 127/356. MediaPipe has no landmarks beyond the visible
outline, so in strong profile the hidden-side jaw points lie on the mesh's outline, as with any
2D annotation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

N_IBUG = 68
N_MEDIAPIPE = 478  # 468 mesh vertices + 10 iris points (refine_landmarks=True)

#: For each iBUG point (0-based), the MediaPipe vertices averaged to make it.
MEDIAPIPE_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    # jaw 0-16: the face oval from the right temple (127) over the chin (152) to the left temple (356),
    # points spaced evenly by arc length (pairs average the two oval vertices around the iBUG spot)
    (127,), (234,), (93, 132), (132, 58), (58, 172), (136,), (150, 149), (176, 148), (152,),
    (377, 400), (378, 379), (365,), (397, 288), (288, 361), (361, 323), (454,), (356,),
    # right brow 17-21 (outer -> inner), upper edge
    (70,), (63,), (105,), (66,), (107,),
    # left brow 22-26 (inner -> outer), mirror of the right brow
    (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30: between the eyes (6) down the ridge to the tip (between 4 and 1, the columella top)
    (6,), (197, 195), (5,), (4, 1),
    # nose base 31-35: right alar base, nostril bottom, subnasale (2), nostril bottom, left alar base
    (98,), (97,), (2,), (326,), (327,),
    # right eye 36-41: outer corner 33, upper lid at 1/3 and 2/3, inner corner 133, lower lid at 1/3, 2/3
    (33,), (160, 159), (158, 157), (133,), (153,), (144,),
    # left eye 42-47: inner corner 362, upper lid, outer corner 263, lower lid (mirror of the right eye)
    (362,), (385, 384), (387, 386), (263,), (373,), (380,),
    # outer lips 48-59: right corner 61, upper lip at 1/3, cupid's bow peak 37, top centre 0, ...,
    # left corner 291, lower lip at 1/3 and 2/3, bottom centre 17, ...
    (61,), (40, 39), (37,), (0,), (267,), (270, 269), (291,), (321,), (405, 314), (17,), (181, 84), (91,),
    # inner lips 60-67: right inner corner 78, upper inner lip, top 13, ..., left inner corner 308,
    # lower inner lip, bottom 14, ...
    (78,), (81,), (13,), (311,), (308,), (402,), (14,), (178,),
)

#: iBUG groups (0-based index ranges), for drawing and for per-region errors.
IBUG68_GROUPS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17), "right_brow": (17, 22), "left_brow": (22, 27), "nose_bridge": (27, 31),
    "nose_base": (31, 36), "right_eye": (36, 42), "left_eye": (42, 48), "outer_lips": (48, 60),
    "inner_lips": (60, 68),
}
#: Groups drawn as closed polygons.
CLOSED_GROUPS = frozenset({"right_eye", "left_eye", "outer_lips", "inner_lips"})

#: iBUG index of each point's mirror image (left <-> right), for symmetry checks and flipping.
IBUG68_MIRROR: tuple[int, ...] = (
    *range(16, -1, -1),                      # jaw
    *range(26, 21, -1), *range(21, 16, -1),  # brows
    27, 28, 29, 30,                          # nose bridge
    35, 34, 33, 32, 31,                      # nose base
    45, 44, 43, 42, 47, 46,                  # right eye -> left eye
    39, 38, 37, 36, 41, 40,                  # left eye -> right eye
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lips
    64, 63, 62, 61, 60, 67, 66, 65,          # inner lips
)


def _gather_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(68, 2) vertex indices and (68, 2) weights: single vertices are repeated with weight 1/2."""
    idx = np.array([(v[0], v[-1]) for v in MEDIAPIPE_TO_IBUG68], np.int64)
    return idx, np.full(idx.shape, 0.5, np.float32)


_IDX, _W = _gather_arrays()


def mediapipe_to_ibug68(dense: np.ndarray) -> np.ndarray:
    """Map MediaPipe landmarks to the 68 iBUG points.

    Args:
        dense: (..., 468 or 478, D) MediaPipe landmarks (any D: 2 for pixels, 3 with depth).

    Returns:
        (..., 68, D) float32.
    """
    arr = np.asarray(dense, np.float32)
    if arr.ndim < 2 or arr.shape[-2] < 468:
        raise ValueError(f"expected (..., 478, D) MediaPipe landmarks, got shape {arr.shape}")
    picked = arr[..., _IDX, :]  # (..., 68, 2, D)
    return (picked * _W[..., None]).sum(axis=-2)


def ibug68_segments() -> list[tuple[int, int]]:
    """Index pairs to connect when drawing the 68 points (polylines, closed for eyes and lips)."""
    segments: list[tuple[int, int]] = []
    for name, (start, stop) in IBUG68_GROUPS.items():
        segments += [(i, i + 1) for i in range(start, stop - 1)]
        if name in CLOSED_GROUPS:
            segments.append((stop - 1, start))
    return segments


#: The six iBUG points of each eye in the eye-aspect-ratio order p1..p6 (outer/inner corner, two upper-lid
#: points, the other corner, two lower-lid points; p2-p6 and p3-p5 face each other across the opening).
IBUG68_EYES: tuple[tuple[int, ...], tuple[int, ...]] = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))


def eye_aspect_ratio(points: Any) -> Any:
    """Eye openness of the subject's right and left eye from iBUG-68 points (Soukupová & Čech 2016):
    ``EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)``, about 0.3 for an open eye and near 0 for a closed one,
    the same whatever the face's size in the picture.

    Works on numpy arrays and torch tensors alike (only indexing and arithmetic), 2D pixels or 3D points.

    Args:
        points: (..., 68, D) landmarks.

    Returns:
        (..., 2) the right eye's ratio, then the left's.
    """
    def norm(v: Any) -> Any:
        return ((v * v).sum(-1) + 1e-12) ** 0.5

    ratios = []
    for eye in IBUG68_EYES:
        p = [points[..., i, :] for i in eye]
        ratios.append((norm(p[1] - p[5]) + norm(p[2] - p[4])) / (2.0 * norm(p[0] - p[3])))
    if isinstance(points, np.ndarray):
        return np.stack(ratios, -1)
    import torch  # a tensor (this module stays importable without torch)

    return torch.stack(ratios, -1)
