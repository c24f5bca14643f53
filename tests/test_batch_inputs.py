"""A batch's inputs: what is not an image is reported, not silently skipped; our own outputs are never inputs."""

from __future__ import annotations

from pathlib import Path

from microcrystalnet.batch import BATCH_IMAGES_NAME, find_batch_inputs, without_name_clashes
from microcrystalnet.io.report import BATCH_SIZES_PLOT_NAME
from microcrystalnet.io.result_folder import MARKER_NAME


def test_folders_and_broken_links_named_like_images_are_reported_and_our_outputs_left_out(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"image")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.tif").write_bytes(b"hidden")
    (tmp_path / "folder.tif").mkdir()
    (tmp_path / "broken.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jpg").write_bytes(b"image")
    (tmp_path / "elsewhere").symlink_to(tmp_path / "sub")
    result = tmp_path / "a"  # a result folder of ours, beside its image
    result.mkdir()
    (result / MARKER_NAME).write_text("{}")
    (result / "overlay.png").write_bytes(b"ours")
    (tmp_path / BATCH_SIZES_PLOT_NAME).write_bytes(b"ours")
    (tmp_path / BATCH_IMAGES_NAME).write_text("ours")

    flat = find_batch_inputs(tmp_path, out=tmp_path)
    assert flat.images == [tmp_path / "a.tif"]
    assert flat.own_results == 4
    reasons = {Path(outcome.image).name: outcome.error for outcome in flat.skipped}
    assert sorted(reasons) == ["broken.png", "folder.tif"]
    assert "does not exist" in reasons["broken.png"] and "folder named like an image" in reasons["folder.tif"]

    deep = find_batch_inputs(tmp_path, recursive=True, out=tmp_path / "elsewhere-out")
    assert deep.images == [tmp_path / "a.tif", tmp_path / BATCH_SIZES_PLOT_NAME, tmp_path / "sub" / "b.jpg"]
    assert "link to a folder, not followed" in {Path(o.image).name: o.error for o in deep.skipped}["elsewhere"]


def test_images_whose_results_would_share_a_folder_are_reported_with_what_to_do(tmp_path):
    images = [tmp_path / "a.tif", tmp_path / "a.jpg", tmp_path / "x" / "b.tif", tmp_path / "y" / "b.tif",
              tmp_path / "c.tif"]
    kept, clashing = without_name_clashes(images)
    assert kept == [tmp_path / "c.tif"]
    advice = {outcome.image: outcome.error for outcome in clashing}
    assert "share the folder 'a' with" in advice[str(tmp_path / "a.tif")]
    assert advice[str(tmp_path / "a.tif")].endswith("rename one of them")
    assert "separate batches, each with its own --out" in advice[str(tmp_path / "x" / "b.tif")]
