"""How much memory analysing an image takes, known before the work starts.

An image too large for the machine used to be found out by the operating system killing the
process minutes later. :func:`check_analysis_memory` refuses it at once instead, with a message
naming the estimate, the limit and what to do; the pipeline calls it before any heavy work.

The estimate is linear in the number of pixels, with coefficients measured as the peak resident
memory of ``microcrystalnet analyze`` (outputs and overlay.png included) above that of the process
with its models loaded (1.52 GB), on synthetic 8-bit scenes with the default settings
(bench/bench_large_image.py; BENCHMARKS.md, "Large images"): 0.39 GB above it at 2048 x 2048 px,
1.36 GB at 6000 x 6000 and 5.11 GB at 12000 x 12000 (35.5 bytes per pixel there):

* watershed segmentation and the default preprocessing chain: ``PER_PIXEL_BYTES`` per pixel
  (the image, its float32 preprocessed copy, the segmentation's distance map and labels, and
  skimage's watershed, which works on a padded float64 copy) plus ``FIXED_BYTES`` (the classifier's
  working memory on the first prediction, measured when TensorFlow ran it; in torch, by batches of
  16 patches, it needs less). Both are rounded up: the estimate exceeded the measurements by 7-25 %;
* the other settings add what their models need at any image size: SAM's weights and image
  encoder on one 1024 px tile (``SAM_MODEL_BYTES``; prompt mode also runs the watershed segmenter
  for its prompts): 3.0 GB measured for vit_b on the CPU (0.38 GB of weights), and 0.7-0.9 GB
  more since the encoder keeps the memory it frees (:data:`.segment.sam.ENCODER_KEPT_BLOCK_BYTES`);
  vit_l (random weights) 1.6 GB more than vit_b without kept memory, 0.3 GB more with it;
  vit_h is vit_l plus its larger weights and maps, not measured. Noise2Void's tiled
  prediction (``N2V_MODEL_BYTES``) is not measured either; 1 GB covers PyTorch's working memory
  on 256 px tiles;
* the crystal-contrast judgement (``crystal_contrast: auto``: the shipped learned network on one
  512 px tile, for every segmenter) is left to ``FIXED_BYTES``' rounding: it added 50-75 MB to the
  peak of a whole watershed analysis, of a 1024 x 884 px image and of a 6000 x 6000 one alike
  (BENCHMARKS.md, "One judge for every model"); with the learned segmenter its network is the
  one counted below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import psutil  # installed with dask.distributed, which the batch runs use

from .io import ImageInputError

#: measured peak memory per image pixel of the default analysis, bytes (see the module notes)
PER_PIXEL_BYTES = 36.0
#: measured memory of an analysis that does not grow with the image, bytes
FIXED_BYTES = 0.3e9
#: SAM's weights and the activations of its image encoder on one 1024 px tile, bytes per model type
SAM_MODEL_BYTES = {"vit_b": 3.9e9, "vit_l": 5.0e9, "vit_h": 6.5e9}
#: the learned segmenter: its working-scale image, class probabilities (3 x float32) and the
#: watershed, per pixel of the image at working scale, and the network's activations on one
#: 1024 px tile, bytes. Fitted to the peak RSS of `analyze` on four 2048-px synthetic images of
#: 5-10 px crystals, enlarged to 32-137 M px at working scale (3.2-8.4 GB; 2026-12-01): the peaks
#: grow by 50 B per working pixel; less the 0.9 GB of a run of large crystals on an image of that
#: size, each is 0.25-0.38 GB under this estimate (40 B, from the real images' 1-2 M px, was short)
LEARNED_PER_WORKING_PIXEL_BYTES = 50.0
LEARNED_MODEL_BYTES = 0.5e9
#: the image as read, float32, kept for SAM's learned prompter while SAM segments the preprocessed one
PROMPT_IMAGE_BYTES = 4.0
#: careamics' Noise2Void prediction (PyTorch, tiles of 256 px), bytes
N2V_MODEL_BYTES = 1.0e9
#: share of the memory available when an analysis starts that it may plan to use by default
DEFAULT_AVAILABLE_FRACTION = 0.8

GB = 1e9


class ImageTooLargeError(ImageInputError):
    """An image needs more memory than the limit allows; the message names both and what to do."""


def estimate_analysis_bytes(shape: tuple[int, ...], segmenter: str = "watershed", sam_model_type: str = "vit_b",
                            n2v: bool = False, working_scale: float = 1.0, learned_prompts: bool = False) -> int:
    """Peak memory (bytes) that analysing an image of ``shape`` (Y, X) pixels adds to a process
    whose models are loaded, outputs included.

    ``segmenter``: "watershed", "learned" (which sees the image rescaled by ``working_scale``, per
    side: above 1 where the crystals are smaller than its working diameter) or "sam" (with
    ``sam_model_type``; ``learned_prompts``: prompted by the learned segmenter, at
    ``working_scale``, on the image as read, which is kept beside the preprocessed one); ``n2v``:
    whether a Noise2Void model denoises the image.
    """
    pixels = int(shape[0]) * int(shape[1])
    estimate = FIXED_BYTES + PER_PIXEL_BYTES * pixels
    if segmenter == "sam":
        estimate += SAM_MODEL_BYTES[sam_model_type]
        if learned_prompts:  # SAM's own working scale is at most the image's; its prompter's is not
            estimate += (LEARNED_MODEL_BYTES + LEARNED_PER_WORKING_PIXEL_BYTES * pixels * working_scale ** 2
                         + PROMPT_IMAGE_BYTES * pixels)
    if segmenter == "learned":
        estimate += LEARNED_MODEL_BYTES + LEARNED_PER_WORKING_PIXEL_BYTES * pixels * working_scale ** 2
    if n2v:
        estimate += N2V_MODEL_BYTES
    return int(estimate)


def available_memory_bytes() -> int:
    """Memory the operating system can give this process now without swapping, bytes."""
    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class MemoryLimit:
    """How much memory an analysis may plan to use, bytes, and where that figure came from."""

    bytes: float
    source: str  # for the message: "the limit given", "80% of the ... GB available now"
    first_fix: str  # the message's first advice, followed by "the limit (--memory-limit-gb ...)"

    @classmethod
    def of(cls, memory_limit_gb: float | None = None) -> MemoryLimit:
        """``memory_limit_gb`` (10^9 bytes), or None: ``DEFAULT_AVAILABLE_FRACTION`` of the memory
        available now (read once: an analysis that checks again later, holding memory of its own by
        then, keeps the limit it started with)."""
        if memory_limit_gb is not None:
            return cls(memory_limit_gb * GB, "the limit given", "If the machine has the memory, raise")
        available = available_memory_bytes()
        return cls(DEFAULT_AVAILABLE_FRACTION * available,
                   f"{DEFAULT_AVAILABLE_FRACTION:.0%} of the {available / GB:.1f} GB of memory available now",
                   "Close other programs to free memory, or, if the memory will be there, raise")


def check_analysis_memory(path: str | Path, shape: tuple[int, ...], estimate_bytes: int,
                          memory_limit_gb: float | MemoryLimit | None = None, why: str = "") -> None:
    """Raise :class:`ImageTooLargeError` when ``estimate_bytes`` exceeds the limit.

    ``memory_limit_gb``: the limit in gigabytes (10^9 bytes), a :class:`MemoryLimit`, or None:
    ``DEFAULT_AVAILABLE_FRACTION`` of the memory available now. ``path`` and ``shape`` (Y, X) name
    the image in the message; ``why``: what makes it need that much, when it is not the image's
    size alone (a sentence).
    """
    allowed = memory_limit_gb if isinstance(memory_limit_gb, MemoryLimit) else MemoryLimit.of(memory_limit_gb)
    limit, source, first_fix = allowed.bytes, allowed.source, allowed.first_fix
    if estimate_bytes <= limit:
        return
    needed_gb = math.ceil(estimate_bytes / GB * 1.1)
    otherwise = (" Otherwise analyse the image in parts (crop it) or at a coarser pixel size (bin it, e.g. "
                 "Image > Scale in Fiji)." if not why else " Otherwise analyse the image in parts (crop it).")
    raise ImageTooLargeError(
        f"{path}: analysing this {shape[1]} x {shape[0]} px image needs about {estimate_bytes / GB:.1f} GB of "
        f"memory (estimate), more than the limit of {limit / GB:.1f} GB ({source}).{' ' + why if why else ''} "
        f"{first_fix} the limit (--memory-limit-gb {needed_gb}; input.memory_limit_gb in a settings file)."
        f"{otherwise}")
