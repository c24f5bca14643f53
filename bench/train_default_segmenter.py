"""Reproduce the shipped default learned segmenter in one command: pretrain on synthetic scenes,
choose the watershed thresholds on held-out synthetic scenes, write the model file and its model
card (the default is synthetic-only: every real image stays held out):

    scripts/bench bench/train_default_segmenter.py --synthetic-only --scenes 1200 --pretrain-steps 10034 \\
        --continue-steps 11000 9000 --continue-scenes 1800 1800 --continue-learning-rate 0.001 0.0005 \\
        --threads 1 --out python/microcrystalnet/models/segmenter-default.pt

Recipe (every number is an option below, and is written into the model card):
1. ``--scenes`` random synthetic scenes (seeds 0..), rescaled to the working diameter, one or two
   128-px crops each; a U-Net trained from scratch on them for ``--pretrain-share`` of the budget
   (all of it with ``--synthetic-only``, which stops here and goes to step 3).
2. Without ``--synthetic-only``: fine-tuned on crops of the real images of perovskite,
   spheroidite and powder (MIT; never tio2, CC BY-NC-ND: evaluation only), each rescaled by its
   outlines' median diameter, materials balanced by repeating the crops of the smaller ones,
   with synthetic replay crops filling ``--replay-fraction`` of every batch. Every material's
   outlines are complete (all other pixels are background). Spheroidite's were once taken as
   partial (loss only on the outlined particles and a ring around them), but its masks outline
   every bright particle and the pits: what they leave out is gray matrix texture, which a
   partial loss never teaches as background (fine-tuning on one of its images, mean of three
   choices, on the other four: as complete outlines 0.556 -> 0.606; as partial ones 0.507 ->
   0.482 in an earlier round; BENCHMARKS.md).
   Measured on real materials the model had not seen, this did not help (the model card), so the
   default skips it.
3. Seed and foreground thresholds, the smallest seed and the lowest crystal score kept, chosen
   by mean F1 on held-out synthetic scenes and the completely outlined MIT images trained on.

``--continue-steps N [N ...]`` (with ``--synthetic-only``) trains the pretrained model further in one
stage per N: N steps on ``--continue-scenes`` synthetic scenes it has not seen (seeds after those of
every earlier stage), the learning rate restarting at ``--continue-learning-rate`` and falling to 0
again (one value for every stage, or one per stage). Every stage starts from its base's weights as
a model file holds them (float16), so one command gives the weights of its stages run one at a time.
``--continue-from MODEL`` runs those stages alone, from a model written by this script (no
pretraining): the shipped default's last stage was made so, from the previous default.
``--save-stages`` writes the model after each of those stages beside ``--out`` (``OUT.stage-N.pt``),
so an interrupted run can go on with ``--continue-from`` the last one and the stages left.
``--weights-from MODEL`` skips 1 and 2 and only chooses the thresholds of a model written by
this script again (after a change to how they are chosen).
``--save-pretrained P`` writes the synthetic-only model; ``--pretrained P`` starts from it (all of
``--minutes`` then goes to fine-tuning), so leave-one-out variants share one pretraining.
``--device cuda`` trains on a GPU and ``--workers N`` renders the synthetic scenes in N processes
(the same crops; on a GPU the rendering would otherwise take longer than the training); a GPU
rounds differently, so its weights are not the CPU's bit for bit (the model card names the device).
``--leave-out IMAGE`` (repeatable; a manifest path or file name) keeps images out of training and
threshold choice: leave-one-image-out variants give honest benchmark numbers for the images
trained on. Time budgets depend on the machine; the card lists the steps each phase reached and
the command that repeats them exactly (``--pretrain-steps``/``--fine-tune-steps``, same seed, one
thread). The real images are read in place from ../shared/real-sem and never copied.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_SEM_MANIFEST = REPO_ROOT.parent / "shared" / "real-sem" / "manifest.json"

#: the only real data sets whose licence allows training shipped weights, with their attribution
#: (../shared/real-sem/README.md); partial: not every object of an image is outlined (the loss
#: then sees only the outlined objects and a ring around them)
MIT_DATASETS = {
    "perovskite": {"partial": False, "licence": "MIT",
                   "source": "yamanmy/grain_boundary.github.io (example_images/)"},
    "spheroidite": {"partial": False, "licence": "MIT",
                    "source": "rccohn/AMPIS (examples/spheroidite/data/); micrographs and annotations from UHCSDB: "
                              "DeCost et al., Microscopy and Microanalysis 23 (2017); hdl:11256/940, hdl:11256/964"},
    "powder": {"partial": False, "licence": "MIT", "source": "rccohn/AMPIS (examples/powder/data/)"},
}
#: seeds of the held-out synthetic scenes the thresholds are chosen on (apart from training seeds)
THRESHOLD_SCENE_FIRST_SEED, THRESHOLD_SCENES, THRESHOLD_SCENE_PX = 500_000, 16, 384


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    from microcrystalnet.config import LearnedConfig, choices_of
    from microcrystalnet.segment.learned.training import NETWORK_BASE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL.pt",
                        help="model file (replaced if it is a segmenter model); the card goes beside it as .md")
    parser.add_argument("--minutes", type=float, default=60.0, help="training time in all (default %(default)s)")
    parser.add_argument("--pretrain-share", type=float, default=0.7,
                        help="share of the time for synthetic pretraining (default %(default)s)")
    parser.add_argument("--pretrain-steps", type=int, help="pretraining steps instead of time (exact reproduction)")
    parser.add_argument("--fine-tune-steps", type=int, help="fine-tuning steps instead of time")
    parser.add_argument("--scenes", type=int, default=1200, help="synthetic pretraining scenes (default %(default)s; "
                                                                 "about 0.25 s each to render)")
    parser.add_argument("--replay-fraction", type=float, default=0.5,
                        help="share of every fine-tuning batch from synthetic crops (default %(default)s)")
    parser.add_argument("--save-pretrained", type=Path, metavar="MODEL.pt",
                        help="also write the synthetic-only pretrained model here (for --pretrained)")
    parser.add_argument("--pretrained", type=Path, metavar="MODEL.pt",
                        help="start from this synthetic-only model (written with --save-pretrained) instead of "
                             "pretraining: the leave-one-image-out variants share one pretraining")
    parser.add_argument("--weights-from", type=Path, metavar="MODEL.pt",
                        help="no training: take this model's weights and training record (written by this script) "
                             "and only choose its thresholds again, e.g. after a change to how they are chosen")
    parser.add_argument("--continue-steps", type=int, nargs="+", metavar="STEPS",
                        help="with --synthetic-only: then train the pretrained model further, one stage of this "
                             "many steps on new synthetic scenes per value")
    parser.add_argument("--continue-scenes", type=int, nargs="+", default=[1800], metavar="SCENES",
                        help="synthetic scenes of each such stage, seeds after every earlier stage's; one value "
                             "for all stages or one per stage (default %(default)s)")
    parser.add_argument("--continue-learning-rate", type=float, nargs="+", default=[0.001], metavar="RATE",
                        help="first learning rate of each such stage's cosine; one value for all stages or one per "
                             "stage (default %(default)s)")
    parser.add_argument("--save-stages", action="store_true",
                        help="also write the model after each such stage beside --out (OUT.stage-N.pt): an "
                             "interrupted run goes on with --continue-from it and the stages left")
    parser.add_argument("--continue-from", type=Path, metavar="MODEL.pt",
                        help="those stages alone, from this model (written by this script) instead of pretraining")
    parser.add_argument("--synthetic-only", action="store_true",
                        help="no real image at all: the pretrained model, thresholds chosen on synthetic scenes "
                             "alone (every real image stays held out; the shipped default is made so)")
    parser.add_argument("--leave-out", action="append", default=[], metavar="IMAGE",
                        help="a real image (manifest path or file name) kept out of training and thresholds")
    parser.add_argument("--network-base", type=int, default=NETWORK_BASE, metavar="CHANNELS",
                        help="channels of the U-Net's first level when pretraining from scratch (default "
                             "%(default)s; 12 was measured, BENCHMARKS.md, twelfth round)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    parser.add_argument("--device", default="cpu", choices=choices_of(LearnedConfig, "device"),
                        help="where the network trains (default %(default)s: the shipped weights were trained "
                             "there; a GPU rounds differently, so its weights are not the CPU's bit for bit)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes rendering synthetic scenes (default %(default)s; the same crops with any "
                             "number: on a GPU, rendering would otherwise take longer than training)")
    parser.add_argument("--manifest", type=Path, default=REAL_SEM_MANIFEST, help="real SEM set (default: %(default)s)")
    return parser.parse_args(argv)


def mit_images(manifest: Path, leave_out: list[str]) -> list[tuple[dict, object]]:
    """(manifest entry, ReferenceImage) of every MIT image not left out; every --leave-out must
    name an image of the manifest (a typo would silently train on the image)."""
    from microcrystalnet.io.reference import read_reference_set

    entries = json.loads(manifest.read_text(encoding="utf-8"))
    names = {entry["image"] for entry in entries} | {Path(entry["image"]).name for entry in entries}
    unknown = [name for name in leave_out if name not in names]
    if unknown:
        sys.exit(f"--leave-out {', '.join(unknown)}: not an image of {manifest}")
    chosen = []
    for entry, reference in zip(entries, read_reference_set(manifest)):
        if entry["dataset"] not in MIT_DATASETS:
            continue  # tio2 is CC BY-NC-ND: never in shipped weights
        if entry["image"] in leave_out or Path(entry["image"]).name in leave_out:
            print(f"left out: {entry['image']}", flush=True)
            continue
        chosen.append((entry, reference))
    return chosen


def balanced(parts: list) -> object:
    """The crop sets of ``parts`` (one per material) joined, each repeated to about the size of the
    largest, so every material weighs alike in training."""
    from microcrystalnet.segment.learned.training import TrainingCrops

    parts = [part for part in parts if len(part)]
    largest = max(len(part) for part in parts)
    repeated = []
    for part in parts:
        times = max(1, round(largest / len(part)))
        repeated.append(TrainingCrops(np.concatenate([part.images] * times), np.concatenate([part.labels] * times),
                                      np.concatenate([part.loss_mask] * times), part.working_diameter_px,
                                      part.sources))
    return TrainingCrops.joined(repeated)


def progress_printer(phase: str):
    last = [0.0]

    def report(step: int, total: int | None, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 30 or step == total:
            last[0] = now
            print(f"{phase}: step {step}{f'/{total}' if total else ''}, loss {loss:.4f}", flush=True)
    return report


def training_stages(model) -> list[dict]:
    """The training records of ``model`` and of the models it was trained from, oldest first."""
    stages, record = [], model.training
    while record:
        stages.append(record)
        base = record.get("base_model")
        record = base["training"] if base else None
    return stages[::-1]


def is_synthetic_source(source: dict) -> bool:
    """Whether a training record's data source is rendered synthetic scenes (else a real image)."""
    return source.get("data") == "synthetic scenes"


