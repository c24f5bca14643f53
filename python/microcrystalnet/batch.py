"""Batch analysis of many SEM images: resumable, on this machine or a Dask cluster.

Each image's results go to ``OUT/<image name>/`` exactly as ``analyze`` writes them, renamed into
place only when complete (:mod:`microcrystalnet.io.result_folder`); a result folder with a
readable ``summary.json`` and ``results.csv`` is a finished image, skipped on the next run unless
``force``; a damaged one is analysed again. A run that is interrupted (Ctrl-C, a kill, a lost
machine) therefore loses only the images in progress. One batch at a time writes into ``OUT``
(:mod:`microcrystalnet.io.batch_lock`); it first recovers what interrupted runs left there, and
refuses to start when an image's folder exists but is not a result folder of this program.
After every run the batch tables are rebuilt from all finished result folders in ``OUT``::

    OUT/batch_results.csv   one row per crystal of every finished image (Image column first)
    OUT/batch_images.csv    one row per finished image: crystals, class counts and fractions, sizes
    OUT/batch_errors.csv    what of this run's input could not be analysed, with the reason
    OUT/batch_report.html   class fractions per image and size distributions across images (+ PNGs)

The inputs are never written to. ``OUT`` may be the input folder or inside it: the program's own
result folders and batch files are left out of the inputs (:func:`find_batch_inputs`). A file at a
batch table's name that this program did not write (or that was changed since) is never replaced:
the batch refuses to start (:mod:`microcrystalnet.io.owned_files`).

Work is spread with Dask (``dask.distributed``): by default a local cluster of worker processes
sized to this machine; ``scheduler`` names a running Dask scheduler to use a real cluster (the
workers need this package and the models, and the folders must be shared). Each worker process
loads the models once and keeps them for every image it gets. With ``workers=0`` and no
scheduler, images are analysed one after another in this process.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .classes import RESULT_CODES
from .config import AnalysisConfig
from .io import SUPPORTED_SUFFIXES, ImageInputError
from .io.batch_lock import LOCK_NAME, batch_lock
from .io.owned_files import LEDGER_NAME, check_replaceable_files, own_file
from .io.outputs import OUTPUT_NAMES, RESULTS_NAME, SUMMARY_NAME
from .io.report import BATCH_REPORT_FILE_NAMES, write_batch_report
from .io.result_folder import (OutputFolderError, OutputWriteError, check_replaceable, is_result_folder,
                               output_write_error, recover_leftovers)
from .memory import GB, N2V_MODEL_BYTES, SAM_MODEL_BYTES
from .results import RESULT_COLUMNS

if TYPE_CHECKING:
    from .pipeline import AnalysisModels

log = logging.getLogger(__name__)

BATCH_RESULTS_NAME = "batch_results.csv"
BATCH_IMAGES_NAME = "batch_images.csv"
BATCH_ERRORS_NAME = "batch_errors.csv"
#: the tables and report a batch writes into OUT beside the result folders (replaced only while its own)
BATCH_TABLE_FILE_NAMES = (BATCH_RESULTS_NAME, BATCH_IMAGES_NAME, BATCH_ERRORS_NAME, *BATCH_REPORT_FILE_NAMES)
#: every file a batch writes into OUT beside the result folders
BATCH_FILE_NAMES = (*BATCH_TABLE_FILE_NAMES, LOCK_NAME, LEDGER_NAME)
#: memory one worker process needs (its frameworks, the models, a 2048 x 2048 image at work)
WORKER_MEMORY_GB = 3.0


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image: its result folder, or the reason it could not be analysed."""

    image: str
    folder: str | None = None
    error: str | None = None
    crystals: int = 0
    seconds: float = 0.0
    #: what the analysis said about the image (nothing found and why, a pixel size assumed, ...)
    notices: tuple[str, ...] = ()


class DamagedResultError(Exception):
    """A result folder that is not a finished result (a file missing, cut short or unreadable)."""


#: the models of the last configuration, inside each worker process (and this one, when serial): a
#: batch has one configuration, so a process keeps one set of models however many batches it runs
_models_in_this_process: dict[str, tuple[AnalysisConfig, AnalysisModels]] = {}


