"""Per-crystal measurements with ImageJ's names and definitions.

Each crystal is measured on its traced outline (:mod:`microcrystalnet.outline`), so the numbers
are those ImageJ's Measure command gives for the crystal's ROI in the RoiSet (checked against a
real ImageJ in the test suite):

========== ==========================================================================
Area       pixel count x pixel area
Mean       mean gray value of the crystal's pixels in the image as given (never inverted)
X, Y       centroid (mean of pixel centres), calibrated
Perim.     ImageJ's traced perimeter (edges, corners shortened by 2 - sqrt 2)
Major,     axes of the ellipse with the same second moments and the same area
Minor,     (ImageJ's EllipseFitter, including its 1/12 pixel-size correction);
Angle      Angle in degrees, 0-180, counter-clockwise from the x axis
Feret      largest distance between two outline vertices (maximum caliper)
FeretAngle angle of that diameter, degrees 0-180 (y axis pointing up)
MinFeret   smallest caliper width (rotating calipers on the convex hull)
AR         Major / Minor
Round      4 Area / (pi Major^2)
Circ.      4 pi Area / Perim.^2, at most 1
Solidity   Area / area of the convex hull
========== ==========================================================================

Lengths are in the calibrated unit (micrometres) when a pixel size is given, else in pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull

from .outline import polygon_area, traced_perimeter

Array = np.ndarray

#: Measurement columns, in the order of ImageJ's Results table.
MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "Area", "Mean", "X", "Y", "Perim.", "Major", "Minor", "Angle",
    "Circ.", "Feret", "FeretAngle", "MinFeret", "AR", "Round", "Solidity",
)
#: The measurements that are lengths (in the calibrated unit) and areas (unit squared); the others have no unit.
LENGTH_COLUMNS: tuple[str, ...] = ("X", "Y", "Perim.", "Major", "Minor", "Feret", "MinFeret")
AREA_COLUMNS: tuple[str, ...] = ("Area",)


def _convex_hull(vertices: Array) -> Array:
    """Hull vertices (float (m, 2)) in the order of ImageJ's ``FloatPolygon.getConvexHull``.

    ImageJ starts at the top-most (then left-most) vertex and goes counter-clockwise on screen;
    the order decides which of two equally long diameters gives FeretAngle.
    """
    points = vertices.astype(float)
    hull = points[ConvexHull(points).vertices][::-1]  # scipy: counter-clockwise with y up
    start = np.lexsort((hull[:, 0], hull[:, 1]))[0]
    return np.roll(hull, -start, axis=0)


def feret_values(vertices: Array, pixel_size: float = 1.0) -> tuple[float, float, float]:
    """``(Feret, FeretAngle, MinFeret)`` of an outline, as ImageJ's ``Roi.getFeretValues``.

    ``vertices``: (n, 2) ``(x, y)`` in pixels. Lengths are returned times ``pixel_size``.
    """
    hull = _convex_hull(vertices)
    difference = hull[:, None, :] - hull[None, :, :]
    squared = np.einsum("ijk,ijk->ij", difference, difference)
    first, second = np.unravel_index(np.argmax(np.triu(squared, 1)), squared.shape)
    if hull[first, 0] > hull[second, 0]:
        first, second = second, first
    (x1, y1), (x2, y2) = hull[first], hull[second]
    angle = math.degrees(math.atan2(y1 - y2, x2 - x1))
    if angle < 0:
        angle += 180.0
    # minimum caliper: for each hull edge, the farthest hull vertex from its line
    edges = np.roll(hull, -1, axis=0) - hull
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = hull[None, :, :] - hull[:, None, :]  # [edge e, vertex j] = hull[j] - hull[e]
    distances = np.abs(np.einsum("ejk,ek->ej", offsets, normals))
    min_feret = float(distances.max(axis=1).min())
    return math.sqrt(float(squared[first, second])) * pixel_size, angle, min_feret * pixel_size


def fitted_ellipse(mask: Array) -> tuple[float, float, float]:
    """``(major, minor, angle_degrees)`` in pixels, as ImageJ's ``EllipseFitter``.

    The ellipse has the mask's second moments (each pixel counted as a unit square, hence
    the 1/12 added to the variances) and the mask's area.
    """
    rows, cols = np.nonzero(mask)
    n = rows.size
    x = cols.astype(float)
    y = rows.astype(float)
    var_x = x.var() + 1 / 12
    var_y = y.var() + 1 / 12
    cov_xy = float(np.mean(x * y) - x.mean() * y.mean())
    m4 = max(4.0 * abs(var_y * var_x - cov_xy * cov_xy), 1e-6)
    a11, a12, a22 = var_y / m4, cov_xy / m4, var_x / m4
    difference = a11 - a22 if a11 != a22 else 1e-6
    theta = 0.5 * math.atan(2.0 * a12 / difference)
    if theta < 0:
        theta += math.pi / 2
    if a12 > 0:
        theta += math.pi / 2
    elif a12 == 0:
        if a22 > a11:
            theta = 0.0
            a11, a22 = a22, a11
        elif a11 != a22:
            theta = math.pi / 2
    sin_theta = math.sin(theta) or 1e-6
    z = a12 * math.cos(theta) / sin_theta
    major = math.sqrt(1.0 / abs(a22 + z))
    minor = math.sqrt(1.0 / abs(a11 - z))
    scale = math.sqrt(n / (math.pi * major * minor))  # equal areas
    major, minor = 2 * major * scale, 2 * minor * scale
    angle = math.degrees(theta)
    if angle == 180.0:
        angle = 0.0
    if major < minor:
        major, minor = minor, major
    return major, minor, angle


def measure_crystal(mask: Array, vertices: Array, intensity: Array, origin: tuple[int, int] = (0, 0),
                    pixel_size: float = 1.0) -> dict[str, float]:
    """Measure one crystal.

    ``mask``: bool (Y, X) of the crystal inside a box; ``vertices``: its traced outline in image
    pixel coordinates ``(x, y)``; ``intensity``: the image inside the same box; ``origin``:
    ``(row, col)`` of the box in the image; ``pixel_size``: calibrated length of one pixel.
    """
    area_px = float(mask.sum())
    perimeter = traced_perimeter(vertices, pixel_size, pixel_size)
    rows, cols = np.nonzero(mask)
    major, minor, ellipse_angle = fitted_ellipse(mask)
    feret, feret_angle, min_feret = feret_values(vertices, pixel_size)
    hull_area = polygon_area(_convex_hull(vertices))
    area = area_px * pixel_size ** 2
    major_cal = major * pixel_size
    return {
        "Area": area,
        "Mean": float(intensity[mask].mean()),
        "X": float(cols.mean() + origin[1] + 0.5) * pixel_size,
        "Y": float(rows.mean() + origin[0] + 0.5) * pixel_size,
        "Perim.": perimeter,
        "Major": major_cal,
        "Minor": minor * pixel_size,
        "Angle": ellipse_angle,
        "Circ.": min(1.0, 4 * math.pi * area / perimeter ** 2) if perimeter > 0 else 0.0,
        "Feret": feret,
        "FeretAngle": feret_angle,
        "MinFeret": min_feret,
        "AR": major / minor if minor > 0 else 0.0,
        "Round": 4 * area / (math.pi * major_cal ** 2) if major_cal > 0 else 0.0,
        "Solidity": area_px / hull_area if hull_area > 0 else float("nan"),
    }


def measure_crystals(labels: Array, outlines: dict[int, Array], intensity: Array,
                     pixel_size: float | None = None) -> list[dict[str, float]]:
    """Measure every crystal of a label image, in label order.

    ``labels``: int (Y, X), 0 background; ``outlines``: traced outlines by label (see
    :func:`microcrystalnet.outline.outlines_from_labels`); ``intensity``: (Y, X) image the
    Mean is taken from; ``pixel_size``: micrometres per pixel, or None for pixel units.
    Each crystal is measured inside its outline (holes, if any, are filled, as ImageJ does).
    """
    if labels.shape != intensity.shape:
        raise ValueError(f"labels {labels.shape} and intensity {intensity.shape} differ in shape")
    scale = 1.0 if pixel_size is None else float(pixel_size)
    rows = []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        mask = ndi.binary_fill_holes(labels[box] == index)
        rows.append(measure_crystal(mask, outlines[index], intensity[box], (box[0].start, box[1].start), scale))
    return rows