def is_synthetic(stage: dict) -> bool:
    return all(is_synthetic_source(source) for source in stage["data"])


def stage_data_rows(stage: dict, use: str) -> list[str]:
    """Rows of the model card's data table for one training stage."""
    rows = []
    for source in stage["data"]:
        if is_synthetic_source(source):
            rows.append(f"| {source['scenes']} synthetic scenes (seeds {source['first_seed']}..), {source['crops']} "
                        f"crops | {source['licence']} | - | {use} |")
        else:
            dataset = MIT_DATASETS[source["dataset"]]
            rows.append(f"| `{source['image']}` ({source['dataset']}, {source['outlined_crystals']} outlined, "
                        f"{'complete' if source['complete_outlines'] else 'partial'} outlines, diameter "
                        f"{source['crystal_diameter_px']} px, {source['crops']} crops) | {dataset['licence']} | "
                        f"{dataset['source']} | {use} |")
    return rows


def stage_recipe(stage: dict, use: str) -> str:
    """The model card's recipe line for one training stage."""
    line = (f"- {use}: {stage['steps']} steps of {stage['batch_size']} crops ({stage['minutes']} min), learning rate "
            f"{stage['learning_rate']}, {stage['schedule']}, seed {stage['seed']}")
    if not stage.get("base_model"):
        line += f", class weights {stage['class_weights']}, augmentation {stage['augmentation']}"
    if stage.get("replay_per_batch"):
        line += (f", {stage['replay_per_batch']} of {stage['batch_size']} crops per batch synthetic replay, "
                 "materials balanced by repetition")
    return line


