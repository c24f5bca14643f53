import numpy as np
import pytest
from scipy import ndimage as ndi

from microcrystalnet.config import SegmentConfig
from microcrystalnet.io import to_unit_range
from microcrystalnet.metrics import match_instances
from microcrystalnet.segment import segment_crystals, tidy_labels
from microcrystalnet.synth import SceneSpec, render_scene


def test_tidy_keeps_largest_piece_fills_pore_holes_and_renumbers():
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8] = 5
    labels[4, 4] = 0          # a pore hole: filled
    labels[15:17, 15:17] = 5  # a stray second piece of crystal 5: dropped
    labels[10:14, 2:6] = 9
    tidy = tidy_labels(labels)
    assert tidy.dtype == np.int32
    assert sorted(np.unique(tidy)) == [0, 1, 2]
    assert (tidy == 1).sum() == 36 and tidy[4, 4] == 1 and tidy[15, 15] == 0
    assert (tidy == 2).sum() == 16


def test_tidy_does_not_fill_a_hole_that_is_another_crystal():
    labels = np.zeros((20, 20), np.int32)
    labels[2:12, 2:12] = 1
    labels[5:8, 5:8] = 2
    tidy = tidy_labels(labels)
    assert (tidy == 2).sum() == 9 and (tidy == 1).sum() == 91


def test_tidy_area_limits_and_border_exclusion():
    labels = np.zeros((20, 20), np.int32)
    labels[0:4, 5:9] = 1      # touches the top border, 16 px
    labels[8:10, 8:10] = 2    # 4 px
    labels[12:18, 12:18] = 3  # 36 px
    assert sorted(np.unique(tidy_labels(labels, min_area_px=5))) == [0, 1, 2]
    assert sorted(np.unique(tidy_labels(labels, max_area_px=20))) == [0, 1, 2]
    assert np.count_nonzero(np.unique(tidy_labels(labels, exclude_border=True))) == 2


def test_tidy_drops_crystals_on_burned_in_marks_and_cuts_the_marks_out_of_the_others():
    from microcrystalnet.segment.postprocess import tidy_labels_counting_drops

    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 2:22] = 1     # the scale bar, found as a crystal
    labels[8:16, 2:10] = 2    # a crystal the bar's text was drawn across: 64 px, 16 of them on it
    labels[8:16, 20:28] = 3   # a crystal away from it
    marks = np.zeros(labels.shape, bool)
    marks[2:6, 2:22] = True
    marks[8:10, 2:10] = True
    tidy, dropped = tidy_labels_counting_drops(labels, not_sample=marks)
    assert dropped["on_marks"] == 1 and tidy.max() == 2
    assert np.count_nonzero(tidy == 1) == 48 and not (tidy > 0)[marks].any()
    assert np.count_nonzero(tidy == 2) == 64
    assert tidy_labels_counting_drops(labels)[1]["on_marks"] == 0  # without marks: kept as found
    inside = np.zeros(labels.shape, bool)
    inside[12:14, 4:8] = True  # text drawn inside crystal 2: it goes on under it, no hole
    tidy, dropped = tidy_labels_counting_drops(labels, not_sample=marks | inside)
    assert np.count_nonzero(tidy == 1) == 48 and dropped["on_marks"] == 1


@pytest.mark.parametrize("backend", ["watershed", "learned"])
@pytest.mark.parametrize("seed", [21, 22])
def test_segmenters_reach_f1_085_on_synthetic_scenes(seed, backend):
    scene = render_scene(SceneSpec(shape=(512, 512), pixel_size_um=0.04, seed=seed))
    labels = segment_crystals(to_unit_range(scene.image), scene.pixel_size_um, SegmentConfig(backend=backend)).labels
    match = match_instances(scene.labels, labels, 0.5)
    assert match.f1 >= 0.85, match


def test_segmentation_output_follows_the_label_contract(small_scene):
    labels = segment_crystals(to_unit_range(small_scene.image), small_scene.pixel_size_um).labels
    assert labels.dtype == np.int32 and labels.shape == small_scene.image.shape
    n = labels.max()
    assert sorted(np.unique(labels)) == list(range(n + 1))
    min_px = SegmentConfig().min_crystal_area_um2 / small_scene.pixel_size_um ** 2
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        region = labels[box] == index
        assert ndi.label(region, structure=np.ones((3, 3)))[1] == 1
        assert region.sum() >= min_px


def test_border_option_drops_crystals_on_the_border(small_scene):
    image = to_unit_range(small_scene.image)
    labels = segment_crystals(image, small_scene.pixel_size_um, SegmentConfig(exclude_border=True)).labels
    assert labels.max() > 0
    assert not np.any(labels[0]) and not np.any(labels[-1]) and not np.any(labels[:, 0]) and not np.any(labels[:, -1])


def test_segmentation_refuses_a_stack():
    with pytest.raises(ValueError, match="2D"):
        segment_crystals(np.zeros((2, 64, 64)), 0.01)


def test_unimodal_noise_is_not_split_into_crystals_unless_a_threshold_is_given():
    from microcrystalnet.config import WatershedConfig

    noise = np.random.default_rng(1).normal(0.3, 0.02, (256, 256)).astype(np.float32)
    for backend in ("watershed", "learned"):
        assert segment_crystals(noise, 0.01, SegmentConfig(backend=backend)).labels.max() == 0, backend
    forced = SegmentConfig(backend="watershed", watershed=WatershedConfig(foreground_threshold=0.3))
    assert segment_crystals(noise, 0.01, forced).labels.max() > 0
