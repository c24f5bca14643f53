"""Scene kinds beside the default (mosaic, clusters, matrix), the SEM effects and the randomised
training scenes of :mod:`microcrystalnet.synth`."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops
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


# --- the matrix kind: a matrix full of structure that is not particles ---------------------------

def matrix_and_particle_interiors(scene, margin_px=3):
    inside = scene.labels > 0
    matrix = ndi.binary_erosion(~inside, iterations=margin_px, border_value=1)
    interiors = ndi.binary_erosion(inside, iterations=margin_px)
    return matrix, interiors


def band_energy(image, region, sigma_px):
    """Standard deviation, inside ``region``, of the difference of Gaussians at ``sigma_px`` and twice that."""
    band = ndi.gaussian_filter(image, sigma_px) - ndi.gaussian_filter(image, 2 * sigma_px)
    return band[region].std()


@pytest.mark.parametrize("texture", ["speckle", "lamellae", "flakes"])
def test_matrix_has_texture_at_several_scales(texture):
    scene = render_scene(scene_spec("matrix", 24, matrix_texture=texture, matrix_contrast=0.3))
    assert_exact_labels(scene)
    matrix, _ = matrix_and_particle_interiors(scene)
    energies = [band_energy(scene.clean.astype(float), matrix, sigma) for sigma in (1, 2, 4, 8, 16)]
    # every scale from a pixel to a particle's size carries texture, none dominates
    assert min(energies) > 0.004 and min(energies) > 0.15 * max(energies), energies


def test_matrix_scene_is_the_same_per_seed():
    spec = scene_spec("matrix", 16, matrix_texture="flakes", max_elongation=2.0)
    first, again = render_scene(spec), render_scene(spec)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.labels, again.labels)
    assert first.crystal_classes == again.crystal_classes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matrix_particles_are_brighter_and_smoother_than_the_matrix(seed):
    scene = render_scene(scene_spec("matrix", 24, seed=seed, matrix_contrast=0.3, class_weights=(0, 0, 0, 1)))
    clean = scene.clean.astype(float)
    matrix, interiors = matrix_and_particle_interiors(scene)
    assert clean[interiors].mean() > clean[matrix].mean() + 0.1
    # roughness: local standard deviation over 5 x 5 px
    mean = ndi.uniform_filter(clean, 5)
    roughness = np.sqrt(np.clip(ndi.uniform_filter(clean ** 2, 5) - mean ** 2, 0, None))
    assert roughness[interiors].mean() < 0.6 * roughness[matrix].mean()
    # yet the matrix's brightest spots come at least halfway to the particles' brightness
    halfway = (clean[matrix].mean() + clean[interiors].mean()) / 2
    assert np.quantile(clean[matrix], 0.999) > halfway


def test_sunk_particles_lose_their_edges_to_the_matrix_only():
    on_top = render_scene(scene_spec("matrix", 24, burial_fraction=0.0))
    sunk = render_scene(scene_spec("matrix", 24, burial_fraction=0.5))
    assert_exact_labels(sunk)
    # the same particles, each visible only where it was without burial, and less of it
    assert np.all(on_top.labels[sunk.labels > 0] > 0)
    assert np.count_nonzero(sunk.labels) < 0.9 * np.count_nonzero(on_top.labels)
    covered = (on_top.labels > 0) & (sunk.labels == 0)
    assert np.abs(sunk.clean[covered] - on_top.clean[covered]).mean() > 0.02


def test_particles_are_stretched_up_to_max_elongation():
    def median_aspect(scene):
        regions = regionprops(clear_border(scene.labels))
        return np.median([r.axis_major_length / max(r.axis_minor_length, 1) for r in regions])

    round_ = render_scene(scene_spec("matrix", 24, class_weights=(0, 0, 0, 1), burial_fraction=0.0))
    long_ = render_scene(scene_spec("matrix", 24, class_weights=(0, 0, 0, 1), burial_fraction=0.0, max_elongation=4.0))
    assert_exact_labels(long_)
    assert median_aspect(round_) < 1.3 < 1.6 < median_aspect(long_)


def test_training_matrix_scenes_hold_tiny_to_large_particles():
    ratios = []
    for seed in range(40):
        scene = random_training_scene(seed, shape=(128, 128))
        if scene.spec.kind == "matrix":
            low, high = scene.spec.crystal_size_um
            ratios.append(high / low)
    assert len(ratios) >= 3 and min(ratios) > 4


def test_a_substrate_film_draws_bright_curved_edges_on_the_substrate_only():
    bare = render_scene(scene_spec("clusters", 24, seed=4))
    filmed = render_scene(scene_spec("clusters", 24, seed=4, substrate_film=0.3))
    assert np.array_equal(bare.labels, filmed.labels)  # the same particles: the film is substrate texture
    substrate = ndi.binary_erosion(bare.labels == 0, iterations=3)
    added = filmed.clean - bare.clean
    assert np.abs(added[ndi.binary_erosion(bare.labels > 0, iterations=3)]).max() < 0.01  # particles unchanged
    assert added[substrate].max() > 0.15 and 0.02 < np.mean(added[substrate] > 0.05) < 0.5  # thin bright lines
    filmed_scenes = [scene.spec.substrate_film > 0 for scene in map(random_training_scene, range(30))
                     if scene.spec.kind == "clusters"]
    assert 0 < sum(filmed_scenes) < len(filmed_scenes)  # training scenes: some with a film, some without


@pytest.mark.parametrize("bad", [dict(burial_fraction=1.0), dict(burial_fraction=-0.1), dict(max_elongation=0.5),
                                 dict(matrix_texture="plaid"), dict(substrate_film=-0.1)])
def test_invalid_matrix_and_substrate_specs_are_refused(bad):
    with pytest.raises(ValueError):
        SceneSpec(kind="matrix", **bad)
