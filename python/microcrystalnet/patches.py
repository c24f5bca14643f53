"""Crystal patches: the classifier's view of each crystal.

A patch is the crystal's bounding box, enlarged by a margin on every side, cut from the gray
image (optionally with everything outside the crystal set to black) and resized to ``size`` x ``size`` without keeping the aspect ratio, as Keras'
``flow_from_directory`` resized the authors' training patches. Resizing averages (anti-aliased
bilinear) rather than picking nearest pixels: the authors' patches came from denoised images,
and averaging is what keeps a noisy image's patch close to that.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

from .config import PatchConfig

Array = np.ndarray


def patch_box(box: tuple[slice, slice], shape: tuple[int, int], margin_fraction: float) -> tuple[slice, slice]:
    """``box`` grown by ``margin_fraction`` of its height/width on each side, clipped to ``shape``."""
    grown = []
    for axis_slice, limit in zip(box, shape):
        length = axis_slice.stop - axis_slice.start
        margin = int(round(margin_fraction * length))
        grown.append(slice(max(axis_slice.start - margin, 0), min(axis_slice.stop + margin, limit)))
    return grown[0], grown[1]


def extract_patches(image: Array, labels: Array, config: PatchConfig = PatchConfig()) -> Array:
    """One patch per crystal, in label order: float32 (N, size, size, 1) in [0, 1].

    ``image``: float (Y, X) in [0, 1] (see :func:`microcrystalnet.io.to_unit_range`);
    ``labels``: int (Y, X) crystal labels 1..N of the same shape.
    """
    if image.shape != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} differ in shape")
    boxes = ndi.find_objects(labels)
    if any(box is None for box in boxes):
        raise ValueError("labels must be numbered 1..N without gaps (see segment.tidy_labels)")
    patches = np.empty((len(boxes), config.size, config.size, 1), np.float32)
    for index, box in enumerate(boxes):
        grown = patch_box(box, image.shape, config.margin_fraction)
        crop = image[grown]
        if config.mask_background:
            crop = np.where(labels[grown] == index + 1, crop, 0.0)
        patches[index, :, :, 0] = resize(crop, (config.size, config.size), order=1,
                                         anti_aliasing=True, preserve_range=True)
    return np.clip(patches, 0.0, 1.0)
