import numpy as np
import pytest
from scipy import ndimage as ndi

from microcrystalnet.classes import CLASS_CODES
from microcrystalnet.synth import SceneSpec, render_scene


def test_same_seed_same_scene_and_other_seed_other_scene(small_scene):
    again = render_scene(small_scene.spec)
    assert np.array_equal(again.image, small_scene.image)
    assert np.array_equal(again.labels, small_scene.labels)
    assert again.crystal_classes == small_scene.crystal_classes
    other = render_scene(SceneSpec(shape=(512, 512), pixel_size_um=0.04, seed=8))
    assert not np.array_equal(other.labels, small_scene.labels)


def test_ground_truth_is_one_solid_region_per_crystal_with_a_class(small_scene):
    labels = small_scene.labels
    assert labels.dtype == np.int32 and labels.shape == small_scene.image.shape
    assert labels.max() == small_scene.n_crystals == len(small_scene.crystal_classes)
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        assert box is not None, f"crystal {index} is not visible"
        _, pieces = ndi.label(labels[box] == index, structure=np.ones((3, 3)))
        assert pieces == 1, f"crystal {index} is split into {pieces} pieces"
    assert set(small_scene.crystal_classes) == set(CLASS_CODES)


def test_scene_has_micrite_content_touching_crystals_and_sem_noise(small_scene):
    spec = small_scene.spec
    covered = np.count_nonzero(small_scene.labels) / small_scene.labels.size
    assert spec.coverage <= covered < spec.coverage + 0.1
    # crystals 1-4 um: equivalent diameters of whole crystals stay in that range (partly hidden ones are smaller)
    areas = np.bincount(small_scene.labels.ravel())[1:] * spec.pixel_size_um ** 2
    diameters = np.sqrt(4 * areas / np.pi)
    assert diameters.max() <= 4.0 and np.median(diameters) > 1.0
    # crystals touch: some pixel pairs across 4-neighbours belong to two different crystals
    left, right = small_scene.labels[:, :-1], small_scene.labels[:, 1:]
    assert np.count_nonzero((left > 0) & (right > 0) & (left != right)) > 100
    # crystals brighter than pores, and shot noise present
    image = small_scene.image.astype(float)
    assert image[small_scene.labels > 0].mean() > image[small_scene.labels == 0].mean() + 40
    assert np.abs(image / 255 - small_scene.clean).std() > 0.03


def test_default_scene_is_the_papers_format():
    spec = SceneSpec()
    assert spec.shape == (2048, 2048) and spec.pixel_size_um == pytest.approx(0.01)
    assert spec.crystal_size_um == (1.0, 4.0)


@pytest.mark.parametrize("bad", [dict(shape=(10, 10)), dict(pixel_size_um=0), dict(crystal_size_um=(3, 1)),
                                 dict(coverage=1.5), dict(class_weights=(1, 1, 1))])
def test_invalid_specs_are_refused(bad):
    with pytest.raises(ValueError):
        SceneSpec(**bad)


def test_class_weights_select_classes():
    scene = render_scene(SceneSpec(shape=(256, 256), pixel_size_um=0.04, class_weights=(0, 0, 0, 1), seed=3))
    assert scene.n_crystals > 3 and set(scene.crystal_classes) == {"RA/SA"}
