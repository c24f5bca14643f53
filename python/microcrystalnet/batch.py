"""Batch analysis of many SEM images: resumable, on this machine or a Dask cluster.

Each image's results go to ``OUT/<image name>/`` exactly as ``analyze`` writes them, renamed into
place only when complete; a folder holding ``summary.json`` is a finished image, skipped on the
next run unless ``force``. A run that is interrupted (Ctrl-C, a kill, a lost machine) therefore
loses only the images in progress. After every run the batch tables are rebuilt from the
finished folders::

    OUT/batch_results.csv   one row per crystal of every finished image (Image column first)
    OUT/batch_images.csv    one row per finished image: crystals, class counts and fractions, sizes
    OUT/batch_errors.csv    the images of this run that could not be analysed, with the reason
    OUT/batch_report.html   class fractions per image and size distributions across images (+ PNGs)

Work is spread with Dask (``dask.distributed``): by default a local cluster of worker processes
sized to this machine; ``scheduler`` names a running Dask scheduler to use a real cluster (the
workers need this package and the models, and the folders must be shared). Each worker process
loads the models once and keeps them for every image it gets. With ``workers=0`` and no
scheduler, images are analysed one after another in this process.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .classes import RESULT_CODES
from .config import AnalysisConfig
from .io import SUPPORTED_SUFFIXES, ImageInputError, read_sem_image
from .io.atomic import replaced_atomically
from .io.outputs import RESULTS_NAME, SUMMARY_NAME
from .io.report import write_batch_report
from .results import RESULT_COLUMNS

if TYPE_CHECKING:
    from .pipeline import AnalysisModels

log = logging.getLogger(__name__)

BATCH_RESULTS_NAME = "batch_results.csv"
BATCH_IMAGES_NAME = "batch_images.csv"
BATCH_ERRORS_NAME = "batch_errors.csv"
#: memory one worker process needs (TensorFlow, the classifier, a 2048 x 2048 image at work)
WORKER_MEMORY_GB = 3.0


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image: its result folder, or the reason it could not be analysed."""

    image: str
    folder: str | None = None
    error: str | None = None
    crystals: int = 0
    seconds: float = 0.0


#: the models of each configuration, inside each worker process (and this one, when serial)
_models_in_this_process: dict[str, tuple[AnalysisConfig, AnalysisModels]] = {}


def analyse_image_file(image: str, out: str, config_json: str, overlay: bool = True,
                       download: bool = True) -> ImageOutcome:
    """Analyse one image file into ``out/<image name>/``; runs in a worker or in this process.

    An image that cannot be read or analysed gives an outcome with ``error`` (the batch goes
    on); a model that cannot be had raises (no image could be analysed).
    """
    from .io.outputs import write_analysis
    from .pipeline import AnalysisModels, analyze_image

    key = f"{config_json}|{download}"
    if key not in _models_in_this_process:
        config = AnalysisConfig.from_dict(json.loads(config_json))
        _models_in_this_process[key] = config, AnalysisModels.load(config, download)
    config, models = _models_in_this_process[key]
    started = time.perf_counter()
    try:
        sem_image = read_sem_image(image, config.input.pixel_size_um, config.input.exclude_data_bar)
        analysis = analyze_image(sem_image, models.classifier, config, None, models.segmenter, models.n2v)
        folder = write_analysis(Path(out), analysis, overlay=overlay)
    except ImageInputError as error:
        return ImageOutcome(image, error=str(error))
    except (ValueError, RuntimeError, MemoryError) as error:  # one odd image must not stop thousands
        return ImageOutcome(image, error=f"{Path(image).name}: analysis failed ({type(error).__name__}: {error})")
    return ImageOutcome(image, str(folder), crystals=analysis.n_crystals, seconds=time.perf_counter() - started)


def find_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The image files (by suffix) in ``folder``, sorted; hidden files left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                  and not p.name.startswith("."))


def is_finished(out: Path, image: Path) -> bool:
    return (out / image.stem / SUMMARY_NAME).is_file()


