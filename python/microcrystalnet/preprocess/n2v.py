"""Noise2Void (Krull et al. 2019): self-supervised denoising trained on the user's own noisy images.

The maintained implementation, careamics (PyTorch), does the work: training with blind-spot
masking on patches, tiled prediction, and export to the bioimage.io model format, which
deepImageJ, careamics and other bioimage.io consumers run. Models trained elsewhere load from
their bioimage.io zip (careamics exports) or a careamics checkpoint (``.ckpt``). Fiji's older
TensorFlow-based N2V exports are bioimage.io models of another framework and do not load here.

Images go in and come out as float (Y, X) in [0, 1]; careamics normalises internally with the
mean and standard deviation it stored at training time.

A model works best on images like those it was trained on. In the paper's chain Noise2Void runs
after non-local means, so training images are passed through the steps before it first
(``trained_after``, recorded in ``<model>.json`` beside the model): on a synthetic scene this gave
PSNR 30.0 dB against 28.1 dB for a model trained on the raw images (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import shutil
import sys
import tempfile
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..io.owned_files import check_replaceable_files, own_file, record_own_files
from ..frameworks import import_careamics, import_lightning_callbacks, import_torch

Array = np.ndarray
log = logging.getLogger(__name__)


class Noise2VoidModelError(ValueError):
    """A Noise2Void model file cannot be used; the message names the file and what to do."""


def _careamics():
    careamics = import_careamics()
    return careamics, careamics.config.create_advanced_n2v_config


class Noise2VoidDenoiser(Protocol):
    """What the preprocessing chain needs of a Noise2Void model, loaded here or in a worker process."""

    source: Path | None
    trained_after: tuple[str, ...]

    def denoise(self, image: Array, tile_px: int = 256) -> Array: ...


class Noise2VoidModel:
    """A trained Noise2Void model ready to denoise."""

    def __init__(self, careamist: object, source: Path | None, trained_after: tuple[str, ...] = (),
                 temporary_work: Path | None = None) -> None:
        self._careamist = careamist
        self.source = source
        #: preprocessing steps its training images went through before it (empty: raw images)
        self.trained_after = trained_after
        # careamics' logs and checkpoints: ours to remove once the model is gone, at exit or on close()
        self._remove_work = (None if temporary_work is None
                             else weakref.finalize(self, shutil.rmtree, temporary_work, ignore_errors=True))

    @classmethod
    def load(cls, path: str | Path) -> "Noise2VoidModel":
        """Load a bioimage.io zip or a careamics checkpoint (``.ckpt``)."""
        path = Path(path)
        if not path.is_file():
            raise Noise2VoidModelError(f"Noise2Void model {path} does not exist; train one with "
                                       "'microcrystalnet n2v train IMAGES --out MODEL.zip'")
        careamics, _ = _careamics()
        work = Path(tempfile.mkdtemp(prefix="microcrystalnet-n2v-"))
        try:
            with _careamics_quietly(), _temporary_files_in(work):  # where bioimage.io unzips the model
                if path.suffix == ".ckpt":
                    careamist = careamics.CAREamist(checkpoint_path=path, work_dir=work, enable_progress_bar=False)
                else:
                    careamist = careamics.CAREamist(bmz_path=path, work_dir=work, enable_progress_bar=False)
        except Exception as error:  # careamics/bioimageio raise many types for foreign or broken files
            shutil.rmtree(work, ignore_errors=True)
            raise Noise2VoidModelError(f"{path} is not a Noise2Void model careamics can load (a bioimage.io zip "
                                       f"exported by careamics, or a careamics .ckpt): {str(error)[:300]}") from error
        return cls(careamist, path, _read_training_record(path).get("trained_after", ()), temporary_work=work)

    def close(self) -> None:
        """Remove the temporary folder careamics works in (a process that ends by ``os._exit``, as
        the Fiji worker does, runs no finalizer); the model cannot denoise after this."""
        if self._remove_work is not None:
            self._remove_work()

    def denoise(self, image: Array, tile_px: int = 256, overlap_px: int = 48) -> Array:
        """Denoise ``image`` (float (Y, X) in [0, 1]) tile by tile; returns float32 in [0, 1]."""
        image = np.asarray(image, np.float32)
        tile = None
        if max(image.shape) > tile_px:
            tile = tuple(min(tile_px, size) // 16 * 16 for size in image.shape)
        overlap = tuple(min(overlap_px, max(t // 2 - 1, 0)) // 2 * 2 for t in tile) if tile else None
        # num_workers=0: the image is in memory already, and forking DataLoader workers deadlocks in a
        # process that also hosts ImageJ's JVM (the in-process Fiji backend)
        with _careamics_quietly():
            predictions, _ = self._careamist.predict(image, tile_size=tile, tile_overlap=overlap, axes="YX",
                                                     num_workers=0)
        return np.clip(np.squeeze(predictions[0]), 0.0, 1.0).astype(np.float32)

    def export(self, path: str | Path, example: Array, name: str = "MicroCrystalNet Noise2Void") -> Path:
        """Save as a bioimage.io model zip (``example``: a small input image used as test data)."""
        path = Path(path)
        with _careamics_quietly(), contextlib.redirect_stdout(io.StringIO()):  # "Model description test passed."
            self._careamist.export_to_bmz(
                path_to_archive=path, friendly_model_name=name, input_array=np.asarray(example, np.float32),
                authors=[{"name": "MicroCrystalNet user"}],
                general_description="Noise2Void denoiser for SEM images of microcrystals, trained with MicroCrystalNet "
                                    "(careamics). Input: gray image scaled to [0, 1].",
                data_description="Secondary-electron SEM images, gray, scaled to [0, 1].")
        return path


@contextlib.contextmanager
def _careamics_quietly() -> Iterator[None]:
    """careamics and the libraries under it, with only their warnings and errors logged: their
    information (accelerators found, a tip to install a logging service, checkpoints restored,
    statistics computed) and their warnings about their own API and settings say nothing a user
    of this program can act on, and filled every denoising command's output, ``-q`` or not.
    The loggers' own levels come back after the block (a program that imports ours keeps its own)."""
    careamics_loggers = getattr(sys.modules.get("careamics.utils.logging"), "LOGGERS", {})  # each its own level
    loggers = [logging.getLogger(name) for name in ["lightning.pytorch", "lightning.fabric", *careamics_loggers]]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"(lightning|bioimageio|careamics)(\.|$)")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _temporary_files_in(folder: Path) -> Iterator[None]:
    """Python's temporary files and folders go into ``folder`` within this block. bioimage.io
    unzips a model into two new temporary folders (an empty one and one with the model, 2 MB)
    and removes neither: every analysis that denoised left them in /tmp. Inside the model's own
    temporary folder they go with it. (``tempfile.tempdir`` is the process's: another thread
    making a temporary file in this second would make it there.)"""
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def _record_path(model: Path) -> Path:
    return model.with_name(model.name + ".json")


