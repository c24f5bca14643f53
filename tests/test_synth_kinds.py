"""Scene kinds beside the default (mosaic, clusters, matrix), the SEM effects and the randomised
training scenes of :mod:`microcrystalnet.synth`."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import clear_border

from microcrystalnet.classes import CLASS_CODES, UNCLEAR
from microcrystalnet.synth import SCENE_KINDS, SceneSpec, SemEffects, random_training_scene, render_scene
from microcrystalnet.synth.sem import add_detector_shading

NEW_KINDS = ("mosaic", "clusters", "matrix")


def scene_spec(kind: str, diameter_px: float, seed: int = 1, **extra) -> SceneSpec:
    pixel_size_um = 0.02
    median_um = diameter_px * pixel_size_um
    coverage = {"clusters": 0.5, "matrix": 0.3}.get(kind, 0.62)
    return SceneSpec(shape=(192, 192), pixel_size_um=pixel_size_um, kind=kind, coverage=coverage,
                     crystal_size_um=(median_um / 1.4, median_um * 1.4), seed=seed, **extra)


def assert_exact_labels(scene):
    labels = scene.labels
    assert labels.dtype == np.int32 and labels.shape == scene.image.shape and scene.image.dtype == np.uint8
    assert scene.n_crystals > 3 and labels.max() == scene.n_crystals
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        assert box is not None, f"crystal {index} is not visible"
        _, pieces = ndi.label(labels[box] == index, structure=np.ones((3, 3)))
        assert pieces == 1, f"crystal {index} is split into {pieces} pieces"


def touching_pairs(labels):
    left, right = labels[:, :-1], labels[:, 1:]
    return np.count_nonzero((left > 0) & (right > 0) & (left != right))


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_each_kind_has_one_solid_region_per_crystal_and_a_class(kind):
    scene = render_scene(scene_spec(kind, 20))
    assert_exact_labels(scene)
    expected = {UNCLEAR.code} if kind == "mosaic" else set(CLASS_CODES)
    assert set(scene.crystal_classes) <= expected


def test_mosaic_fills_space_with_darker_boundaries():
    scene = render_scene(scene_spec("mosaic", 24, boundary_darkness=0.4, micropore_fraction=0.3))
    assert np.count_nonzero(scene.labels) / scene.labels.size > 0.7
    image = scene.image.astype(float)
    assert image[scene.labels == 0].mean() < image[scene.labels > 0].mean() - 10
    # crystals meet only across boundaries: no two crystals share an edge
    assert touching_pairs(scene.labels) == 0 and touching_pairs(scene.labels.T) == 0


def test_clusters_have_touching_partly_hidden_particles():
    scene = render_scene(scene_spec("clusters", 24, max_overlap_fraction=0.5, min_visible_fraction=0.4))
    assert touching_pairs(scene.labels) > 50
    # painter's order hides parts: some particles show much less than a whole outline of their size
    areas = np.bincount(clear_border(scene.labels).ravel())[1:]
    assert np.min(areas[areas > 0]) < 0.6 * np.pi / 4 * scene.spec.median_diameter_px ** 2


def test_matrix_is_textured_and_close_in_gray_level():
    scene = render_scene(scene_spec("matrix", 20, matrix_texture="lamellae", matrix_contrast=0.12))
    clean, labels = scene.clean, scene.labels
    assert clean[labels == 0].std() > 0.03
    contrast = clean[labels > 0].mean() - clean[labels == 0].mean()
    assert 0.02 < contrast < 0.3


@pytest.mark.parametrize("kind", NEW_KINDS)
@pytest.mark.parametrize("diameter_px", [12, 40])
def test_median_equivalent_diameter_is_the_requested_one(kind, diameter_px):
    spec = scene_spec(kind, diameter_px, seed=diameter_px)
    scene = render_scene(spec)
    areas = np.bincount(clear_border(scene.labels).ravel())[1:]
    diameters = np.sqrt(4 * areas[areas > 0] / np.pi)
    assert np.median(diameters) == pytest.approx(spec.median_diameter_px, rel=0.25)


def test_training_scenes_are_deterministic_per_seed_and_cover_every_kind():
    first = random_training_scene(5)
    again = random_training_scene(5)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.labels, again.labels)
    assert not np.array_equal(random_training_scene(6).image, first.image)
    kinds = set()
    for seed in range(12):
        scene = random_training_scene(seed, shape=(128, 160))
        assert scene.image.shape == (128, 160)
        assert scene.labels.max() == scene.n_crystals > 0
        kinds.add(scene.spec.kind)
    assert kinds == set(SCENE_KINDS)


def test_scan_line_noise_and_charging_show_up_along_rows():
    plain = render_scene(scene_spec("clusters", 20))
    streaky = render_scene(scene_spec("clusters", 20, sem=SemEffects(row_offset_std=0.05, charging_streaks=5)))
    assert np.array_equal(plain.labels, streaky.labels)
    row_means = [s.image.astype(float).mean(axis=1) for s in (plain, streaky)]
    assert np.diff(row_means[1]).std() > 2 * np.diff(row_means[0]).std()


def test_detector_shading_lights_the_side_facing_it_and_shadows_the_far_side():
    labels = np.zeros((64, 64), np.int32)
    rows, cols = np.indices(labels.shape)
    labels[(rows - 32) ** 2 + (cols - 32) ** 2 < 12 ** 2] = 1
    flat = np.full(labels.shape, 0.5, np.float32)
    # detector towards +col: the right side of the disc is lit, a shadow falls left of it
    shaded = add_detector_shading(flat, labels, direction_rad=0.0, strength=0.2, shadow_length_px=5)
    assert shaded[32, 40:44].mean() > shaded[32, 20:24].mean() + 0.1
    assert shaded[32, 16:19].mean() < 0.45 and shaded[32, 50:55].mean() == pytest.approx(0.5)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        SceneSpec(kind="foam")  # type: ignore[arg-type]
