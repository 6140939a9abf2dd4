"""Aligning two takes of one sentence in time (JEAN's expression pairs, NeRF-AD's neutral partners)."""

from __future__ import annotations

import numpy as np


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic time warping of two feature sequences (L1 cost): index pairs (i_k, j_k), k = 1..N, of the
    cheapest monotone alignment from (0, 0) to (m1 - 1, m2 - 1).

    The cumulative cost is filled one anti-diagonal at a time (every cell of a diagonal depends only on the
    two before it), so the loop runs m1 + m2 times over vectorised diagonals.

    Args:
        a: (m1, D) features; b: (m2, D) features.
    """
    m1, m2 = len(a), len(b)
    cost = np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
    acc = np.full((m1 + 1, m2 + 1), np.inf)
    acc[0, 0] = 0.0
    for d in range(2, m1 + m2 + 1):  # d = i + j over 1-based cells
        i = np.arange(max(1, d - m2), min(m1, d - 1) + 1)
        j = d - i
        best = np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    # Walk back from the end: the predecessor with the smallest cumulative cost.
    i, j = m1, m2
    path = [(i - 1, j - 1)]
    while i > 1 or j > 1:
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        i, j = min(steps, key=lambda s: acc[s])
        path.append((i - 1, j - 1))
    pairs = np.array(path[::-1])
    return pairs[:, 0], pairs[:, 1]
