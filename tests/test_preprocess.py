"""The preprocessing steps on images with exact expectations, the chain, the SNR, and Noise2Void."""

import gc
import logging
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from microcrystalnet.config import PreprocessConfig
from microcrystalnet.io import to_unit_range
from microcrystalnet.preprocess import (Noise2VoidModel, Noise2VoidModelError, preprocess, reference_scores, snr_db,
                                        train_noise2void)
from microcrystalnet.preprocess.filters import close_gray, non_local_means, open_gray, unsharp
from microcrystalnet.synth import SceneSpec, render_scene

SCENE = SceneSpec(shape=(256, 256), pixel_size_um=0.04, seed=3)


@pytest.fixture(scope="module")
def scene():
    return render_scene(SCENE)


def test_opening_removes_specks_smaller_than_the_footprint_and_keeps_larger_objects():
    image = np.full((40, 40), 0.2, np.float32)
    image[5:8, 5:8] = 0.9      # 3 x 3 speck
    image[20:29, 20:29] = 0.9  # 9 x 9 object
    opened = open_gray(image, 5)
    assert np.all(opened[5:8, 5:8] == pytest.approx(0.2)) and np.all(opened[20:29, 20:29] == pytest.approx(0.9))
    assert image[6, 6] == pytest.approx(0.9)  # input untouched


def test_closing_fills_holes_smaller_than_the_footprint():
    image = np.full((40, 40), 0.8, np.float32)
    image[10:13, 10:13] = 0.1
    image[25:34, 25:34] = 0.1
    closed = close_gray(image, 5)
    assert np.all(closed[10:13, 10:13] == pytest.approx(0.8)) and np.all(closed[25:34, 25:34] == pytest.approx(0.1))


def test_non_local_means_raises_psnr_and_snr(scene):
    noisy = to_unit_range(scene.image)
    denoised = non_local_means(noisy)
    assert reference_scores(denoised, scene.clean)["psnr_db"] > reference_scores(noisy, scene.clean)["psnr_db"] + 5
    assert snr_db(denoised) > snr_db(noisy) + 5


def test_unsharp_mask_steepens_an_edge():
    edge = np.zeros((20, 20), np.float32)
    edge[:, 10:] = 0.5
    edge += 0.25
    sharpened = unsharp(edge, 2.0, 1.0)
    assert sharpened[10, 10] > edge[10, 10] and sharpened[10, 9] < edge[10, 9]


def test_snr_definition_on_known_images():
    rng = np.random.default_rng(0)
    noise_only = (0.5 + rng.normal(0, 0.05, (256, 256))).astype(np.float32)
    assert snr_db(noise_only) == pytest.approx(0.0, abs=1.0)  # spread equals noise: 0 dB
    contrast = np.zeros((256, 256), np.float32)
    contrast[:, 128:] = 1.0
    noisy = contrast * 0.5 + 0.25 + rng.normal(0, 0.025, contrast.shape).astype(np.float32)
    assert snr_db(noisy) == pytest.approx(20 * np.log10(0.25 / 0.025), abs=1.0)  # std 0.25 / noise 0.025


def test_chain_reports_every_step_skips_n2v_without_a_model_and_follows_the_configured_order(scene):
    image = to_unit_range(scene.image)
    result, reports = preprocess(image, SCENE.pixel_size_um, PreprocessConfig(), None, scene.clean)
    assert [r.step for r in reports] == ["input", "nlm", "n2v", "unsharp", "opening", "closing"]
    n2v = reports[2]
    assert not n2v.applied and "microcrystalnet n2v train" in n2v.note
    assert all(r.psnr_db is not None and r.ssim is not None for r in reports)
    assert result.dtype == np.float32 and result.shape == image.shape and 0 <= result.min() <= result.max() <= 1
    reordered, reports = preprocess(image, SCENE.pixel_size_um, PreprocessConfig(steps=("opening", "nlm")))
    assert [r.step for r in reports] == ["input", "opening", "nlm"]
    unchanged, reports = preprocess(image, SCENE.pixel_size_um, PreprocessConfig(steps=()))
    assert np.array_equal(unchanged, image) and len(reports) == 1
    with pytest.raises(ValueError, match=r"steps\.1\n  Input should be .nlm., .n2v."):
        PreprocessConfig(steps=("nlm", "median"))