def analyse_image_file(image: str, out: str, config_json: str, overlay: bool = True,
                       download: bool = True) -> ImageOutcome:
    """Analyse one image file into ``out/<image name>/``; runs in a worker or in this process.

    An image that cannot be read, analysed or written gives an outcome with ``error`` (the
    batch goes on); a model that cannot be had raises (no image could be analysed).
    """
    from .pipeline import AnalysisModels, analyze_file

    key = f"{config_json}|{download}"
    if key not in _models_in_this_process:
        _models_in_this_process.clear()  # another batch's models: freed before these are loaded
        config = AnalysisConfig.from_dict(json.loads(config_json))
        _models_in_this_process[key] = config, AnalysisModels.load(config, download)
    config, models = _models_in_this_process[key]
    started = time.perf_counter()
    try:
        analysis, folder = analyze_file(image, out, models, config, overlay=overlay)
    except (ImageInputError, OutputFolderError, OutputWriteError) as error:
        return ImageOutcome(image, error=str(error))
    except (ValueError, RuntimeError, MemoryError) as error:  # one odd image must not stop thousands
        return ImageOutcome(image, error=f"{Path(image).name}: analysis failed ({type(error).__name__}: {error})")
    return ImageOutcome(image, str(folder), crystals=analysis.n_crystals, seconds=time.perf_counter() - started,
                        notices=tuple(analysis.notices))


@dataclass
class BatchInputs:
    """The images of a batch's input folder, and what looked like one but cannot be analysed.

    ``skipped``: outcomes with the reason (they go to batch_errors.csv); ``own_results``: how
    many files of the program's own results were left out (when OUT is inside the input folder).
    """

    images: list[Path] = field(default_factory=list)
    skipped: list[ImageOutcome] = field(default_factory=list)
    own_results: int = 0


def _entries(folder: Path, inputs: BatchInputs) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(folder) as listing:
            yield from sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        inputs.skipped.append(ImageOutcome(str(folder), error=f"{folder}: folder cannot be read "
                                                              f"({error.strerror}); its images were not analysed"))


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _gather(folder: Path, recursive: bool, out: Path, inputs: BatchInputs) -> None:
    is_out = folder.resolve() == out.resolve()
    for entry in _entries(folder, inputs):
        path = Path(entry.path)
        if entry.name.startswith("."):  # hidden: the program's leftovers and lock, dot-folders
            continue
        if is_out and entry.name in BATCH_FILE_NAMES:
            inputs.own_results += 1
            continue
        looks_like_image = path.suffix.lower() in SUPPORTED_SUFFIXES
        if entry.is_symlink() and not path.exists():
            if looks_like_image:
                inputs.skipped.append(ImageOutcome(str(path), error=f"{path}: a link to {os.readlink(path)}, "
                                                                    f"which does not exist; not analysed"))
            continue
        try:
            is_folder = entry.is_dir()
        except OSError as error:
            inputs.skipped.append(ImageOutcome(str(path), error=f"{path} cannot be read ({error.strerror})"))
            continue
        if is_folder and is_result_folder(path):
            inputs.own_results += _count_files(path)
        elif is_folder and looks_like_image:
            inputs.skipped.append(ImageOutcome(str(path), error=f"{path} is a folder named like an image; not "
                                                                f"analysed (give it as its own batch folder if it "
                                                                f"holds images)"))
        elif is_folder and recursive and entry.is_symlink():
            inputs.skipped.append(ImageOutcome(str(path), error=f"{path} is a link to a folder, not followed; give "
                                                                f"that folder as a batch of its own"))
        elif is_folder and recursive:
            _gather(path, recursive, out, inputs)
        elif looks_like_image and not is_folder:
            if os.access(path, os.R_OK):
                inputs.images.append(path)
            else:
                inputs.skipped.append(ImageOutcome(str(path), error=f"{path} cannot be read (no permission); not "
                                                                    f"analysed"))