def model_card(model, *, digest: str, command: str, reproduce: str, threshold_choice, threshold_images: list[str],
               left_out: list[str]) -> str:
    """The model card (markdown): data with licences and attribution, recipe (every training stage),
    steps, seed, sha256, and a placeholder for the benchmark's scores."""
    record = model.training
    stages = training_stages(model)
    uses = ["pretraining from scratch" if index == 0 else
            "synthetic training, continued" if is_synthetic(stage) else "fine-tuning on the real images"
            for index, stage in enumerate(stages)]
    lines = [
        "# Default learned crystal segmenter", "",
        f"File `{Path(model.name).name}`, sha256 `{digest}`; written {record['date']} by "
        "`bench/train_default_segmenter.py`.", "",
        f"A U-Net (base {model.network.base}, depth {model.network.depth}, "
        f"{sum(p.numel() for p in model.network.parameters()) / 1e6:.2f} M parameters, float16) predicting "
        "background / crystal interior / crystal boundary (2-px inner rim) at a working scale where the typical "
        f"crystal is {model.working_diameter_px:g} px across, then a seeded watershed.", "",
        "## Training data", "",
        "| data | licence | attribution | use |", "|---|---|---|---|",
    ]
    for stage, use in zip(stages, uses):
        lines += stage_data_rows(stage, use)
    lines += ["", "No CC BY-NC-ND image (the tio2 set) was used for training or for choosing thresholds.",
              f"Left out: {', '.join(f'`{name}`' for name in left_out) if left_out else 'none'}.", "",
              "## Recipe", ""]
    lines += [stage_recipe(stage, use) for stage, use in zip(stages, uses)]
    if all(is_synthetic(stage) for stage in stages):
        lines.append("- no real image: trained on synthetic scenes only (`--synthetic-only`); every real image is "
                     "held out")
    lines += [f"- thresholds: seed {model.thresholds.seed}, foreground {model.thresholds.foreground}, min seed "
              f"{model.thresholds.min_seed_fraction} of a crystal's area, min crystal score "
              f"{model.thresholds.min_crystal_score} (mean interior + boundary probability); chosen by mean F1@0.5 "
              f"{threshold_choice.mean_f1:.3f} on {', '.join(threshold_images)}",
              f"- torch {record['torch_version']}, on {record.get('device', 'cpu')}, {torch.get_num_threads()} "
              "thread(s)", "",
              "Command that wrote it:", "", f"    {command}", "",
              "The same steps again (a step budget: the same machine, device and thread count give the same "
              "weights; a time budget's learning-rate schedule follows the clock, so a run with `--minutes` alone is "
              "equivalent, not bit-identical):", "",
              f"    {reproduce}", "",
              "## Scores", "",
              "Filled in by `bench/bench_real_sem.py` (leave-one-image-out numbers for the MIT images).", "",
              "| material | F1@0.5 (size given) | F1@0.5 (no settings) |", "|---|---|---|",
              "| tio2 | | |", "| perovskite | | |", "| spheroidite | | |", "| powder | | |", ""]
    return "\n".join(lines)


