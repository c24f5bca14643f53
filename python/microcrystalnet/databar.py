"""The information bar that many SEM instruments burn into the bottom of their images.

FEI/Thermo Fisher, Zeiss, JEOL and Tescan images often end in a band of rows holding the
magnification, voltage and scale bar: a flat background (black or white) with text and lines.
It is not sample and must not be segmented. :func:`find_data_bar` finds its first row from
the pixels alone; the reader prefers what the file's metadata says where it says it.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

#: a row belongs to the bar when at least this fraction of it has one exactly flat value
FLAT_ROW_FRACTION = 0.5
#: bars are at least this many rows high and at most this fraction of the image height
MIN_BAR_ROWS = 8
MAX_BAR_FRACTION = 0.3


def _flat_fraction(row: Array) -> tuple[float, float]:
    values, counts = np.unique(row, return_counts=True)
    top = int(np.argmax(counts))
    return counts[top] / row.size, float(values[top])


def find_data_bar(image: Array) -> int | None:
    """First row of the bottom data bar, or None when the image has none.

    ``image``: (Y, X) gray, any dtype. Rows count as bar rows when half or more of their
    pixels share one value that is the image's darkest or brightest (bar backgrounds are
    pure black or white; sample rows carry noise). The bar is the run of such rows at the
    bottom, if it is between ``MIN_BAR_ROWS`` rows and ``MAX_BAR_FRACTION`` of the height.
    Short text lines inside the bar are bridged: a bar may hold up to 3 consecutive rows in
    which text covers more than half of the width.
    """
    if image.ndim != 2:
        raise ValueError(f"find_data_bar needs a 2D image, got shape {image.shape}")
    height = image.shape[0]
    extremes = (float(image.min()), float(image.max()))
    limit = int(height * MAX_BAR_FRACTION)
    first_bar_row = height
    gap = 0
    for row_index in range(height - 1, height - 1 - limit, -1):
        fraction, value = _flat_fraction(image[row_index])
        if fraction >= FLAT_ROW_FRACTION and value in extremes:
            first_bar_row = row_index
            gap = 0
        else:
            gap += 1
            if gap > 3:
                break
    bar_rows = height - first_bar_row
    return first_bar_row if bar_rows >= MIN_BAR_ROWS and first_bar_row < height else None


#: a burned-in mark (scale bar, line, label box) is a region of one exactly flat extreme value that
#: fills at least this fraction of its bounding box (holes such as its text filled)...
MARK_BOX_FILL = 0.9
#: ...is at least this long, px (a crystal that happens to be flat, saturated and square is smaller
#: than a scale bar)...
MIN_MARK_LENGTH_PX = 20
#: ...and covers at least this many pixels
MIN_MARK_AREA_PX = 60


def burned_in_marks(image: Array) -> Array:
    """Where an instrument or program burned marks into the sample area: bool (Y, X), True on
    scale bars, lines and filled label boxes (with the text in them).

    ``image``: (Y, X) gray, any dtype (the analysed part, above a data bar). A mark is a connected
    region of pixels exactly at the image's darkest or brightest value (sample pixels carry noise;
    marks are drawn flat, black or white) that, with its holes filled, fills at least
    ``MARK_BOX_FILL`` of its bounding box, at least ``MIN_MARK_LENGTH_PX`` long and
    ``MIN_MARK_AREA_PX`` in area. Text without a box is thin strokes and is left alone (no
    segmenter takes it for crystals); marks in a lossy-compressed (JPEG) image are no longer flat
    and are not found.
    """
    if image.ndim != 2:
        raise ValueError(f"burned_in_marks needs a 2D image, got shape {image.shape}")
    from scipy import ndimage as ndi

    marks = np.zeros(image.shape, bool)
    for value in {image.min(), image.max()}:
        components, _ = ndi.label(image == value)
        for index, box in enumerate(ndi.find_objects(components), start=1):
            if box is None:
                continue
            height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
            if max(height, width) < MIN_MARK_LENGTH_PX:
                continue
            region = ndi.binary_fill_holes(components[box] == index)
            area = int(region.sum())
            if area >= MIN_MARK_AREA_PX and area >= MARK_BOX_FILL * height * width:
                marks[box] = True
    return marks
