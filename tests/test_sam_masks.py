"""Geometry of SAM's masks on synthetic masks with exact answers (no SAM weights needed)."""

import numpy as np
import pytest

from microcrystalnet.segment.masks import (CandidateMask, drop_container_masks, drop_pore_masks,
                                           inside_tile_interior, masks_to_labels, tile_windows)


def square(top, left, size, score=1.0, shape=(40, 40)):
    full = np.zeros(shape, bool)
    full[top:top + size, left:left + size] = True
    return CandidateMask.from_full(full, score)


def test_from_full_crops_to_the_bounding_box():
    candidate = square(5, 7, 4)
    assert (candidate.top, candidate.left, candidate.mask.shape, candidate.area) == (5, 7, (4, 4), 16)
    assert CandidateMask.from_full(np.zeros((5, 5), bool), 1.0) is None
    offset = CandidateMask.from_full(np.ones((2, 3), bool), 0.5, offset=(10, 20))
    assert offset.box == (slice(10, 12), slice(20, 23))


def test_best_mask_wins_duplicates_are_skipped_overlaps_resolved():
    a = square(0, 0, 10, score=0.9)       # 100 px
    duplicate = square(1, 1, 10, score=0.8)  # 81 of 100 px taken: duplicate
    b = square(0, 8, 10, score=0.7)       # overlaps a by 20 px: keeps 80 free px
    labels = masks_to_labels([b, duplicate, a], (40, 40))
    assert (labels == 1).sum() == 100 and (labels == 2).sum() == 80 and labels.max() == 2
    assert labels[5, 9] == 1  # the overlap belongs to the better mask


def test_pore_masks_are_dropped():
    foreground = np.zeros((40, 40), bool)
    foreground[:, :20] = True
    on_crystal = square(0, 0, 10)
    half = square(0, 15, 10)   # 5 of 10 columns on crystal: exactly half, kept
    on_pore = square(20, 25, 10)
    kept = drop_pore_masks([on_crystal, half, on_pore], foreground)
    assert kept == [on_crystal, half]
    assert drop_pore_masks([half], foreground, min_crystal_fraction=0.6) == []


def test_cluster_masks_are_dropped_and_their_crystals_kept():
    left, right = square(0, 0, 10), square(0, 10, 10)
    cluster = CandidateMask.from_full(np.pad(np.ones((10, 20), bool), ((0, 30), (0, 20))), 0.99)
    big_single = square(20, 20, 15)
    inner_speck = square(22, 22, 3)  # one small mask inside a crystal is not a cluster
    kept = drop_container_masks([cluster, left, right, big_single, inner_speck])
    assert cluster not in kept and {id(m) for m in kept} == {id(left), id(right), id(big_single), id(inner_speck)}


@pytest.mark.parametrize("shape, tile, overlap", [((2048, 2048), 1024, 256), ((1000, 3000), 1024, 200),
                                                  ((500, 500), 1024, 100), ((1025, 1024), 1024, 300)])
def test_tiles_cover_the_image_with_the_overlap(shape, tile, overlap):
    windows = tile_windows(shape, tile, overlap)
    covered = np.zeros(shape, int)
    for top, left, height, width in windows:
        assert height <= tile and width <= tile and top + height <= shape[0] and left + width <= shape[1]
        covered[top:top + height, left:left + width] += 1
    assert covered.min() >= 1
    tops = sorted({w[0] for w in windows})
    for first, second in zip(tops, tops[1:]):
        assert first + min(tile, shape[0]) - second >= overlap
    with pytest.raises(ValueError):
        tile_windows(shape, 100, 100)


def test_objects_cut_by_an_inner_tile_edge_are_left_to_the_neighbour():
    shape = (100, 150)
    windows = tile_windows(shape, 80, 30)  # two columns of tiles: left 0-80, right 70-150; rows 0-80, 20-100
    left_tile = next(w for w in windows if w[:2] == (0, 0))
    crossing = CandidateMask(10, 60, np.ones((10, 20), bool), 1.0)  # cols 60-80: touches the left tile's inner edge
    inside = CandidateMask(10, 10, np.ones((10, 20), bool), 1.0)
    on_image_edge = CandidateMask(0, 0, np.ones((5, 5), bool), 1.0)  # on the image border: kept
    assert not inside_tile_interior(crossing, left_tile, shape)
    assert inside_tile_interior(inside, left_tile, shape)
    assert inside_tile_interior(on_image_edge, left_tile, shape)
