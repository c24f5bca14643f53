"""The polygon filler gives scikit-image's pixels (the synthetic scenes, and the shipped
segmenter's training data with them, depend on every one of them)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import polygon as skimage_polygon

from microcrystalnet.polygon_fill import filled_polygon


def test_a_square_includes_its_edges_and_corners():
    rows, cols = filled_polygon(np.array([0.0, 0, 4, 4]), np.array([0.0, 4, 4, 0]))
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(r, c) for r in range(5) for c in range(5)]
    rows, cols = filled_polygon(np.array([0.0, 0, 4, 4]), np.array([0.0, 4, 4, 0]), shape=(3, 10))
    assert rows.max() == 2 and len(rows) == 15
    assert filled_polygon(np.array([-5.0, -5, -2]), np.array([1.0, 3, 2]), shape=(10, 10))[0].size == 0


def random_polygon(rng: np.random.Generator, kind: int) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(1, 40))
    if kind == 0:  # anywhere, self-intersecting, partly outside
        return rng.uniform(-5, 60, n), rng.uniform(-5, 60, n)
    if kind == 1:  # vertices on pixel centres and half-way between: edges through pixel centres
        return rng.integers(-3, 30, n) / 2.0, rng.integers(-3, 30, n) / 2.0
    if kind == 2:  # star-shaped, as crystals are drawn
        angles, radii = np.sort(rng.uniform(0, 2 * np.pi, n)), rng.uniform(3, 25, n)
        return 30 + radii * np.sin(angles), 30 + radii * np.cos(angles)
    # vertices within (or just outside) scikit-image's 1e-12 of a pixel centre
    jitter = rng.choice([0.0, 1e-13, -1e-13, 1e-11, 0.5], (2, n))
    return rng.integers(0, 20, n) + jitter[0], rng.integers(0, 20, n) + jitter[1]


@pytest.mark.parametrize("kind", range(4), ids=["random", "half-pixel", "star", "near-vertex"])
def test_every_pixel_is_scikit_images(kind):
    rng = np.random.default_rng(kind)
    for trial in range(1500):
        rows, cols = random_polygon(rng, kind)
        shape = None if trial % 5 == 0 else tuple(int(side) for side in rng.integers(1, 70, 2))
        expected, found = skimage_polygon(rows, cols, shape), filled_polygon(rows, cols, shape)
        assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1]), (rows, cols, shape)