def test_footprint_and_radius_follow_the_pixel_size(scene):
    image = to_unit_range(scene.image)
    _, at_paper_scale = preprocess(image, 0.01, PreprocessConfig(steps=("opening",)))
    opened, coarse = preprocess(image, 0.04, PreprocessConfig(steps=("opening",)))
    assert at_paper_scale[1].note == "5 x 5 px" and coarse[1].note.startswith("1 x 1 px: leaves the image as it is")
    assert np.array_equal(opened, image)
    _, sharpened = preprocess(image, 0.01, PreprocessConfig(steps=("unsharp",)))
    unchanged, fine = preprocess(image, 0.1, PreprocessConfig(steps=("unsharp",)))
    assert sharpened[1].note == "radius 2 px" and fine[1].note.startswith("radius 0.2 px: leaves the image as it is")
    assert np.abs(unchanged - image).max() < 0.002


@pytest.fixture
def temporary_folder(tmp_path, monkeypatch):
    """Python's temporary folder for the test, to see what is left in it."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_noise2void_trains_saves_bioimageio_reloads_and_denoises(scene, tmp_path, temporary_folder):
    logging.getLogger("lightning").setLevel(logging.ERROR)
    from microcrystalnet.frameworks import import_careamics

    import_careamics()  # lightning sets its loggers' levels when imported: ours are taken after that
    own_levels = {name: logging.getLogger(name).level for name in ("lightning.pytorch", "lightning.fabric")}
    noisy = to_unit_range(scene.image)
    archive = tmp_path / "n2v.zip"
    trained = train_noise2void([noisy], archive, steps=40)  # +4.9-5.1 dB (seeds 0, 1), 100 steps +5.3 dB
    assert archive.is_file()
    import zipfile

    names = zipfile.ZipFile(archive).namelist()
    assert "rdf.yaml" in names and any(name.endswith(".pth") for name in names)  # bioimage.io model package
    reloaded = Noise2VoidModel.load(archive)
    denoised = reloaded.denoise(noisy, tile_px=128)
    assert np.allclose(denoised, trained.denoise(noisy, tile_px=128), atol=1e-5)
    before, after = reference_scores(noisy, scene.clean), reference_scores(denoised, scene.clean)
    assert after["psnr_db"] > before["psnr_db"] + 2 and after["ssim"] > before["ssim"]
    result, reports = preprocess(noisy, SCENE.pixel_size_um, PreprocessConfig(steps=("n2v",)), reloaded)
    assert reports[1].applied and str(archive) in reports[1].note and "caution" not in reports[1].note
    _, mismatched = preprocess(noisy, SCENE.pixel_size_um, PreprocessConfig(steps=("nlm", "n2v")), reloaded)
    assert "caution: trained on images after no step, used after ['nlm']" in mismatched[2].note

    def left() -> list[str]:  # but torch's own cache, one per user, which importing careamics makes
        return sorted(path.name for path in temporary_folder.iterdir() if not path.name.startswith("torchinductor_"))

    assert len(left()) == 2 and all(name.startswith("microcrystalnet-n2v-") for name in left()), left()
    del trained, reloaded  # careamics' work of each model was all there was: bioimage.io unzips the model in it
    gc.collect()
    assert not left()  # gone with the models
    # careamics was quiet inside our calls only: the loggers' levels are the caller's again
    assert {name: logging.getLogger(name).level for name in own_levels} == own_levels


def test_noise2void_training_is_reproducible_with_its_seed(tmp_path, temporary_folder, one_torch_thread):
    """careamics draws a seed of its own for patches, flips and masks unless given one: the same
    seed gave models that differed by up to 0.08 in what they denoised."""
    logging.getLogger("lightning").setLevel(logging.ERROR)
    image = to_unit_range(render_scene(SceneSpec(shape=(128, 128), pixel_size_um=0.04, seed=3)).image)

    def denoised_after_training(seed: int, name: str) -> np.ndarray:
        model = train_noise2void([image], tmp_path / name, steps=2, patch_px=32, batch_size=4, seed=seed)
        return model.denoise(image)

    first = denoised_after_training(5, "first.zip")
    assert np.array_equal(denoised_after_training(5, "again.zip"), first)
    assert np.abs(denoised_after_training(6, "other.zip") - first).max() > 1e-3


def test_wrong_or_corrupt_noise2void_models_are_refused_clearly(tmp_path, temporary_folder):
    with pytest.raises(Noise2VoidModelError, match="does not exist"):
        Noise2VoidModel.load(tmp_path / "absent.zip")
    (tmp_path / "corrupt.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(Noise2VoidModelError, match="not a Noise2Void model"):
        Noise2VoidModel.load(tmp_path / "corrupt.zip")
    assert not list(temporary_folder.glob("microcrystalnet-n2v-*"))
    image = tmp_path / "scene.tif"
    import tifffile

    tifffile.imwrite(image, render_scene(SCENE).image)
    done = subprocess.run([sys.executable, "-m", "microcrystalnet", "n2v", "denoise", str(image), "--model",
                           str(tmp_path / "corrupt.zip"), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 3 and "not a Noise2Void model" in done.stderr