def first_unseen_scene_seed(model) -> int:
    """The first synthetic scene seed after every scene ``model`` (and the models it was trained
    from) trained on: where a further synthetic stage starts, so it sees only new scenes."""
    ends = [source["first_seed"] + source["scenes"] for stage in training_stages(model) for source in stage["data"]
            if is_synthetic_source(source)]
    return max(ends, default=0)


def continue_stages(arguments: argparse.Namespace) -> list[tuple[int, int, float]]:
    """(steps, scenes, first learning rate) of every further synthetic stage; a single scene count
    or learning rate stands for every stage."""
    steps = arguments.continue_steps or []
    if not steps:
        return []

    def per_stage(values: list, option: str) -> list:
        if len(values) == 1:
            return values * len(steps)
        if len(values) != len(steps):
            sys.exit(f"{option}: give one value, or one per --continue-steps value ({len(steps)})")
        return values
    return list(zip(steps, per_stage(arguments.continue_scenes, "--continue-scenes"),
                    per_stage(arguments.continue_learning_rate, "--continue-learning-rate")))


def as_written(model):
    """``model`` as its model file holds it (float16 weights), so a stage trained from it in memory
    gives the weights of one trained from the written file."""
    from microcrystalnet.segment.learned.model_file import SegmenterModel
    from microcrystalnet.segment.learned.training import model_sha256

    return SegmenterModel.from_bytes(model.to_bytes(), name=model.name, sha256=model_sha256(model))