def find_batch_inputs(folder: str | Path, recursive: bool = False, out: str | Path | None = None) -> BatchInputs:
    """The image files (by suffix) in ``folder``, sorted, hidden files and folders left out, and
    what looks like an image but cannot be analysed (a folder or a broken link named like an
    image, an unreadable file or folder), each logged.

    The program's own outputs are never inputs: result folders (anywhere below ``folder``) and
    the batch files of ``out`` are left out, so ``out`` may be ``folder`` or inside it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    inputs = BatchInputs()
    _gather(folder, recursive, Path(out) if out is not None else folder, inputs)
    inputs.images.sort()
    for skipped in inputs.skipped:
        log.warning("%s", skipped.error)
    if inputs.own_results:
        log.info("%d file(s) of MicroCrystalNet's own results in %s left out of the inputs", inputs.own_results,
                 folder)
    return inputs


def without_name_clashes(images: Sequence[Path]) -> tuple[list[Path], list[ImageOutcome]]:
    """``images`` less those whose results would share a folder (same name but the suffix, e.g.
    ``a.tif`` and ``a.jpg``, or ``x/a.tif`` and ``y/a.tif``), and an outcome saying what to do for each of those."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for image in images:
        by_stem[image.stem].append(image)
    kept, clashing = [], []
    for image in images:
        sharing = by_stem[image.stem]
        if len(sharing) == 1:
            kept.append(image)
            continue
        others = ", ".join(str(other) for other in sharing if other != image)
        advice = ("rename one of them" if len({other.parent for other in sharing}) == 1 else
                  "rename one of them, or analyse their folders as separate batches, each with its own --out")
        clashing.append(ImageOutcome(str(image), error=f"{image}: not analysed, its results would share the folder "
                                                       f"'{image.stem}' with {others}: {advice}"))
    return kept, clashing