def default_worker_count() -> int:
    """Worker processes for a local cluster: one per core, as far as memory allows."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return max(1, cores)
    return max(1, min(cores, int(memory_gb // WORKER_MEMORY_GB)))


def _remove_partial_folders(out: Path) -> None:
    """Result folders a killed run left half-written (``.<name>.partial-<pid>``)."""
    for leftover in out.glob(".*.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def run_batch(images: Sequence[Path], out: str | Path, config: AnalysisConfig = AnalysisConfig(), *,
              force: bool = False, overlay: bool = True, download: bool = True, scheduler: str | None = None,
              workers: int | None = None, on_outcome: Callable[[ImageOutcome], None] | None = None,
              on_start: Callable[[int, int], None] | None = None) -> list[ImageOutcome]:
    """Analyse ``images`` into ``out`` (see the module notes); returns this run's outcomes.

    ``on_start(to_do, already_done)`` is called once the plan is known, ``on_outcome`` after each
    image. ``workers``: local worker processes (default: :func:`default_worker_count`; 0: no Dask).
    """
    out = Path(out)
    images = [Path(image) for image in images]
    stems = [image.stem for image in images]
    clashing = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashing:
        raise ValueError(f"several images share the name(s) {clashing}; their results would share a folder")
    out.mkdir(parents=True, exist_ok=True)
    _remove_partial_folders(out)
    to_do = [image for image in images if force or not is_finished(out, image)]
    if on_start:
        on_start(len(to_do), len(images) - len(to_do))
    config_json = json.dumps(config.to_dict())
    outcomes: list[ImageOutcome] = []

    def finished(outcome: ImageOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    try:
        if to_do and scheduler is None and workers == 0:
            for image in to_do:
                finished(analyse_image_file(str(image), str(out), config_json, overlay, download))
        elif to_do:
            _run_on_dask(to_do, out, config_json, overlay, download, scheduler, workers, finished)
    finally:
        write_batch_tables(out, images, [o for o in outcomes if o.error])
    return outcomes


def _run_on_dask(images: Sequence[Path], out: Path, config_json: str, overlay: bool, download: bool,
                 scheduler: str | None, workers: int | None, finished: Callable[[ImageOutcome], None]) -> None:
    # Dask's own start/stop messages at INFO would bury ours; its warnings and errors still show
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    from dask.distributed import Client, LocalCluster, as_completed

    if scheduler is not None:
        client = Client(scheduler)
        cluster = None
    else:
        count = workers or default_worker_count()
        # one thread per worker: TensorFlow and NumPy use the cores inside each task already
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None,
                               memory_limit=0)
        client = Client(cluster)
    try:
        log.info("Dask: %d worker(s) at %s", len(client.scheduler_info()["workers"]), client.scheduler.address)
        futures = [client.submit(analyse_image_file, str(image), str(out), config_json, overlay, download,
                                 pure=False, key=f"analyse-{image.stem}-{index}")
                   for index, image in enumerate(images)]
        for future in as_completed(futures):
            finished(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Rows as CSV; a column a row lacks (a result folder of an older version) stays empty."""
    with replaced_atomically(path) as partial, open(partial, "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def image_summary_row(image: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """One row of ``batch_images.csv`` from an image's ``summary.json``."""
    row: dict[str, Any] = {"Image": image.name, "Crystals": summary["n_crystals"],
                           "PixelSize_um": summary.get("pixel_size_um"),
                           "PixelSizeSource": summary.get("pixel_size_source"), "Unit": summary.get("unit"),
                           "Seconds": round(sum(summary.get("seconds", {}).values()), 3)}
    for code in RESULT_CODES:
        statistics = summary["classes"][code]
        row[f"Count_{code}"] = statistics["count"]
        row[f"Fraction_{code}"] = statistics["fraction"]
        row[f"MeanArea_{code}"] = statistics["mean_area"]
        row[f"MeanFeret_{code}"] = statistics["mean_feret"]
    return row


IMAGE_COLUMNS = ["Image", "Crystals", "PixelSize_um", "PixelSizeSource", "Unit", "Seconds",
                 *[f"{kind}_{code}" for code in RESULT_CODES for kind in ("Count", "Fraction", "MeanArea", "MeanFeret")]]


def write_batch_tables(out: Path, images: Sequence[Path], errors: Sequence[ImageOutcome]) -> None:
    """Rebuild the batch tables and batch_report.html from the finished folders of ``images``."""
    crystal_rows: list[dict[str, Any]] = []
    image_rows: list[dict[str, Any]] = []
    for image in images:
        if not is_finished(out, image):
            continue
        folder = out / image.stem
        summary = json.loads((folder / SUMMARY_NAME).read_text())
        image_rows.append(image_summary_row(image, summary))
        with open(folder / RESULTS_NAME, newline="") as stream:
            crystal_rows.extend({"Image": image.name, **row} for row in csv.DictReader(stream))
    _write_csv(out / BATCH_RESULTS_NAME, ["Image", *RESULT_COLUMNS], crystal_rows)
    _write_csv(out / BATCH_IMAGES_NAME, IMAGE_COLUMNS, image_rows)
    error_rows = [{"Image": Path(o.image).name, "Error": o.error} for o in errors]
    _write_csv(out / BATCH_ERRORS_NAME, ["Image", "Error"], error_rows)
    write_batch_report(out, image_rows, crystal_rows, error_rows)