def continued_model(model, arguments: argparse.Namespace):
    """``model`` trained further, one stage per ``--continue-steps`` value, each on new synthetic scenes."""
    from microcrystalnet.segment.learned.model_file import write_segmenter_model
    from microcrystalnet.segment.learned.training import synthetic_training_crops, train_segmenter

    for index, (steps, scenes, learning_rate) in enumerate(continue_stages(arguments), start=1):
        first_seed = first_unseen_scene_seed(model)
        print(f"stage {index}: rendering {scenes} more synthetic scenes (seeds {first_seed}..)", flush=True)
        synthetic = synthetic_training_crops(n_scenes=scenes, first_seed=first_seed, workers=arguments.workers)
        model = train_segmenter(synthetic, base_model=as_written(model), steps=steps, seed=arguments.seed,
                                learning_rate=learning_rate, device=arguments.device,
                                progress=progress_printer(f"synthetic training, continued ({index})"))
        model.name = f"synthetic training, continued ({index})"
        print(f"continued ({index}): {model.training['steps']} steps, loss {model.training['final_loss']}",
              flush=True)
        if arguments.save_stages:
            path = finished_stage_path(arguments.out, index)
            write_segmenter_model(model, path)
            print(f"wrote {path}", flush=True)
    return model


def finished_stage_path(out: Path, index: int) -> Path:
    """Where ``--save-stages`` writes the model after further stage ``index``: beside ``out``."""
    return out.with_name(f"{out.stem}.stage-{index}{out.suffix}")


def synthetic_only_model(path: Path, option: str):
    """The model in ``path`` (given as ``option``) to train further; one trained on real images is
    refused: this recipe starts only from synthetic-only models."""
    from microcrystalnet.segment.learned.model_file import load_segmenter_model

    model = load_segmenter_model(path)
    if not all(is_synthetic(stage) for stage in training_stages(model)):
        sys.exit(f"{option} {path}: trained on real images; give a synthetic-only model (written by this script "
                 "with --synthetic-only or --save-pretrained)")
    return model