def check_model_files_replaceable(out: str | Path) -> None:
    """Raise ``OutputFolderError`` unless a model may be written at ``out`` and its training record
    beside it: nothing there, or files this program wrote (:mod:`..io.owned_files`)."""
    check_replaceable_files([Path(out), _record_path(Path(out))])


def _read_training_record(model: Path) -> dict:
    record = _record_path(model)
    if not record.is_file():
        return {}
    try:
        data = json.loads(record.read_text())
        return {"trained_after": tuple(data.get("trained_after", ())), **{k: v for k, v in data.items()
                                                                       if k != "trained_after"}}
    except (OSError, ValueError) as error:
        raise Noise2VoidModelError(f"{record}: cannot read this model's training record ({error})") from error


def train_noise2void(images: Sequence[Array], out: str | Path, steps: int = 1000, patch_px: int = 64,
                     batch_size: int = 16, work_dir: str | Path | None = None,
                     trained_after: Sequence[str] = (), seed: int = 0,
                     progress: Callable[[int, int | None, float], None] | None = None) -> Noise2VoidModel:
    """Train Noise2Void on noisy images (float (Y, X) in [0, 1]; no clean data needed) and save it
    as a bioimage.io zip at ``out``, with ``<out>.json`` recording ``trained_after`` (the
    preprocessing steps the images already went through). ``steps``: training batches in all
    (rounded up to whole epochs). ``seed`` fixes patch sampling, masking and initial weights.
    ``work_dir``: where careamics keeps its logs and checkpoints (kept); without it, a temporary
    folder removed with the returned model. ``progress(step, total_steps, loss)`` is called after
    every training batch. A file at ``out`` or ``<out>.json`` that this program did not write is
    never replaced: ``OutputFolderError`` before training."""
    if not images:
        raise ValueError("Noise2Void needs at least one training image")
    check_model_files_replaceable(out)
    careamics, create_advanced_n2v_config = _careamics()
    patch = min([patch_px] + [min(image.shape) // 16 * 16 for image in images])
    if patch < 16:
        raise ValueError("training images must be at least 16 x 16 px")
    patches = sum((image.shape[0] // patch) * (image.shape[1] // patch) for image in images)
    validation = max(1, min(8, patches // 4))
    stack = [np.asarray(image, np.float32) for image in images]
    training_data = stack[0] if len(stack) == 1 else _same_size_stack(stack)
    # careamics' num_steps only caps batches per epoch; the training length comes from the epochs
    batches_per_epoch = max(1, math.ceil((patches - validation) / batch_size))
    epochs = max(1, math.ceil(steps / batches_per_epoch))
    # careamics draws a seed of its own for patches, flips and blind-spot masks unless given one (> 0);
    # data loader processes would only copy arrays that are in memory already
    config = create_advanced_n2v_config(experiment_name="microcrystalnet_n2v", data_type="array",
                                        axes="YX" if len(images) == 1 else "SYX",
                                        patch_size=[patch, patch], batch_size=batch_size,
                                        num_epochs=epochs,
                                        augmentations=["x_flip", "y_flip", "rotate_90"],
                                        n_val_patches=validation, seed=seed + 1, num_workers=0,
                                        # given, careamics does not compute them behind a progress bar of its own
                                        normalization_params={"input_means": [float(training_data.mean(dtype=np.float64))],
                                                              "input_stds": [float(training_data.std(dtype=np.float64))]},
                                        trainer_params={"enable_model_summary": False})  # a table of parameters
    temporary_work = None if work_dir else Path(tempfile.mkdtemp(prefix="microcrystalnet-n2v-"))
    work = Path(work_dir) if work_dir else temporary_work
    torch = import_torch()
    torch.manual_seed(seed)
    callbacks = [] if progress is None else [_progress_callback(progress, epochs * batches_per_epoch)]
    with _careamics_quietly():
        careamist = careamics.CAREamist(config, work_dir=work, enable_progress_bar=False, callbacks=callbacks)
    model = Noise2VoidModel(careamist, None, tuple(trained_after), temporary_work=temporary_work)
    with _careamics_quietly():
        careamist.train(train_data=training_data)
    example = stack[0][:min(256, stack[0].shape[0]), :min(256, stack[0].shape[1])]
    model.source = model.export(out, example)
    record_own_files([Path(out)])
    with own_file(_record_path(Path(out))) as partial:
        partial.write_text(json.dumps({"trained_after": list(trained_after), "steps": steps, "patch_px": patch,
                                       "batch_size": batch_size, "images": len(images)}, indent=2) + "\n")
    return model


def _progress_callback(progress: Callable[[int, int | None, float], None], total_steps: int):
    """A lightning callback handing each training batch's step and loss to ``progress``."""
    class TrainingProgress(import_lightning_callbacks().Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            progress(trainer.global_step, total_steps, float(loss) if loss is not None else float("nan"))

    return TrainingProgress()


def _same_size_stack(images: Sequence[Array]) -> Array:
    """Several training images as one (S, Y, X) stack, cropped to the smallest common size."""
    height = min(image.shape[0] for image in images)
    width = min(image.shape[1] for image in images)
    return np.stack([image[:height, :width] for image in images])
