import numpy as np

from core.audio.align import dtw_path


def test_dtw_aligns_a_slowed_copy() -> None:
    t = np.linspace(0, 1, 20)
    a = np.stack([np.sin(6 * t), np.cos(4 * t)], 1)
    b = np.repeat(a, 2, 0)  # the same sequence at half speed
    i, j = dtw_path(a, b)
    assert i[0] == 0 and j[0] == 0 and i[-1] == 19 and j[-1] == 39
    assert np.all(np.diff(i) >= 0) and np.all(np.diff(j) >= 0)
    assert np.abs(a[i] - b[j]).sum() < 1e-9  # every aligned pair is the same sample
    cost_i, cost_j = dtw_path(a, b[::-1])
    assert np.abs(a[cost_i] - b[::-1][cost_j]).sum() > 0.1  # a reversed copy cannot align