def trained_model(arguments: argparse.Namespace):
    """Steps 1 and 2 of the recipe: the fine-tuned model and the MIT images it was trained on."""
    from microcrystalnet.segment.learned.model_file import write_segmenter_model
    from microcrystalnet.segment.learned.training import (TrainingCrops, outlined_training_crops,
                                                          synthetic_training_crops, train_segmenter)

    started = time.monotonic()
    pretrain_minutes = arguments.minutes * (1.0 if arguments.synthetic_only else arguments.pretrain_share)
    fine_tune_minutes = arguments.minutes - pretrain_minutes

    if arguments.continue_from:
        return continued_model(synthetic_only_model(arguments.continue_from, "--continue-from"), arguments), []
    print(f"rendering {arguments.scenes} synthetic scenes", flush=True)
    synthetic = synthetic_training_crops(n_scenes=arguments.scenes, first_seed=0, workers=arguments.workers)
    print(f"{len(synthetic)} synthetic crops ({time.monotonic() - started:.0f} s)", flush=True)
    if arguments.pretrained:
        pretrained = synthetic_only_model(arguments.pretrained, "--pretrained")
        fine_tune_minutes = arguments.minutes
    else:
        pretrained = train_segmenter(synthetic, minutes=None if arguments.pretrain_steps else pretrain_minutes,
                                     steps=arguments.pretrain_steps, seed=arguments.seed,
                                     progress=progress_printer("pretraining"), network_base=arguments.network_base,
                                     device=arguments.device)
        pretrained.name = "synthetic pretraining"
        if arguments.save_pretrained:
            write_segmenter_model(pretrained, arguments.save_pretrained)
    print(f"synthetic training: {pretrained.training['steps']} steps, loss {pretrained.training['final_loss']}",
          flush=True)
    if arguments.synthetic_only:
        return (continued_model(pretrained, arguments) if arguments.continue_steps else pretrained), []

    images = mit_images(arguments.manifest, arguments.leave_out)
    by_material: dict[str, list] = {}
    for entry, reference in images:
        crops = outlined_training_crops(
            reference.pixels, reference.labels, working_diameter_px=pretrained.working_diameter_px,
            complete=not MIT_DATASETS[entry["dataset"]]["partial"], pixel_size_um=entry["pixel_size_um"],
            source={"image": entry["image"], "outlines": entry["ground_truth"], "dataset": entry["dataset"],
                    "licence": MIT_DATASETS[entry["dataset"]]["licence"]})
        print(f"{entry['image']}: {len(crops)} crops", flush=True)
        by_material.setdefault(entry["dataset"], []).append(crops)
    real = balanced([TrainingCrops.joined(parts) for parts in by_material.values()])
    model = train_segmenter(real, base_model=pretrained,
                            minutes=None if arguments.fine_tune_steps else fine_tune_minutes,
                            steps=arguments.fine_tune_steps, seed=arguments.seed, replay=synthetic,
                            replay_fraction=arguments.replay_fraction, progress=progress_printer("fine-tuning"),
                            device=arguments.device)
    print(f"fine-tuning: {model.training['steps']} steps, loss {model.training['final_loss']}", flush=True)

    return model, images


#: options that set a training budget, starting point or the scenes of a stage: the reproducing command
#: gives every stage's step budget and scenes from the training record instead
BUDGET_OPTIONS = ("--minutes", "--pretrain-steps", "--fine-tune-steps", "--continue-steps", "--continue-from",
                  "--pretrained", "--scenes", "--continue-scenes", "--continue-learning-rate")


def without_options(arguments: list[str], names: tuple[str, ...]) -> list[str]:
    """``arguments`` without the options ``names`` and their values (``--name value ...`` up to the
    next option, or ``--name=value``)."""
    kept, skipping = [], False
    for argument in arguments:
        if argument.startswith("--"):
            skipping = argument in names
            if not skipping and not argument.startswith(tuple(f"{name}=" for name in names)):
                kept.append(argument)
        elif not skipping:
            kept.append(argument)
    return kept


def stage_budgets(stages: list[dict]) -> list[str] | None:
    """The options that repeat every training stage with its step budget and scenes: synthetic
    pretraining (scene seeds 0..), then further synthetic stages each on the scenes after the
    previous one's, or one fine-tuning on real images. None when the stages are not such a chain
    (this script's one command cannot repeat them)."""
    first = [source for source in stages[0]["data"] if is_synthetic_source(source)]
    if len(first) != 1 or first[0]["first_seed"] != 0:
        return None
    options = ["--scenes", str(first[0]["scenes"]), "--pretrain-steps", str(stages[0]["steps"])]
    later = stages[1:]
    if later and all(is_synthetic(stage) and len(stage["data"]) == 1 for stage in later):
        seeds = [first[0]] + [stage["data"][0] for stage in later]
        if any(source["first_seed"] != before["first_seed"] + before["scenes"]
               for before, source in zip(seeds, seeds[1:])):
            return None
        options += ["--continue-steps", *(str(stage["steps"]) for stage in later),
                    "--continue-scenes", *(str(stage["data"][0]["scenes"]) for stage in later),
                    "--continue-learning-rate", *(repr(stage["learning_rate"]) for stage in later)]
    elif len(later) == 1:
        options += ["--fine-tune-steps", str(later[0]["steps"])]
    elif later:
        return None
    return options


