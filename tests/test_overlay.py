import numpy as np
from PIL import Image

from microcrystalnet.classes import RESULT_CLASSES, class_by_code
from microcrystalnet.io.outputs import write_overlay_png


def two_crystals(dtype=np.uint8):
    labels = np.zeros((300, 400), np.int32)
    labels[40:120, 50:150] = 1
    labels[130:210, 200:330] = 2
    pixels = np.full(labels.shape, 40, dtype)
    pixels[labels > 0] = 160
    rows = [{"Crystal": 1, "Class": "RES"}, {"Crystal": 2, "Class": "AA"}]
    return pixels, labels, rows


def test_overlay_outlines_crystals_in_their_class_colour_with_numbers_and_legend(tmp_path):
    pixels, labels, rows = two_crystals()
    path = tmp_path / "overlay.png"
    write_overlay_png(path, pixels, labels, rows)
    overlay = np.asarray(Image.open(path))
    assert overlay.shape == (300, 400, 3) and overlay.dtype == np.uint8
    res, aa = class_by_code("RES").colour_rgb, class_by_code("AA").colour_rgb
    assert tuple(overlay[40, 100]) == res and tuple(overlay[80, 50]) == res  # inner edge of crystal 1
    assert tuple(overlay[130, 250]) == aa and tuple(overlay[209, 250]) == aa
    assert tuple(overlay[39, 100]) == (40, 40, 40) and tuple(overlay[60, 70]) == (160, 160, 160)
    number = overlay[70:90, 90:110]
    assert (number.min(axis=2) > 200).any()  # the white crystal number at its centre (anti-aliased)
    legend = overlay[220:, 150:].reshape(-1, 3)
    for crystal_class in RESULT_CLASSES:  # a colour square per class in the legend (lower right)
        assert (legend == crystal_class.colour_rgb).all(axis=1).sum() > 20, crystal_class.code


def test_overlay_of_a_16_bit_image_is_stretched_to_8_bit_as_imagej_shows_it(tmp_path):
    pixels, labels, rows = two_crystals(np.uint16)
    pixels[:] = 1600
    pixels[labels > 0] = 4000
    pixels[0, 0] = 1000
    path = tmp_path / "overlay.png"
    write_overlay_png(path, pixels, labels, rows)
    overlay = np.asarray(Image.open(path))
    assert tuple(overlay[0, 0]) == (0, 0, 0) and tuple(overlay[60, 70]) == (255, 255, 255)
    assert tuple(overlay[5, 5]) == (51, 51, 51)  # (1600 - 1000) / (4000 - 1000) x 255