def read_finished_summary(folder: Path) -> dict[str, Any]:
    """The ``summary.json`` of a finished result folder; :class:`DamagedResultError` (saying what
    is wrong) when it or ``results.csv`` is missing, cut short or unreadable."""
    summary_path, results_path = folder / SUMMARY_NAME, folder / RESULTS_NAME
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if not isinstance(summary.get("n_crystals"), int) or not all(code in summary["classes"]
                                                                   for code in RESULT_CODES):
            raise ValueError("counts per class missing")
        with open(results_path, newline="", encoding="utf-8") as stream:
            header = next(csv.reader(stream), [])
    except FileNotFoundError as error:
        raise DamagedResultError(f"{folder}: damaged result, {Path(error.filename).name} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, csv.Error) as error:
        raise DamagedResultError(f"{folder}: damaged result, {summary_path.name} or {results_path.name} cannot be "
                                 f"read ({type(error).__name__}: {error})") from None
    if "Crystal" not in header:
        raise DamagedResultError(f"{folder}: damaged result, {results_path.name} has no header row")
    return summary


def _to_do(out: Path, images: Sequence[Path], force: bool) -> list[Path]:
    """The images without a finished result folder (all with ``force``); refuses to start when
    an image's folder is there but may not be replaced."""
    to_do = []
    for image in images:
        folder = out / image.stem
        check_replaceable(folder, OUTPUT_NAMES)
        if force or not folder.exists():
            to_do.append(image)
            continue
        try:
            read_finished_summary(folder)
        except DamagedResultError as error:
            log.warning("%s: analysing it again", error)
            to_do.append(image)
    return to_do


def worker_memory_gb(config: AnalysisConfig = AnalysisConfig()) -> float:
    """Memory one local worker process needs for ``config``: :data:`WORKER_MEMORY_GB` (the default
    analysis), plus SAM's weights and image encoder where SAM segments and Noise2Void's prediction
    where a model denoises (:mod:`microcrystalnet.memory`'s measured figures)."""
    extra_bytes = SAM_MODEL_BYTES[config.segment.sam.model_type] if config.segment.backend == "sam" else 0.0
    if config.preprocess.runs_n2v_model:
        extra_bytes += N2V_MODEL_BYTES
    return WORKER_MEMORY_GB + extra_bytes / GB


def worker_count(*, cores: int, memory_gb: float | None, config: AnalysisConfig = AnalysisConfig()) -> int:
    """Worker processes for a local cluster on a machine of ``cores`` and ``memory_gb`` (None:
    unknown): one per core, as far as memory allows (:func:`worker_memory_gb`), at least one."""
    if memory_gb is None:
        return max(1, cores)
    return max(1, min(cores, int(memory_gb // worker_memory_gb(config))))


def default_worker_count(config: AnalysisConfig = AnalysisConfig()) -> int:
    """Worker processes for a local cluster on this machine (:func:`worker_count`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    return worker_count(cores=cores, memory_gb=memory_gb, config=config)


def run_batch(images: Sequence[Path], out: str | Path, config: AnalysisConfig = AnalysisConfig(), *,
              skipped: Sequence[ImageOutcome] = (), force: bool = False, overlay: bool = True,
              download: bool = True, scheduler: str | None = None, workers: int | None = None, wait: bool = False,
              on_outcome: Callable[[ImageOutcome], None] | None = None,
              on_start: Callable[[int, int], None] | None = None) -> list[ImageOutcome]:
    """Analyse ``images`` into ``out`` (see the module notes); returns this run's outcomes,
    ``skipped`` (inputs that cannot be analysed, from :func:`find_batch_inputs`) and images
    whose names clash included.

    ``on_start(to_do, already_done)`` is called once the plan is known, ``on_outcome`` after each
    image. ``workers``: local worker processes (default: :func:`default_worker_count` for ``config``;
    0: no Dask).
    ``wait``: wait for another batch writing into ``out`` to end (default: refuse at once).
    Raises ``OutputFolderError`` (another batch at work in ``out``, an image's folder that is
    not a result folder of this program, or a file at a batch table's name that it did not write)
    and ``OutputWriteError`` (``out`` cannot be written).
    """
    out = Path(out)
    images, clashing = without_name_clashes([Path(image) for image in images])
    for outcome in clashing:
        log.warning("%s", outcome.error)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_write_error(error, out) from error
    with batch_lock(out, wait):
        for notice in recover_leftovers(out):
            log.warning("%s", notice)
        check_replaceable_files((out / name for name in BATCH_TABLE_FILE_NAMES),
                                earlier_version=written_by_an_earlier_batch)
        to_do = _to_do(out, images, force)
        if on_start:
            on_start(len(to_do), len(images) - len(to_do))
        config_json = json.dumps(config.to_dict())
        outcomes: list[ImageOutcome] = [*skipped, *clashing]

        def finished(outcome: ImageOutcome) -> None:
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)

        try:
            if to_do and scheduler is None and workers == 0:
                for image in to_do:
                    finished(analyse_image_file(str(image), str(out), config_json, overlay, download))
            elif to_do:
                _run_on_dask(to_do, out, config_json, overlay, download, scheduler,
                             workers or default_worker_count(config), finished)
        finally:
            write_batch_tables(out, [o for o in outcomes if o.error])
    return outcomes


@contextlib.contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Ctrl-C at a terminal interrupts every process of the group, and each Dask worker printed a
    traceback. Worker processes started in this block inherit an ignored SIGINT, so only this
    process handles Ctrl-C: it stops the cluster and keeps the finished images. (A Ctrl-C while
    the workers start is ignored too.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class CtrlCCancelNoiseFilter(logging.Filter):
    """Drops one known false alarm. Ctrl-C that lands while ``dask.distributed`` is just starting a
    call to the cluster makes its cancel callback fail with ``NameError: cannot access free variable
    'future'`` (distributed 2026.8, ``utils.sync``: nothing was there to cancel), and tornado logs that
    as "Exception in callback ..." with a traceback: noise in the user's log after a clean stop.
    Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or not isinstance(record.exc_info[1], NameError):
            return True
        frame = record.exc_info[2]
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        code = frame.tb_frame.f_code if frame is not None else None
        return not (code is not None and code.co_name == "cancel"
                    and Path(code.co_filename).parts[-2:] == ("distributed", "utils.py"))


def ignore_ctrl_c_cancel_noise() -> None:
    """Installs :class:`CtrlCCancelNoiseFilter` on tornado's callback-error logger (once); it stays,
    as the failing callback runs on Dask's own thread, possibly after the client has closed."""
    logger = logging.getLogger("tornado.application")
    if not any(isinstance(f, CtrlCCancelNoiseFilter) for f in logger.filters):
        logger.addFilter(CtrlCCancelNoiseFilter())


def _run_on_dask(images: Sequence[Path], out: Path, config_json: str, overlay: bool, download: bool,
                 scheduler: str | None, workers: int, finished: Callable[[ImageOutcome], None]) -> None:
    # Dask's own start/stop messages at INFO would bury ours; its warnings and errors still show,
    # but for the one each worker gives for its task cancelled by Ctrl-C (workers read this too)
    os.environ.setdefault("DASK_LOGGING", repr({"distributed": "warning", "distributed.worker.state_machine": "error"}))
    from dask.distributed import Client, LocalCluster, as_completed

    ignore_ctrl_c_cancel_noise()
    if scheduler is not None:
        client = Client(scheduler)
        cluster = None
    else:
        # one thread per worker: torch and NumPy use the cores inside each task already
        with _workers_ignore_ctrl_c():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
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


def written_by_an_earlier_batch(path: Path) -> bool:
    """Whether ``path``, at a batch table's name in a folder of result folders, is a table an
    earlier version wrote (before the ledger of :mod:`.io.owned_files`): what it holds is ours."""
    if not any(is_result_folder(folder) for folder in path.parent.iterdir()):
        return False
    try:
        with open(path, "rb") as stream:
            start = stream.read(4096)
    except OSError:
        return False
    if path.suffix == ".csv":
        return start.startswith(b"Image,")
    if path.suffix == ".png":
        return start.startswith(b"\x89PNG\r\n\x1a\n")
    return b"<title>MicroCrystalNet batch</title>" in start


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Rows as CSV; a column a row lacks (a result folder of an older version) stays empty."""
    with own_file(path, earlier_version=written_by_an_earlier_batch) as partial, \
            open(partial, "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def image_summary_row(image: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """One row of ``batch_images.csv`` from an image's ``summary.json``."""
    row: dict[str, Any] = {"Image": image.name, "Crystals": summary["n_crystals"],
                           "PixelSize_um": summary.get("pixel_size_um"),
                           "PixelSizeSource": summary.get("pixel_size_source"), "Unit": summary.get("unit"),
                           "Seconds": round(sum(summary.get("seconds", {}).values()), 3),
                           "Notices": " | ".join(map(str, summary.get("notices", [])))}
    for code in RESULT_CODES:
        statistics = summary["classes"][code]
        row[f"Count_{code}"] = statistics["count"]
        row[f"Fraction_{code}"] = statistics["fraction"]
        row[f"MeanArea_{code}"] = statistics["mean_area"]
        row[f"MeanFeret_{code}"] = statistics["mean_feret"]
    return row


#: batch_results.csv: every crystal, with its image and the unit of its lengths ("um", or "pixel" for an
#: image without pixel size; areas in its square), as images with and without one may be mixed
BATCH_RESULT_COLUMNS = ["Image", "Unit", *RESULT_COLUMNS]
IMAGE_COLUMNS = ["Image", "Crystals", "PixelSize_um", "PixelSizeSource", "Unit", "Seconds",
                 *[f"{kind}_{code}" for code in RESULT_CODES
                   for kind in ("Count", "Fraction", "MeanArea", "MeanFeret")], "Notices"]


def write_batch_tables(out: Path, errors: Sequence[ImageOutcome]) -> None:
    """Rebuild the batch tables and batch_report.html from every finished result folder in
    ``out`` (whichever run wrote it); a damaged one is left out with a notice. Raises
    ``OutputFolderError`` when a file at a table's name is not one this program wrote, and
    ``OutputWriteError`` when they cannot be written."""
    crystal_rows: list[dict[str, Any]] = []
    image_rows: list[dict[str, Any]] = []
    for folder in sorted(out.iterdir()):
        if folder.name.startswith(".") or not is_result_folder(folder):
            continue
        try:
            summary = read_finished_summary(folder)
            image = Path(str(summary.get("image", folder.name)))
            with open(folder / RESULTS_NAME, newline="", encoding="utf-8") as stream:
                rows = [{"Image": image.name, "Unit": summary.get("unit"), **row} for row in csv.DictReader(stream)]
            image_rows.append(image_summary_row(image, summary))
        except (DamagedResultError, OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError,
                AttributeError) as error:
            log.warning("%s: left out of the batch tables (%s)", folder, error)
            continue
        crystal_rows.extend(rows)
    error_rows = [{"Image": Path(o.image).name, "Error": o.error} for o in errors]
    # checked when the batch started, and again: a user may have put one there since
    check_replaceable_files([out / name for name in BATCH_TABLE_FILE_NAMES],
                            earlier_version=written_by_an_earlier_batch)
    try:
        _write_csv(out / BATCH_RESULTS_NAME, BATCH_RESULT_COLUMNS, crystal_rows)
        _write_csv(out / BATCH_IMAGES_NAME, IMAGE_COLUMNS, image_rows)
        _write_csv(out / BATCH_ERRORS_NAME, ["Image", "Error"], error_rows)
        write_batch_report(out, image_rows, crystal_rows, error_rows,
                           writer=functools.partial(own_file, earlier_version=written_by_an_earlier_batch))
    except OSError as error:  # a full disk, say: the result folders are complete all the same
        raise output_write_error(error, out) from error
