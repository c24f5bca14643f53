"""What SEM instruments and image programs burn into images that is not sample.

FEI/Thermo Fisher, Zeiss, JEOL and Tescan images often end in a band of rows holding the
magnification, voltage and scale bar: a flat background (black or white) with text and lines.
It is not sample and must not be segmented. :func:`find_data_bar` finds its first row from
the pixels alone; the reader prefers what the file's metadata says where it says it. Other images
carry a scale bar, its text or a label box in the sample area itself: :func:`burned_in_marks`
finds them, so that what segmentation finds on them is left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Array = np.ndarray

#: a row belongs to the bar when at least this fraction of it has one exactly flat value
FLAT_ROW_FRACTION = 0.5
#: bars are at least this many rows high and at most this fraction of the image height
MIN_BAR_ROWS = 8
MAX_BAR_FRACTION = 0.3
#: rows of text or lines a bar may hold in a row (:func:`bridged_rows`): at least this many, and
#: this many per image row. JPEG and resampling leave a bar's text rows under half flat: bridging 3
#: rows (0.004 per row) cut 393 of 2,880 drawn bars short, leaving their top as sample; 10 (0.013)
#: found 282 bars more and no false one (the checks below keep a sample from passing as a bar)
MIN_BRIDGED_ROWS = 10
BRIDGED_ROWS_PER_HEIGHT = 0.013
#: a bar's top edge is judged on this many rows (and per image row) on either side of it: about a
#: line's thickness, so a line at the bar's top is not taken for its edge
MIN_EDGE_ROWS = 4
EDGE_ROWS_PER_HEIGHT = 0.0045
#: ... and has at least this much more of its pixels at the extremes below it than above it
MIN_BAR_EDGE = 0.1
#: A sample whose background is clipped to black (or white) has flat rows too, between others. In a
#: bar, text and lines are sparse: at least this share of its rows are flat, at least this fraction
#: of its pixels are at the image's darkest or brightest value (its background and its text), and
#: this fraction more than in as many rows above it (a clipped background is about as flat above
#: as below); and a bar spans the image: in at least this fraction of its columns, most of its
#: pixels are at an extreme (a clipped background has crystals standing in it), or in half of them
#: where its fill is this much above that of the rows above it (JPEG and resampling blur a bar's
#: text into columns of gray; a clipped background's fill steps by 0.39 at most, measured on 800
#: synthetic scenes clipped by 0-70 %, bars under samples 0.42 and more)
MIN_FLAT_ROW_SHARE = 0.75
MIN_BAR_FILL = 0.6
MIN_BAR_FILL_STEP = 0.2
MIN_BAR_COLUMNS = 0.8
MIN_BAR_COLUMNS_AT_CLEAR_STEP = 0.5
CLEAR_BAR_FILL_STEP = 0.4


def _flat_fraction(row: Array) -> tuple[float, float]:
    values, counts = np.unique(row, return_counts=True)
    top = int(np.argmax(counts))
    return counts[top] / row.size, float(values[top])


def bridged_rows(height: int) -> int:
    """How many consecutive rows that are not flat a data bar of an image ``height`` rows high may
    hold (text, a border line): 10, scaling with the height beyond about 800 rows (an image
    resampled to twice its size has text and lines twice as thick)."""
    return max(MIN_BRIDGED_ROWS, round(BRIDGED_ROWS_PER_HEIGHT * height))


def find_data_bar(image: Array) -> int | None:
    """First row of the bottom data bar, or None when the image has none.

    ``image``: (Y, X) gray, any dtype. Rows count as bar rows when half or more of their
    pixels share one value that is the image's darkest or brightest (bar backgrounds are
    pure black or white; sample rows carry noise). The bar is the run of such rows at the
    bottom, if it is between ``MIN_BAR_ROWS`` rows and ``MAX_BAR_FRACTION`` of the height.
    Short text lines inside the bar, and a border line under it, are bridged: a bar may hold up
    to :func:`bridged_rows` consecutive rows (10, more in a tall image) that are not
    flat. Most of its rows are flat, most of its pixels are at an extreme value, far more than in
    the rows above it, and it spans the image's width (``MIN_FLAT_ROW_SHARE``, ``MIN_BAR_FILL``,
    ``MIN_BAR_FILL_STEP``, ``MIN_BAR_COLUMNS``: a sample whose background is clipped to black is
    no bar). Of the first rows that would make a bar, the one with the sharpest edge above it.
    """
    if image.ndim != 2:
        raise ValueError(f"find_data_bar needs a 2D image, got shape {image.shape}")
    height = image.shape[0]
    extremes = (float(image.min()), float(image.max()))
    limit = int(height * MAX_BAR_FRACTION)
    flat_rows_from_bottom: list[int] = []  # candidate first rows, bottom up
    gap, most_gap = 0, bridged_rows(height)
    for row_index in range(height - 1, height - 1 - limit, -1):
        fraction, value = _flat_fraction(image[row_index])
        if fraction >= FLAT_ROW_FRACTION and value in extremes:
            flat_rows_from_bottom.append(row_index)
            gap = 0
        else:
            gap += 1
            if gap > most_gap:
                break
    if not flat_rows_from_bottom:
        return None
    # each row's fraction of pixels at either extreme, summed from the top
    is_extreme = np.isin(image, extremes)
    extreme_fill = np.concatenate([[0.0], np.cumsum(np.mean(is_extreme, axis=1))])

    def fill(first: int, stop: int) -> float:
        first, stop = max(0, first), min(height, stop)
        return float(extreme_fill[stop] - extreme_fill[first]) / (stop - first)

    # of the first rows that make a bar, the one with the sharpest edge above it: the bar's own top
    # edge, also where the sample above it is clipped or the bar starts with a line; none without
    # an edge (inside a bar taller than MAX_BAR_FRACTION every row looks like the one below it)
    edge_rows = max(MIN_EDGE_ROWS, round(EDGE_ROWS_PER_HEIGHT * height))
    extreme_in_column = np.zeros(image.shape[1], np.int64)  # of the rows from the candidate down
    counted_from = height
    edges: list[tuple[float, int]] = []  # (edge, first row) of each that makes a bar, bottom up
    for count, first_bar_row in enumerate(flat_rows_from_bottom, start=1):
        extreme_in_column += is_extreme[first_bar_row:counted_from].sum(axis=0)
        counted_from = first_bar_row
        bar_rows = height - first_bar_row
        if bar_rows < MIN_BAR_ROWS or count < MIN_FLAT_ROW_SHARE * bar_rows:
            continue
        bar_fill = fill(first_bar_row, height)
        step = bar_fill - fill(first_bar_row - bar_rows, first_bar_row)
        if bar_fill < MIN_BAR_FILL or step < MIN_BAR_FILL_STEP:
            continue
        columns = float(np.mean(extreme_in_column >= 0.5 * bar_rows))
        if columns < (MIN_BAR_COLUMNS_AT_CLEAR_STEP if step >= CLEAR_BAR_FILL_STEP else MIN_BAR_COLUMNS):
            continue
        edges.append((fill(first_bar_row, first_bar_row + edge_rows) - fill(first_bar_row - edge_rows, first_bar_row),
                      first_bar_row))
    sharpest = max(edges, key=lambda edge_and_row: edge_and_row[0], default=None)  # of equal edges, the lowest
    return sharpest[1] if sharpest is not None and sharpest[0] >= MIN_BAR_EDGE else None


#: Burned-in marks are drawn with one exactly flat extreme value (sample pixels carry noise, and
#: antialiased edges are not at the extreme value, so a mark's flat core is a clean rectangle). A
#: sample may hold flat extreme regions too (clipped particles, pores, bright rims), so each kind of
#: mark needs a cue a crystal does not give.
#:
#: A flat region is a clean rectangle when, its holes filled, it fills this fraction of its
#: bounding box:
MARK_BOX_FILL = 0.97
#: a scale bar: a clean rectangle at least this long, px, and this many times as long as high, at
#: most this high (fraction of the image height, or 3 px), at most half the image wide, touching
#: no image edge...
MIN_BAR_LENGTH_PX = 30
MIN_BAR_ASPECT = 5.0
MAX_BAR_HEIGHT_FRACTION = 0.03
#: ...outside the image's centre (bars sit near an edge: a rod crystal in the middle is no bar)
CENTRE_FRACTION = 0.4
#: a label box: a clean rectangle of at least this many px a side, touching one or two image edges
#: (a frame touches four), holding at least this many px of the opposite extreme value (its text;
#: the pinholes of a clipped crystal core are not at the opposite extreme)
MIN_BOX_SIDE_PX = 10
MIN_BOX_TEXT_PX = 20
#: neither covers more than this fraction of the image (a background clipped to black is no mark)
MAX_MARK_FRACTION = 0.1
#: bars touched by the sample's own flat pixels are also looked for after an opening by a horizontal
#: line this long, px (what it keeps of a particle is no long thin rectangle), boxes after one by a
#: square of this side
BAR_OPENING_PX = 30
BOX_OPENING_PX = 5
#: text: letters of strokes of the flat value at most this many px from their own edge, and at
#: most this fraction of the letter's height, 6-80 px high, at least this many side by side in a
#: line, of heights within this ratio of each other (:func:`_text_lines`), a line only where it
#: stands by a scale bar (within this many letter heights): bright rims of particles in a row
#: look like letters too
MAX_STROKE_HALF_WIDTH_PX = 2.5
STROKE_HALF_WIDTH_PER_HEIGHT = 0.15
TEXT_HEIGHT_PX = (6, 80)
#: ...and at least this many px (smaller flat regions are neither letters nor marks)
MIN_LETTER_AREA_PX = 8
MIN_LETTERS_IN_A_LINE = 3
LETTER_HEIGHT_RATIO = 1.5
TEXT_TO_BAR_LETTER_HEIGHTS = 3.0


def burned_in_marks(image: Array) -> Array:
    """Where an instrument or program burned marks into the sample area: bool (Y, X), True on
    scale bars, label boxes (with the text in them) and the text beside a scale bar.

    ``image``: (Y, X) gray, any dtype (the analysed part, above a data bar). Marks are drawn with
    the image's darkest or brightest value, exactly. Found are: scale bars (long thin clean
    rectangles of that value, away from the image's centre), label boxes (clean rectangles at an
    image edge holding text of the opposite extreme value) and lines of thin-stroked letters of
    like height on one base line beside a scale bar (their bounding box, 2 px wider for the
    antialiased edges); see the constants above and BENCHMARKS.md ("Burned-in scale bars").
    Conservative by design, since a false mark would hide crystals: a bar drawn in mid-gray, text
    without a bar or box, text under about 16 px (antialiasing leaves too few flat pixels), and
    marks in a lossy-compressed (JPEG) image are not found.
    """
    if image.ndim != 2:
        raise ValueError(f"burned_in_marks needs a 2D image, got shape {image.shape}")
    from scipy import ndimage as ndi

    marks = np.zeros(image.shape, bool)
    low, high = image.min(), image.max()
    for value, opposite in ((low, high), (high, low)) if low != high else ():
        flat = image == value
        letters, bars = [], []
        for box, region in _regions(flat):
            if _is_scale_bar(region, box, flat):
                bars.append(box)
            elif _is_label_box(region, box, image, opposite):
                marks[box] = True
            elif _is_letter(region):
                letters.append(box)
        # a mark the sample's own flat pixels touch (a particle, pores) stands alone once opened
        bars += [box for box, region in _regions(ndi.binary_opening(flat, structure=np.ones((1, BAR_OPENING_PX))))
                 if _is_scale_bar(region, box, flat)]
        for box, region in _regions(ndi.binary_opening(flat, structure=np.ones((BOX_OPENING_PX,) * 2))):
            if _is_label_box(region, box, image, opposite):
                marks[box] = True
        for bar in bars:
            marks[bar] = True
        for line in _text_lines(letters):
            if not any(_beside(line, bar) for bar in bars):
                continue
            top, bottom = min(b[0].start for b in line) - 2, max(b[0].stop for b in line) + 2
            left, right = min(b[1].start for b in line) - 2, max(b[1].stop for b in line) + 2
            marks[max(top, 0):bottom, max(left, 0):right] = True
    return marks


def _regions(mask: Array) -> Iterator[tuple[tuple[slice, slice], Array]]:
    """(bounding box, bool region within it) of each 8-connected region of ``mask`` of at least
    :data:`MIN_LETTER_AREA_PX` (noise at an extreme value makes many single pixels)."""
    from scipy import ndimage as ndi

    components, _ = ndi.label(mask, structure=np.ones((3, 3)))
    areas = np.bincount(components.ravel())
    for index, box in enumerate(ndi.find_objects(components), start=1):
        if box is not None and areas[index] >= MIN_LETTER_AREA_PX:
            yield box, components[box] == index


def _clean_rectangle(region: Array, shape: tuple[int, ...]) -> bool:
    """Whether a flat region (bool, its bounding box) with its holes filled fills its bounding box
    (:data:`MARK_BOX_FILL`), and covers at most :data:`MAX_MARK_FRACTION` of an image of ``shape``."""
    from scipy import ndimage as ndi

    height, width = region.shape
    return (height * width <= MAX_MARK_FRACTION * shape[0] * shape[1]
            and int(ndi.binary_fill_holes(region).sum()) >= MARK_BOX_FILL * height * width)


def _is_scale_bar(region: Array, box: tuple[slice, slice], flat: Array) -> bool:
    """A long, thin, clean horizontal rectangle of the ``flat`` pixels (bool (Y, X), the image at
    the bar's value) away from the image's centre and edges, with no flat pixels along most of its
    length above and below it: the whole of a bar, not a slice of a larger flat region."""
    height, width = region.shape
    shape = flat.shape
    if (height < 2 or width < MIN_BAR_LENGTH_PX or width < MIN_BAR_ASPECT * height or width > shape[1] / 2
            or height > max(3, MAX_BAR_HEIGHT_FRACTION * shape[0])):
        return False
    if box[0].start == 0 or box[1].start == 0 or box[0].stop == shape[0] or box[1].stop == shape[1]:
        return False
    centre_y, centre_x = (box[0].start + box[0].stop) / 2 / shape[0], (box[1].start + box[1].stop) / 2 / shape[1]
    if abs(centre_y - 0.5) < CENTRE_FRACTION / 2 and abs(centre_x - 0.5) < CENTRE_FRACTION / 2:
        return False
    above, below = flat[box[0].start - 1, box[1]], flat[box[0].stop, box[1]]
    return max(above.mean(), below.mean()) < 0.5 and _clean_rectangle(region, shape)


def _is_label_box(region: Array, box: tuple[slice, slice], image: Array, opposite: Any) -> bool:
    """A clean rectangle at one or two image edges holding text of the ``opposite`` extreme value."""
    height, width = region.shape
    shape = image.shape
    edges_touched = (box[0].start == 0) + (box[0].stop == shape[0]) + (box[1].start == 0) + (box[1].stop == shape[1])
    if min(height, width) < MIN_BOX_SIDE_PX or not 1 <= edges_touched <= 2 or not _clean_rectangle(region, shape):
        return False
    return int(np.count_nonzero(image[box] == opposite)) >= MIN_BOX_TEXT_PX


def _beside(line: list[tuple[slice, slice]], bar: tuple[slice, slice]) -> bool:
    """Whether a line of letters stands above or below a scale bar, overlapping it sideways."""
    height = max(b[0].stop - b[0].start for b in line)
    top, bottom = min(b[0].start for b in line), max(b[0].stop for b in line)
    left, right = min(b[1].start for b in line), max(b[1].stop for b in line)
    gap = max(bar[0].start - bottom, top - bar[0].stop)
    return gap <= TEXT_TO_BAR_LETTER_HEIGHTS * height and left < bar[1].stop + height and right > bar[1].start - height


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
