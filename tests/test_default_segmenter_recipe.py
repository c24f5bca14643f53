"""The recipe that reproduces the shipped segmenter (bench/train_default_segmenter.py): its
further synthetic stages, the scenes each sees and the one command its model card records."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from microcrystalnet.segment.learned.model_file import SegmenterModel, load_segmenter_model, write_segmenter_model
from microcrystalnet.segment.learned.network import CrystalUNet
from microcrystalnet.segment.learned.training import synthetic_training_crops, train_segmenter

RECIPE_PATH = Path(__file__).resolve().parents[1] / "bench" / "train_default_segmenter.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("train_default_segmenter", RECIPE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_stage(first_seed: int, scenes: int, steps: int, learning_rate: float = 0.001) -> dict:
    return {"data": [{"data": "synthetic scenes", "scenes": scenes, "first_seed": first_seed}], "steps": steps,
            "learning_rate": learning_rate}


def real_stage(steps: int) -> dict:
    return {"data": [{"image": "a.png", "dataset": "powder"}], "steps": steps, "learning_rate": 0.0005}


def chained(*stages: dict) -> SimpleNamespace:
    """A model-like object whose training record nests ``stages`` (oldest first) as base models."""
    record = None
    for stage in stages:
        record = {**stage, "base_model": {"training": record} if record else None}
    return SimpleNamespace(training=record)


def test_each_further_stage_starts_after_every_scene_seen_before(recipe):
    model = chained(synthetic_stage(0, 1200, 10), synthetic_stage(1200, 1800, 20))
    assert recipe.first_unseen_scene_seed(model) == 3000
    assert recipe.first_unseen_scene_seed(chained(synthetic_stage(0, 5, 1), real_stage(3))) == 5


def test_scene_counts_and_learning_rates_are_one_for_all_stages_or_one_per_stage(recipe):
    arguments = argparse.Namespace(continue_steps=[11000, 9000], continue_scenes=[1800],
                                   continue_learning_rate=[0.001, 0.0005])
    assert recipe.continue_stages(arguments) == [(11000, 1800, 0.001), (9000, 1800, 0.0005)]
    with pytest.raises(SystemExit, match="--continue-scenes"):
        recipe.continue_stages(argparse.Namespace(continue_steps=[1, 2], continue_scenes=[1, 2, 3],
                                                  continue_learning_rate=[0.001]))


def test_the_reproducing_command_lists_every_stage_from_the_records(recipe):
    stages = [synthetic_stage(0, 1200, 10034, 0.002), synthetic_stage(1200, 1800, 11000),
              synthetic_stage(3000, 1800, 9000, 0.0005)]
    assert recipe.stage_budgets(stages) == [
        "--scenes", "1200", "--pretrain-steps", "10034", "--continue-steps", "11000", "9000",
        "--continue-scenes", "1800", "1800", "--continue-learning-rate", "0.001", "0.0005"]
    assert recipe.stage_budgets(stages[:1] + [real_stage(500)])[-2:] == ["--fine-tune-steps", "500"]
    # stages the one command cannot repeat: a gap in the scene seeds, real fine-tuning between synthetic stages
    assert recipe.stage_budgets([stages[0], synthetic_stage(5000, 1800, 11000)]) is None
    assert recipe.stage_budgets(stages[:2] + [real_stage(500)]) is None


def test_the_command_line_is_stripped_of_every_budget_option_and_its_values(recipe):
    argv = ["--synthetic-only", "--continue-steps", "11000", "9000", "--continue-scenes=1800", "--out", "m.pt",
            "--seed", "-1", "--continue-from", "base.pt", "--threads", "1"]
    assert recipe.without_options(argv, recipe.BUDGET_OPTIONS) == [
        "--synthetic-only", "--out", "m.pt", "--seed", "-1", "--threads", "1"]
    with pytest.raises(SystemExit):  # an abbreviated option would survive the stripping
        recipe.parse_arguments(["--out", "m.pt", "--continue-f", "base.pt"])


def test_only_synthetic_only_models_are_trained_further(recipe, tmp_path):
    synthetic = chained(synthetic_stage(0, 5, 1), synthetic_stage(5, 5, 1)).training
    fine_tuned = chained(synthetic_stage(0, 5, 1), real_stage(3)).training
    write_segmenter_model(SegmenterModel(CrystalUNet(), training=synthetic), tmp_path / "synthetic.pt")
    write_segmenter_model(SegmenterModel(CrystalUNet(), training=fine_tuned), tmp_path / "fine-tuned.pt")
    assert recipe.synthetic_only_model(tmp_path / "synthetic.pt", "--continue-from").training == synthetic
    with pytest.raises(SystemExit, match="--pretrained .*fine-tuned.pt: trained on real images"):
        recipe.synthetic_only_model(tmp_path / "fine-tuned.pt", "--pretrained")


def same_weights(one, other, *, as_stored: bool = False) -> bool:
    mine, theirs = one.network.state_dict(), other.network.state_dict()
    stored = (lambda tensor: tensor.half().float()) if as_stored else (lambda tensor: tensor)
    return all(torch.equal(stored(mine[key]), stored(theirs[key])) for key in mine)


def test_stages_in_one_run_give_the_weights_of_stages_run_one_at_a_time(recipe, tmp_path, one_torch_thread):
    pretrained = train_segmenter(synthetic_training_crops(n_scenes=2, first_seed=0, crop_px=64), steps=1, seed=0)
    pretrained.name = "synthetic pretraining"

    def arguments(steps: list[int], *, save_stages: bool = False) -> argparse.Namespace:
        return argparse.Namespace(continue_steps=steps, continue_scenes=[2], continue_learning_rate=[0.001], seed=0,
                                  out=tmp_path / "m.pt", save_stages=save_stages, device="cpu", workers=1)

    in_one_run = recipe.continued_model(pretrained, arguments([1, 1], save_stages=True))
    write_segmenter_model(pretrained, tmp_path / "pretrained.pt")
    first = recipe.continued_model(load_segmenter_model(tmp_path / "pretrained.pt"), arguments([1]))
    write_segmenter_model(first, tmp_path / "first.pt")
    one_at_a_time = recipe.continued_model(load_segmenter_model(tmp_path / "first.pt"), arguments([1]))
    assert [source["first_seed"] for stage in recipe.training_stages(in_one_run) for source in stage["data"]] == \
        [0, 2, 4]
    assert same_weights(in_one_run, one_at_a_time)
    # --save-stages: each finished stage beside --out, where an interrupted run would go on from
    assert sorted(path.name for path in tmp_path.glob("m.stage-*.pt")) == ["m.stage-1.pt", "m.stage-2.pt"]
    assert same_weights(load_segmenter_model(tmp_path / "m.stage-1.pt"), first, as_stored=True)
    assert same_weights(load_segmenter_model(tmp_path / "m.stage-2.pt"), in_one_run, as_stored=True)


def test_the_model_card_beside_the_shipped_weights_names_their_checksum():
    from microcrystalnet.segment.learned import model_file

    folder = Path(model_file.__file__).resolve().parents[2] / "models"
    card = (folder / model_file.MODEL_CARD_FILENAME).read_text(encoding="utf-8")
    assert (folder / model_file.DEFAULT_MODEL_FILENAME).is_file()
    assert f"File `{model_file.DEFAULT_MODEL_FILENAME}`, sha256 `{model_file.DEFAULT_MODEL_SHA256}`" in card