#: what a model card says where no one command repeats the model's stages
NOT_ONE_COMMAND = "(no single command of this script repeats its training stages)"


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    torch.set_num_threads(arguments.threads)
    from microcrystalnet.segment.learned.inference import median_diameter_px
    from microcrystalnet.segment.learned.model_file import load_segmenter_model, write_segmenter_model
    from microcrystalnet.segment.learned.training import choose_thresholds
    from microcrystalnet.synth import random_training_scene

    if not arguments.manifest.is_file():
        sys.exit(f"the real SEM set is not at {arguments.manifest} (../shared/real-sem beside the repository)")
    if (arguments.continue_from or arguments.continue_steps) and not arguments.synthetic_only:
        sys.exit("--continue-steps / --continue-from train further on synthetic scenes only: give --synthetic-only")
    if arguments.continue_from and not arguments.continue_steps:
        sys.exit("--continue-from needs --continue-steps")
    continue_stages(arguments)  # a scene count or learning rate per stage that does not fit stops here, not later
    if arguments.out.exists() and arguments.out.is_dir():
        sys.exit(f"--out {arguments.out} is a folder")
    started = time.monotonic()
    if arguments.weights_from:
        model = load_segmenter_model(arguments.weights_from)
        if "base_model" not in model.training:
            sys.exit(f"--weights-from {arguments.weights_from}: not a model written by this script")
        images = [] if arguments.synthetic_only else mit_images(arguments.manifest, arguments.leave_out)
    else:
        model, images = trained_model(arguments)
    held_out, names = [], []
    for seed in range(THRESHOLD_SCENE_FIRST_SEED, THRESHOLD_SCENE_FIRST_SEED + THRESHOLD_SCENES):
        scene = random_training_scene(seed, shape=(THRESHOLD_SCENE_PX, THRESHOLD_SCENE_PX))
        if scene.labels.max() >= 2:
            held_out.append((scene.image, scene.labels, median_diameter_px(scene.labels)))
    names.append(f"{len(held_out)} synthetic scenes (seeds {THRESHOLD_SCENE_FIRST_SEED}..)")
    for entry, reference in images:
        if not MIT_DATASETS[entry["dataset"]]["partial"]:
            held_out.append((reference.pixels, reference.labels, median_diameter_px(reference.labels)))
            names.append(f"`{entry['image']}`")
    choice = choose_thresholds(model, held_out)
    model.thresholds = choice.thresholds
    print(f"thresholds: seed {choice.thresholds.seed}, foreground {choice.thresholds.foreground}, min seed "
          f"{choice.thresholds.min_seed_fraction}, min crystal score {choice.thresholds.min_crystal_score}, mean F1 "
          f"{choice.mean_f1:.3f}", flush=True)

    this_command = shlex.join(["scripts/bench", "bench/train_default_segmenter.py", *(argv or sys.argv[1:])])
    steps = stage_budgets(training_stages(model))
    if arguments.weights_from:  # the weights' own recipe; the current code chooses thresholds as now
        command = model.training.get("command") or "(not recorded)"
        reproduce = model.training.get("reproduce") or (NOT_ONE_COMMAND if steps is None else shlex.join([
            "scripts/bench", "bench/train_default_segmenter.py", *(["--synthetic-only"] if arguments.synthetic_only
                                                                    else []), *steps, "--threads", "1",
            "--out", str(arguments.out)]))
        model.training.update(thresholds_rechosen_by=this_command)
    else:  # one command for every stage, with step budgets (a --continue-from run names its base's pretraining)
        command = this_command
        reproduce = NOT_ONE_COMMAND if steps is None else shlex.join([
            "scripts/bench", "bench/train_default_segmenter.py", *without_options(argv or sys.argv[1:], BUDGET_OPTIONS),
            *steps])
    model.training.update(recipe="bench/train_default_segmenter.py", command=command, reproduce=reproduce,
                          left_out=arguments.leave_out, thresholds_chosen_on=names,
                          threshold_mean_f1=round(choice.mean_f1, 4))
    digest = write_segmenter_model(model, arguments.out)
    model.name = str(arguments.out)
    card = arguments.out.with_suffix(".md")
    card.write_text(model_card(model, digest=digest, command=command, reproduce=reproduce, threshold_choice=choice,
                               threshold_images=names, left_out=arguments.leave_out), encoding="utf-8")
    print(f"wrote {arguments.out} (sha256 {digest}) and {card} in {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
