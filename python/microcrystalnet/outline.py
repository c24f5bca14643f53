"""Crystal outlines as pixel-edge polygons, the shape of ImageJ's traced ROIs.

An outline runs along the edges between pixels, as ImageJ's Wand tool and Analyze Particles
trace them, so a polygon ROI made from it covers exactly the crystal's pixels: its area is the
pixel count, and ImageJ measures on it what :mod:`microcrystalnet.measure` computes here.

Coordinates are ImageJ's: ``x`` is the column, ``y`` the row, and pixel ``(row, col)`` covers
the square ``[col, col + 1] x [row, row + 1]``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

Array = np.ndarray


def trace_outline(mask: Array) -> Array:
    """Trace the outer boundary of one 8-connected region along pixel edges.

    ``mask``: bool (Y, X) holding one 8-connected region (holes are ignored: the outline is
    the outer boundary). Returns int (n, 2) vertices ``(x, y)`` at the corners of the boundary
    only (no collinear points), clockwise on screen, starting at the upper-left corner of the
    top row's leftmost pixel, as ImageJ's Wand starts.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError("trace_outline needs a 2D mask with at least one pixel")
    padded = np.pad(mask, 1)
    rows, cols = np.nonzero(padded)
    y0, x0 = int(rows[0]), int(cols[0])  # nonzero() is row-major: top row, leftmost pixel

    def inside(x2: int, y2: int) -> bool:
        # pixel whose centre is (x2 / 2, y2 / 2) in doubled coordinates
        return bool(padded[(y2 - 1) // 2, (x2 - 1) // 2])

    x, y, dx, dy = x0, y0, 1, 0  # walk east along the top edge, region on the right
    vertices = [(x0, y0)]
    while True:
        x, y = x + dx, y + dy
        rx, ry = -dy, dx  # right-hand side on screen (y points down)
        ahead_left = inside(2 * x + dx - rx, 2 * y + dy - ry)
        ahead_right = inside(2 * x + dx + rx, 2 * y + dy + ry)
        if ahead_left:  # the region goes on to the left (8-connected, as Analyze Particles)
            ndx, ndy = dy, -dx
        elif ahead_right:
            ndx, ndy = dx, dy
        else:
            ndx, ndy = rx, ry
        if (x, y) == (x0, y0) and (ndx, ndy) == (1, 0):
            break
        if (ndx, ndy) != (dx, dy):
            vertices.append((x, y))
        dx, dy = ndx, ndy
    return np.asarray(vertices, dtype=np.int64) - 1  # undo the padding


def polygon_area(vertices: Array) -> float:
    """Area enclosed by a simple polygon (shoelace formula), in squared vertex units."""
    x = vertices[:, 0].astype(float)
    y = vertices[:, 1].astype(float)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def traced_perimeter(vertices: Array, pixel_width: float = 1.0, pixel_height: float = 1.0) -> float:
    """Perimeter of a traced outline as ImageJ reports it ("Perim." of a traced ROI).

    ImageJ counts the boundary's pixel edges and shortens each corner by ``2 - sqrt(2)``
    (``PolygonRoi.getTracedPerimeter``), which estimates the length of the smooth outline
    better than the staircase length. Same vertex order, same result; with calibration each
    corner saves ``w + h - hypot(w, h)``.
    """
    x = vertices[:, 0]
    y = vertices[:, 1]
    n = len(x)
    sum_dx = sum_dy = n_corners = 0
    dx1, dy1 = x[0] - x[n - 1], y[0] - y[n - 1]
    side1 = abs(dx1) + abs(dy1)
    corner = False
    for i in range(n):
        j = (i + 1) % n
        dx2, dy2 = x[j] - x[i], y[j] - y[i]
        sum_dx += abs(dx1)
        sum_dy += abs(dy1)
        side2 = abs(dx2) + abs(dy2)
        if side1 > 1 or not corner:
            corner = True
            n_corners += 1
        else:
            corner = False
        dx1, dy1, side1 = dx2, dy2, side2
    corner_saving = pixel_width + pixel_height - math.hypot(pixel_width, pixel_height)
    return float(sum_dx * pixel_width + sum_dy * pixel_height - n_corners * corner_saving)


def outlines_from_labels(labels: Array) -> dict[int, Array]:
    """Trace every crystal of a label image: ``{label: (n, 2) int vertices (x, y)}``.

    ``labels``: integer (Y, X), 0 for background. Each label must be one 8-connected region
    (see :func:`microcrystalnet.segment.postprocess.tidy_labels`).
    """
    outlines: dict[int, Array] = {}
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        local = trace_outline(labels[box] == index)
        outlines[index] = local + np.array([box[1].start, box[0].start])
    return outlines
