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


#: a burned-in mark is drawn with one exactly flat extreme value (sample pixels carry noise): a
#: scale bar, line or label box fills at least this fraction of its bounding box (its text's holes
#: filled; antialiased edges are not at the extreme value, so the flat core is a clean rectangle)...
MARK_BOX_FILL = 0.97
#: ...of which the flat pixels themselves (without its text) are at least this fraction...
MARK_FLAT_FILL = 0.6
#: ...is at least this long, px (a crystal that happens to be flat, saturated and square is smaller
#: than a scale bar)...
MIN_MARK_LENGTH_PX = 20
#: ...covers at least this many pixels...
MIN_MARK_AREA_PX = 60
#: ...and at most this fraction of the image, touching at most two of its edges (a label box may
#: sit in a corner; a frame, or a background clipped to black around the crystals, is no mark)
MAX_MARK_FRACTION = 0.1
#: boxes are also looked for in the flat pixels opened by a square of this side, px
BOX_OPENING_PX = 5
#: text: strokes of the flat value at most this many px from their own edge, and at most this
#: fraction of the letter's height (letters, not crystals or pores), 6-80 px high, at least this many side by side in a line, of heights within this
#: ratio of each other (:func:`_text_lines`)
MAX_STROKE_HALF_WIDTH_PX = 2.5
STROKE_HALF_WIDTH_PER_HEIGHT = 0.15
TEXT_HEIGHT_PX = (6, 80)
#: ...and at least this many px (smaller flat regions are neither letters nor boxes)
MIN_LETTER_AREA_PX = 8
MIN_LETTERS_IN_A_LINE = 3
LETTER_HEIGHT_RATIO = 1.5


def burned_in_marks(image: Array) -> Array:
    """Where an instrument or program burned marks into the sample area: bool (Y, X), True on
    scale bars, lines, filled label boxes (with the text in them) and lines of text.

    ``image``: (Y, X) gray, any dtype (the analysed part, above a data bar). Marks are drawn with
    the image's darkest or brightest value, exactly (sample pixels carry noise). A mark is a
    connected region of that value that, with its holes (its text) filled, fills at least
    ``MARK_BOX_FILL`` of its bounding box, at least ``MIN_MARK_LENGTH_PX`` long and
    ``MIN_MARK_AREA_PX`` in area, at most ``MAX_MARK_FRACTION`` of the image and touching at most
    two image edges; or a line of at least ``MIN_LETTERS_IN_A_LINE`` thin-stroked letters of that
    value side by side (their bounding box, 2 px wider for the antialiased edges). Marks in a
    lossy-compressed (JPEG) image are no longer flat and are not found.
    """
    if image.ndim != 2:
        raise ValueError(f"burned_in_marks needs a 2D image, got shape {image.shape}")
    from scipy import ndimage as ndi

    marks = np.zeros(image.shape, bool)
    for value in {image.min(), image.max()}:
        flat = image == value
        components, _ = ndi.label(flat, structure=np.ones((3, 3)))
        areas = np.bincount(components.ravel())
        letters = []
        for index, box in enumerate(ndi.find_objects(components), start=1):
            if box is None or areas[index] < MIN_LETTER_AREA_PX:  # noise at the extremes: many single pixels
                continue
            region = components[box] == index
            if _is_drawn_box(region, box, image.shape):
                marks[box] = True
            elif _is_letter(region):
                letters.append(box)
        # a box the sample's own darkest (brightest) pixels touch: thin pores or edges of that value
        # join it; opened, it stands alone
        opened, _ = ndi.label(ndi.binary_opening(flat, structure=np.ones((BOX_OPENING_PX,) * 2)))
        for index, box in enumerate(ndi.find_objects(opened), start=1):
            if box is not None and _is_drawn_box(opened[box] == index, box, image.shape):
                marks[box] = True
        for line in _text_lines(letters):
            top, bottom = min(b[0].start for b in line) - 2, max(b[0].stop for b in line) + 2
            left, right = min(b[1].start for b in line) - 2, max(b[1].stop for b in line) + 2
            marks[max(top, 0):bottom, max(left, 0):right] = True
    return marks


def _is_drawn_box(region: Array, box: tuple[slice, slice], shape: tuple[int, ...]) -> bool:
    """Whether a flat region (bool, its bounding box ``box`` in an image of ``shape``) is a drawn
    bar, line or box: see :func:`burned_in_marks`."""
    from scipy import ndimage as ndi

    height, width = region.shape
    edges_touched = (box[0].start == 0) + (box[0].stop == shape[0]) + (box[1].start == 0) + (box[1].stop == shape[1])
    if max(height, width) < MIN_MARK_LENGTH_PX or edges_touched > 2 \
            or height * width > MAX_MARK_FRACTION * shape[0] * shape[1]:
        return False
    flat = int(region.sum())
    filled = int(ndi.binary_fill_holes(region).sum())
    return filled >= MIN_MARK_AREA_PX and filled >= MARK_BOX_FILL * height * width and flat >= MARK_FLAT_FILL * filled


def _is_letter(region: Array) -> bool:
    """Whether a flat region (bool, its bounding box) is a letter: thin strokes, text height."""
    from scipy import ndimage as ndi

    height = region.shape[0]
    if not TEXT_HEIGHT_PX[0] <= height <= TEXT_HEIGHT_PX[1] or region.sum() < MIN_LETTER_AREA_PX:
        return False
    half_width = float(ndi.distance_transform_edt(np.pad(region, 1)).max())
    return half_width <= min(MAX_STROKE_HALF_WIDTH_PX, STROKE_HALF_WIDTH_PER_HEIGHT * height)


def _text_lines(letters: list[tuple[slice, slice]]) -> list[list[tuple[slice, slice]]]:
    """Letters (bounding boxes) grouped into lines of ``MIN_LETTERS_IN_A_LINE`` or more: each next
    to the last (at most a letter height apart), as high as the line's first within
    ``LETTER_HEIGHT_RATIO``, standing on its base line (bottoms within an eighth of its height, or
    1 px). Bright specks of a sample side by side differ in size and do not line up so."""
    lines: list[list[tuple[slice, slice]]] = []
    for letter in sorted(letters, key=lambda b: b[1].start):
        height = letter[0].stop - letter[0].start
        for line in lines:
            first, last = line[0], line[-1]
            first_height = first[0].stop - first[0].start
            if (1 / LETTER_HEIGHT_RATIO <= height / first_height <= LETTER_HEIGHT_RATIO
                    and abs(letter[0].stop - first[0].stop) <= max(1.0, first_height / 8)
                    and 0 <= letter[1].start - last[1].stop <= max(height, first_height)):
                line.append(letter)
                break
        else:
            lines.append([letter])
    return [line for line in lines if len(line) >= MIN_LETTERS_IN_A_LINE]
