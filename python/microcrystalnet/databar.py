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
