"""The pixels of a polygon: :func:`skimage.draw.polygon`'s answer, pixel for pixel, sooner.

scikit-image tests every pixel of the polygon's bounding box against every edge in a loop
(O'Rourke's crossing test: a pixel is in the polygon when it is a vertex, on an edge or inside).
Here the same test runs with numpy on only the edges that straddle each pixel row, with the same
floating-point expressions, so the decisions (pixels on edges and vertices included) are
scikit-image's; ``tests/test_polygon_fill.py`` compares the two on thousands of polygons. Polygons
40-160 px across fill 1.4-4 times sooner (tiny ones 3-4 times slower: numpy's fixed cost of about
0.2 ms), synthetic scenes render 1.4-2.8 times sooner with the same pixels, and with them the
training data of the shipped segmenter (BENCHMARKS.md, "Test suite", fourteenth session).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

#: a pixel within this distance of a vertex (in both coordinates) is that vertex (scikit-image's)
VERTEX_TOLERANCE = 1e-12


def filled_polygon(rows: Array, cols: Array, shape: tuple[int, int] | None = None) -> tuple[Array, Array]:
    """Row and column indices (int, in row-major order) of the pixels of the polygon with vertices
    (``rows``, ``cols``), as :func:`skimage.draw.polygon` gives them: pixel centres at integer
    coordinates, those on an edge or a vertex included; limited to ``shape`` when given."""
    r = np.ascontiguousarray(rows, np.float64).ravel()
    c = np.ascontiguousarray(cols, np.float64).ravel()
    empty = np.zeros(0, np.intp)
    if r.size == 0:
        return empty, empty
    min_r, max_r = int(max(0.0, r.min())), int(np.ceil(r.max()))
    min_c, max_c = int(max(0.0, c.min())), int(np.ceil(c.max()))
    if shape is not None:
        max_r, max_c = min(shape[0] - 1, max_r), min(shape[1] - 1, max_c)
    if max_r < min_r or max_c < min_c:
        return empty, empty
    y = np.arange(min_r, max_r + 1, dtype=np.float64)[:, None]
    x = np.arange(min_c, max_c + 1, dtype=np.float64)
    # edge i runs from vertex i - 1 to vertex i; both ends as seen from each pixel row
    r_before, c_before = np.concatenate((r[-1:], r[:-1])), np.concatenate((c[-1:], c[:-1]))
    y0, y1 = r - y, r_before - y
    straddles_right, straddles_left = (y0 > 0) != (y1 > 0), (y0 < 0) != (y1 < 0)
    row, edge = np.nonzero(straddles_right | straddles_left)  # row-major: rows ascending
    inside = np.zeros((len(y), len(x)), bool)
    if row.size:
        y0, y1 = y0[row, edge][:, None], y1[row, edge][:, None]
        x0, x1 = c[edge][:, None] - x, c_before[edge][:, None] - x
        crossing = (x0 * y1 - x1 * y0) / (y1 - y0)  # where the edge meets the row, seen from each pixel
        crossed = np.concatenate((straddles_right[row, edge][:, None] & (crossing > 0),
                                  straddles_left[row, edge][:, None] & (crossing < 0)), axis=1)
        # crossings per row (right, then left), counted modulo 256 (enough for their parity)
        counted = np.cumsum(crossed, axis=0, dtype=np.uint8)
        ends = np.flatnonzero(np.diff(row, append=row[-1] + 1))
        per_row = counted[ends]
        per_row[1:] -= counted[ends[:-1]]
        odd = (per_row & 1).astype(bool)
        inside[row[ends]] = odd[:, :len(x)] | odd[:, len(x):]  # inside, or on an edge (parities differ)
    vertex_rows, vertex_cols = np.rint(r).astype(np.intp), np.rint(c).astype(np.intp)
    is_vertex = ((np.abs(r - vertex_rows) < VERTEX_TOLERANCE) & (np.abs(c - vertex_cols) < VERTEX_TOLERANCE)
                 & (vertex_rows >= min_r) & (vertex_rows <= max_r) & (vertex_cols >= min_c) & (vertex_cols <= max_c))
    inside[vertex_rows[is_vertex] - min_r, vertex_cols[is_vertex] - min_c] = True
    rr, cc = np.nonzero(inside)
    return rr + min_r, cc + min_c

