"""Labelled crystal patches for training and evaluating classifiers.

Three sources, one result (:class:`PatchDataset`):

* **class folders** (the authors' layout): ``ROOT/<class>/<patch image>``, the folder named by a
  class code or word (``RES``/``rhombic``, ``PES``/``polyhedral``, ``AA``/``amorphous``,
  ``RA-SA``/``spherical``/``rounded``); folders named ``unclear``/``unknown`` are left out with a
  count. Patches are read as gray and resized to the input size. The source image of a patch,
  which keeps all crystals of one image on the same side of a split, is the part of its file
  name before ``__`` (``scene03__0012.png``); without it every patch is its own source.
* **images with Fiji ROIs**: each image with its ``RoiSet.zip``; a ROI's class comes from its
  name (``0001-RES``, ``rhombic 3``) or from a CSV with ``Name`` and ``Class`` columns. ROIs
  without a recognisable class, or marked unclear, are left out with a count.
* **synthetic scenes** (:mod:`microcrystalnet.synth`), with exact classes, for tests and benchmarks.

Patches from images are cut exactly as the analysis cuts them: the image goes through the same
preprocessing chain first, then :func:`microcrystalnet.patches.extract_patches`.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.io import imread
from skimage.transform import resize

from ..classes import CLASS_CODES, class_by_code, class_from_label, is_unclear_label
from ..config import AnalysisConfig
from ..io import read_sem_image, to_unit_range
from ..io.owned_files import claim_output_folder
from ..io.roiset import read_reference_crystals
from ..patches import extract_patches
from ..preprocess import preprocess

Array = np.ndarray
log = logging.getLogger(__name__)

PATCH_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
GROUP_SEPARATOR = "__"


class DatasetError(ValueError):
    """Training data cannot be used; the message names the file or folder and the fix."""


@dataclass
class PatchDataset:
    """Labelled patches: ``patches`` float32 (N, size, size, 1) in [0, 1]; ``labels`` int (N,)
    indices into ``CLASS_CODES``; ``groups[i]`` the source image of patch i; ``names[i]`` where it
    came from; ``dropped``: crystals left out, counted by reason."""

    patches: Array
    labels: Array
    groups: Array
    names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.patches) == len(self.labels) == len(self.groups) == len(self.names):
            raise ValueError("patches, labels, groups and names differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def input_size(self) -> int:
        return int(self.patches.shape[1])

    def subset(self, indices: Array) -> "PatchDataset":
        indices = np.asarray(indices, int)
        return PatchDataset(self.patches[indices], self.labels[indices], self.groups[indices],
                            [self.names[i] for i in indices], dict(self.dropped))

    def class_counts(self) -> dict[str, int]:
        return {code: int(np.sum(self.labels == index)) for index, code in enumerate(CLASS_CODES)}

    def describe(self) -> str:
        counts = ", ".join(f"{code} {count}" for code, count in self.class_counts().items())
        text = f"{len(self)} patches from {len(set(self.groups.tolist()))} images ({counts})"
        if self.dropped:
            text += "; left out: " + ", ".join(f"{count} {reason}" for reason, count in self.dropped.items())
        return text


def concatenate(datasets: Sequence[PatchDataset]) -> PatchDataset:
    """One data set from several (dropped counts added up)."""
    if not datasets:
        raise DatasetError("no training data given")
    dropped: Counter[str] = Counter()
    for dataset in datasets:
        dropped.update(dataset.dropped)
    return PatchDataset(np.concatenate([d.patches for d in datasets]), np.concatenate([d.labels for d in datasets]),
                        np.concatenate([d.groups for d in datasets]), [n for d in datasets for n in d.names],
                        dict(dropped))


def _read_patch(path: Path, size: int) -> Array:
    try:
        pixels = np.asarray(imread(path))
    except Exception as error:  # imageio/tifffile raise many types for unreadable files
        raise DatasetError(f"{path}: cannot be read as an image ({error}); remove or replace it") from error
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        pixels = pixels[..., :3].mean(axis=-1).astype(pixels.dtype)
    if pixels.ndim != 2 or min(pixels.shape) < 2:
        raise DatasetError(f"{path}: expected a 2D gray or RGB patch, got shape {pixels.shape}")
    return resize(to_unit_range(pixels), (size, size), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def load_class_folders(root: str | Path, size: int = 64) -> PatchDataset:
    """Patches from ``root/<class>/*.png|tif|jpg`` (see the module notes for names and groups)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    patches, labels, groups, names = [], [], [], []
    dropped: Counter[str] = Counter()
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise DatasetError(f"{root}: holds no class folders; expected {root}/RES, {root}/PES, {root}/AA, {root}/RA-SA")
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PATCH_SUFFIXES)
        if is_unclear_label(folder.name):
            dropped[f"in '{folder.name}'"] += len(files)
            continue
        crystal_class = class_from_label(folder.name)
        if crystal_class is None:
            raise DatasetError(f"{folder}: the folder name is not a crystal class; name class folders "
                               f"{', '.join(c for c in CLASS_CODES)} (RA/SA as RA-SA) or rhombic, polyhedral, "
                               "amorphous, spherical; 'unclear' folders are left out")
        if not files:
            raise DatasetError(f"{folder}: class folder holds no patch images ({', '.join(PATCH_SUFFIXES)})")
        for path in files:
            patches.append(_read_patch(path, size))
            labels.append(CLASS_CODES.index(crystal_class.code))
            stem = path.stem
            groups.append(stem.split(GROUP_SEPARATOR)[0] if GROUP_SEPARATOR in stem else f"{folder.name}/{stem}")
            names.append(str(path.relative_to(root)))
    if not patches:
        raise DatasetError(f"{root}: no labelled patches found")
    return PatchDataset(np.stack(patches)[..., None], np.asarray(labels, int), np.asarray(groups), names,
                        dict(dropped))


def write_class_folders(dataset: PatchDataset, root: str | Path) -> Path:
    """Save patches as 8-bit PNGs in the class-folder layout (``ROOT/<code>/<group>__<n>.png``);
    ``root`` must be new, empty, or a folder this program wrote (else ``OutputFolderError``)."""
    from skimage.io import imsave

    root = claim_output_folder(Path(root))
    for index in range(len(dataset)):
        folder = root / class_by_code(CLASS_CODES[dataset.labels[index]]).file_code
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.round(dataset.patches[index, :, :, 0] * 255).astype(np.uint8)
        imsave(folder / f"{dataset.groups[index]}{GROUP_SEPARATOR}{index:05d}.png", pixels, check_contrast=False)
    return root


def labelled_patches(image: Array, pixel_size_um: float, labels: Array, classes: Sequence[str | None],
                     config: AnalysisConfig, group: str, names: Sequence[str]) -> PatchDataset:
    """Patches of labelled crystals in one image, cut as the analysis cuts them.

    ``image``: float (Y, X) in [0, 1]; ``labels``: int (Y, X) 1..N; ``classes[i]``: the class
    code of label i + 1, or None to leave it out.
    """
    prepared, _ = preprocess(image, pixel_size_um, config.preprocess)
    keep = [index for index, code in enumerate(classes) if code is not None]
    all_patches = extract_patches(prepared, labels, config.patch)
    return PatchDataset(all_patches[keep], np.asarray([CLASS_CODES.index(classes[i]) for i in keep], int),
                        np.asarray([group] * len(keep)), [names[i] for i in keep],
                        {"without a class": len(classes) - len(keep)} if len(keep) < len(classes) else {})


def _classes_from_csv(path: Path) -> dict[tuple[str, str], str]:
    """(image stem or "", ROI name) -> class label, from a CSV with Name, Class and optional Image columns."""
    try:
        with open(path, newline="") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as error:
        raise DatasetError(f"{path}: cannot be read ({error})") from error
    if not rows or not {"Name", "Class"} <= set(rows[0]):
        raise DatasetError(f"{path}: needs the columns Name and Class (and optionally Image)")
    return {(Path(row.get("Image") or "").stem, row["Name"]): row["Class"] for row in rows}


def load_annotated_images(pairs: Iterable[tuple[str | Path, str | Path]], config: AnalysisConfig = AnalysisConfig(),
                          class_table: str | Path | None = None,
                          progress: Callable[[str], None] | None = None) -> PatchDataset:
    """Patches from SEM images and their Fiji ROI sets (``(image, RoiSet.zip)`` pairs).

    A ROI's class comes from ``class_table`` (CSV: Name, Class, optional Image) when given,
    else from its name. Crystals without a recognisable class are left out with a count.
    """
    table = _classes_from_csv(Path(class_table)) if class_table else None
    datasets = []
    for image_path, roi_path in pairs:
        image = read_sem_image(image_path, exclude_data_bar=config.input.exclude_data_bar)
        pixels = image.analysed_pixels
        reference = read_reference_crystals(roi_path, image.pixels.shape)
        labels = reference.labels[: pixels.shape[0]]
        present = np.unique(labels[labels > 0])
        dropped: Counter[str] = Counter()
        classes: list[str | None] = []
        names: list[str] = []
        for label in present:
            name = reference.names[label - 1]
            text = (table.get((image.path.stem, name), table.get(("", name))) if table is not None else name) or ""
            crystal_class = class_from_label(text)
            if crystal_class is None:
                dropped["unclear" if is_unclear_label(text) else "without a class"] += 1
            classes.append(crystal_class.code if crystal_class else None)
            names.append(f"{image.path.name}#{name}")
        if len(present) < len(reference.names):
            dropped["hidden by later ROIs or under the data bar"] += len(reference.names) - len(present)
        relabelled = np.searchsorted(present, labels) + 1
        relabelled[labels == 0] = 0
        dataset = labelled_patches(to_unit_range(pixels), image.pixel_size_um or config.input.assumed_pixel_size_um,
                                   relabelled, classes, config, image.path.stem, names)
        dataset.dropped = dict(dropped)
        datasets.append(dataset)
        if progress:
            progress(f"{image.path.name}: {len(dataset)} crystals")
    return concatenate(datasets)


def load_training_data(sources: Sequence[str | Path], config: AnalysisConfig = AnalysisConfig(),
                       classes_csv: str | Path | None = None,
                       progress: Callable[[str], None] = lambda message: None) -> PatchDataset:
    """Labelled patches from one folder of class folders, or from image / Fiji RoiSet.zip pairs
    (``[image1, roiset1, image2, roiset2, ...]``) cut with ``config`` as analyses cut them."""
    paths = [Path(source) for source in sources]
    if len(paths) == 1 and paths[0].is_dir():
        return load_class_folders(paths[0], config.patch.size)
    if not paths or len(paths) % 2:
        raise DatasetError("give one folder of class folders, or pairs of IMAGE ROISET")
    return load_annotated_images(list(zip(paths[0::2], paths[1::2])), config, classes_csv, progress=progress)


def synthetic_dataset(scenes: int, shape: tuple[int, int] = (1024, 1024), pixel_size_um: float = 0.02,
                      config: AnalysisConfig = AnalysisConfig(), first_seed: int = 1000,
                      progress: Callable[[str], None] | None = None) -> PatchDataset:
    """Patches of every crystal of ``scenes`` synthetic scenes (exact classes), grouped by scene."""
    from ..synth import SceneSpec, render_scene

    datasets = []
    for index in range(scenes):
        scene = render_scene(SceneSpec(shape=shape, pixel_size_um=pixel_size_um, seed=first_seed + index))
        group = f"scene{first_seed + index}"
        names = [f"{group}#{label}" for label in range(1, scene.n_crystals + 1)]
        datasets.append(labelled_patches(scene.image.astype(np.float32) / 255.0, pixel_size_um, scene.labels,
                                         list(scene.crystal_classes), config, group, names))
        if progress:
            progress(f"scene {index + 1}/{scenes}: {scene.n_crystals} crystals")
    return concatenate(datasets)
