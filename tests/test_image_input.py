import json
from pathlib import Path

import numpy as np
import imageio.v3 as iio
import pytest
import tifffile
from scipy import ndimage as ndi

from microcrystalnet.databar import burned_in_marks, find_data_bar
from microcrystalnet.io import ImageInputError, read_sem_image, to_unit_range


def sem_like(shape=(256, 320), seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    image = rng.normal(120, 25, shape).clip(1, 254)
    return image.astype(dtype)


def add_data_bar(image, rows, value=0, text=255):
    bar = np.full((rows, image.shape[1]), value, image.dtype)
    bar[2, :] = text                      # a full-width line, as FEI bars have
    bar[6:12, 10:80] = text               # "text"
    bar[6:12, 120:130] = text
    return np.vstack([image, bar])


def test_8bit_tiff_with_imagej_calibration(tmp_path):
    path = tmp_path / "calibrated.tif"
    tifffile.imwrite(path, sem_like(), imagej=True, resolution=(1 / 0.01, 1 / 0.01), metadata={"unit": "um"})
    image = read_sem_image(path)
    assert image.pixels.dtype == np.uint8 and image.pixels.shape == (256, 320)
    assert image.pixel_size_um == pytest.approx(0.01) and image.pixel_size_source == "ImageJ calibration"
    assert image.data_bar_row is None


def test_imagej_calibration_in_nanometres(tmp_path):
    path = tmp_path / "nm.tif"
    tifffile.imwrite(path, sem_like(), imagej=True, resolution=(1 / 12.5, 1 / 12.5), metadata={"unit": "nm"})
    assert read_sem_image(path).pixel_size_um == pytest.approx(0.0125)


@pytest.mark.parametrize("unit", ["\\u00B5m", "micron", "nm"])
def test_imagej_units_as_imagej_writes_them(tmp_path, unit):
    # ImageJ's FileSaver writes "µm" escaped, as the six characters \u00B5m (TIFF text is ASCII)
    path = tmp_path / "escaped.tif"
    tifffile.imwrite(path, sem_like(), imagej=True, resolution=(25.0, 25.0), metadata={"unit": unit})
    expected = 0.04 if unit != "nm" else 0.00004
    assert read_sem_image(path).pixel_size_um == pytest.approx(expected)


def test_calibration_units_in_every_spelling():
    from microcrystalnet.io import pixel_size_from_unit

    for unit in ("um", "\u00b5m", "\u03bcm", "\\u00B5m", "micron", "Microns", " µm "):
        assert pixel_size_from_unit(0.5, unit) == pytest.approx(0.5), unit
    assert pixel_size_from_unit(5, "nm") == pytest.approx(0.005)
    assert pixel_size_from_unit(1, "pixel") is None and pixel_size_from_unit(0, "um") is None


def test_fei_metadata_gives_pixel_size_and_data_bar(tmp_path):
    body = sem_like((200, 256))
    pixels = add_data_bar(body, 30)
    fei = "[User]\nDate=01/01/2026\n[Scan]\nPixelWidth=1.25e-08\nPixelHeight=1.25e-08\n[Image]\nResolutionX=256\nResolutionY=200\n"
    path = tmp_path / "fei.tif"
    tifffile.imwrite(path, pixels, extratags=[(34682, "s", 0, fei, True)])
    image = read_sem_image(path)
    assert image.pixel_size_um == pytest.approx(0.0125) and image.pixel_size_source == "FEI metadata"
    assert image.data_bar_row == 200 and image.analysed_pixels.shape == (200, 256)
    assert any("from the file's metadata" in notice for notice in image.notices)


def test_zeiss_metadata_gives_pixel_size(tmp_path):
    path = tmp_path / "zeiss.tif"
    zeiss = "\r\n".join(["0", "AP_IMAGE_PIXEL_SIZE", "Image Pixel Size = 2.5 nm", "AP_MAG", "Mag = 50.00 K X", ""])
    tifffile.imwrite(path, sem_like(), extratags=[(34118, "s", 0, zeiss, True)])
    image = read_sem_image(path)
    assert image.pixel_size_um == pytest.approx(0.0025) and image.pixel_size_source == "Zeiss SEM metadata"


def test_tescan_metadata_gives_pixel_size(tmp_path):
    path = tmp_path / "tescan.tif"
    tescan = "[MAIN]\r\nDevice=MIRA3 LMH\r\nMagnification=50000\r\nPixelSizeX=4.6875e-009\r\nPixelSizeY=4.6875e-009\r\n"
    tifffile.imwrite(path, sem_like(), extratags=[(50431, "s", 0, tescan, True)])
    image = read_sem_image(path)
    assert image.pixel_size_um == pytest.approx(0.0046875) and image.pixel_size_source == "Tescan metadata"


JEOL_TEXT = "$CM_FORMAT JEOL/SEM\n$CM_MAG 20000\n$CM_FULL_SIZE 1280 960\n$$SM_MICRON_BAR 160\n$$SM_MICRON_MARKER 1um\n"


def test_jeol_metadata_beside_the_image_or_in_its_header_gives_pixel_size(tmp_path):
    beside = tmp_path / "jeol.tif"
    tifffile.imwrite(beside, sem_like())
    beside.with_suffix(".txt").write_text(JEOL_TEXT)
    image = read_sem_image(beside)
    assert image.pixel_size_um == pytest.approx(1 / 160) and image.pixel_size_source == "JEOL metadata"
    inside = tmp_path / "jeol_header.tif"
    tifffile.imwrite(inside, sem_like(), extratags=[(65027, "s", 0, JEOL_TEXT.replace("1um", "500nm"), True)])
    assert read_sem_image(inside).pixel_size_um == pytest.approx(0.5 / 160)


def test_imagej_calibration_wins_over_instrument_metadata(tmp_path):
    path = tmp_path / "both.tif"
    tescan = "[MAIN]\nPixelSizeX=4.6875e-009\n"
    tifffile.imwrite(path, sem_like(), imagej=True, resolution=(50, 50), metadata={"unit": "um"},
                     extratags=[(50431, "s", 0, tescan, True)])
    image = read_sem_image(path)
    assert image.pixel_size_um == pytest.approx(0.02) and image.pixel_size_source == "ImageJ calibration"


def test_option_overrides_file_calibration_and_unknown_size_is_said(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, sem_like())
    unknown = read_sem_image(path)
    assert unknown.pixel_size_um is None and any("pixel size unknown" in n for n in unknown.notices)
    given = read_sem_image(path, pixel_size_um=0.02)
    assert given.pixel_size_um == 0.02 and given.pixel_size_source == "given by the user"


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_16bit_and_float_tiffs_are_scaled_like_imagej(tmp_path, dtype):
    pixels = (sem_like().astype(np.float64) * 100).astype(dtype)
    path = tmp_path / f"deep-{np.dtype(dtype).name}.tif"
    tifffile.imwrite(path, pixels)
    image = read_sem_image(path)
    assert image.pixels.dtype == dtype
    unit = to_unit_range(image.pixels)
    assert unit.min() == 0.0 and unit.max() == pytest.approx(1.0)


def test_png_jpeg_and_rgb_with_notice(tmp_path):
    gray = sem_like()
    iio.imwrite(tmp_path / "gray.png", gray)
    assert np.array_equal(read_sem_image(tmp_path / "gray.png").pixels, gray)
    iio.imwrite(tmp_path / "gray.jpg", gray, quality=95)
    assert read_sem_image(tmp_path / "gray.jpg").pixels.shape == gray.shape
    rgb = np.stack([gray, gray // 2, gray // 3], axis=-1)
    iio.imwrite(tmp_path / "colour.png", rgb)
    image = read_sem_image(tmp_path / "colour.png")
    assert image.pixels.shape == gray.shape and any("converted to gray" in n for n in image.notices)
    same = np.stack([gray] * 3, axis=-1)
    tifffile.imwrite(tmp_path / "rgb-gray.tif", same, photometric="rgb")
    assert np.array_equal(read_sem_image(tmp_path / "rgb-gray.tif").pixels, gray)
    alpha = np.full(gray.shape, 255, np.uint8)
    iio.imwrite(tmp_path / "opaque.png", np.dstack([same, alpha]))
    assert not any("alpha" in n for n in read_sem_image(tmp_path / "opaque.png").notices)
    alpha[:10, :7] = 0  # a transparent corner: analysed by its colour, and said
    iio.imwrite(tmp_path / "rgba.png", np.dstack([same, alpha]))
    image = read_sem_image(tmp_path / "rgba.png")
    assert np.array_equal(image.pixels, gray) and any("alpha channel" in n and "70 pixels" in n for n in image.notices)


def test_data_bar_found_in_pixels_and_can_be_kept(tmp_path):
    pixels = add_data_bar(sem_like((300, 256)), 40)
    assert find_data_bar(pixels) == 300
    assert find_data_bar(sem_like((300, 256))) is None
    white_bar = add_data_bar(sem_like((300, 256)), 25, value=255, text=0)
    assert find_data_bar(white_bar) == 300
    path = tmp_path / "bar.tif"
    tifffile.imwrite(path, pixels)
    assert read_sem_image(path).data_bar_row == 300
    kept = read_sem_image(path, exclude_data_bar=False)
    assert kept.data_bar_row is None and kept.analysed_pixels.shape == (340, 256)


def test_the_data_bar_of_an_image_resampled_to_twice_its_size_is_found():
    from skimage.transform import rescale

    pixels = add_data_bar(sem_like((712, 256)), 56)  # the geometry of the real TiO2 images
    pixels[-2:] = 128  # a border line under the bar
    assert find_data_bar(pixels) == 712
    doubled = np.clip(rescale(pixels.astype(np.float64), 2, order=3, preserve_range=True), 0, 255).round()
    assert abs(find_data_bar(doubled.astype(np.uint8)) - 1424) <= 2  # its text and border twice as thick


def test_sample_with_saturated_patches_is_not_a_data_bar():
    pixels = sem_like((300, 256))
    pixels[100:140, 0:60] = 255  # a saturated crystal, not at the bottom
    pixels[-3:, :40] = 0         # a few black pixels at the bottom edge
    assert find_data_bar(pixels) is None


def clipped_to_black(shape, black_fraction, seed):
    """A sample whose background between blob-like crystals is clipped to black (an SEM image
    taken with too low a brightness): about ``black_fraction`` of its pixels are exactly 0."""
    rng = np.random.default_rng(seed)
    relief = ndi.gaussian_filter(rng.normal(size=shape), 6)
    cut = np.quantile(relief, black_fraction)
    return np.clip((relief - cut) / (relief.max() - cut) * 254, 0, 254).astype(np.uint8)


@pytest.mark.parametrize("black_fraction", [0.4, 0.55])
def test_a_sample_clipped_to_black_is_no_data_bar_and_the_bar_under_it_is_found_exactly(black_fraction):
    for seed in range(4):
        sample = clipped_to_black((300, 256), black_fraction, seed)
        assert find_data_bar(sample) is None  # rows of black background at the bottom, between others
        assert find_data_bar(add_data_bar(sample, 40)) == 300  # not in the black background above it


def instrument_bar(width, height):
    """A data bar as FEI instruments draw it: two rows of antialiased white text in fields split by
    lines, and a scale bar with its length, on black."""
    from PIL import Image, ImageDraw, ImageFont

    bar = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(bar)
    font = ImageFont.load_default(size=height * 3 // 8)
    fields = (("HV", "15.00 kV"), ("mag", "5 000 x"), ("WD", "10.1 mm"), ("det", "ETD"), ("HFW", "41.4 um"))
    field_width = width * 3 // 4 // len(fields)
    for index, (name, value) in enumerate(fields):
        left = index * field_width
        draw.text((left + 4, height // 10), name, fill=255, font=font)
        draw.text((left + 4, height // 2), value, fill=255, font=font)
        draw.line([left + field_width, 4, left + field_width, height - 4], fill=255)
    draw.text((width * 4 // 5, height // 10), "10 um", fill=255, font=font)
    draw.rectangle([width * 4 // 5, height * 2 // 3, width - 20, height * 2 // 3 + 3], fill=255)
    return np.asarray(bar)


def test_an_instrument_bar_is_found_after_jpeg_and_halving():
    from skimage.transform import rescale

    image = np.vstack([sem_like((480, 640), seed=1), instrument_bar(640, 40)])
    assert find_data_bar(image) == 480
    jpeg = iio.imread(iio.imwrite("<bytes>", image, extension=".jpg", quality=75))
    assert find_data_bar(jpeg) == 480
    halved = rescale(image.astype(np.float64), 0.5, order=1, anti_aliasing=True, preserve_range=True)
    assert abs(find_data_bar(halved.round().astype(np.uint8)) - 240) <= 2  # its text blurred into gray columns


def test_a_bar_with_a_band_of_dense_gray_text_is_found_whole():
    """JPEG and resampling leave a bar's text rows under half flat: 8 of them are bridged."""
    image = add_data_bar(sem_like((300, 256)), 40)
    image[310:318, 8:250:5] = image[310:318, 9:250:5] = image[310:318, 10:250:5] = 200  # 60 % gray text
    assert find_data_bar(image) == 300


def test_a_band_taller_than_a_bar_may_be_is_not_cut_inside():
    image = sem_like((1000, 1000))
    image[690:] = 0  # 31 % of the height
    image[710:720, 50:400] = 255
    assert find_data_bar(image) is None  # no row inside it has an edge above it


def test_synthetic_scenes_with_a_background_clipped_to_black_have_no_data_bar():
    from microcrystalnet.synth import random_training_scene

    for seed in (900024, 900041):  # 25 and 19 % of their pixels are 0, more in their bottom rows
        assert find_data_bar(random_training_scene(seed, shape=(256, 256)).image) is None


def with_burned_in_marks(image):
    """``image`` with a white scale bar, a line of white text and a black label box in a corner
    holding white text, as instruments and image programs burn them into the sample area."""
    marked = image.copy()
    marked[200:206, 150:250] = 255        # scale bar, 100 x 6 px
    for left in (150, 162, 174, 190):     # "500 nm": letters 12 px high, strokes 2 px wide
        marked[180:192, left:left + 8] = 255
        marked[182:190, left + 2:left + 6] = image[182:190, left + 2:left + 6]
    marked[0:30, 0:110] = 0               # label box in the top left corner...
    marked[8:22, 10:13] = marked[8:11, 10:30] = marked[15:18, 40:60] = 255  # ...and its "text"
    return marked


def test_burned_in_scale_bars_text_and_label_boxes_are_marks_and_the_sample_is_not():
    image = sem_like((256, 320))
    assert not burned_in_marks(image).any()
    marks = burned_in_marks(with_burned_in_marks(image))
    assert marks[200:206, 150:250].all() and marks[0:30, 0:110].all()  # the box with its text
    assert marks[180:192, 150:198].all()  # the line of text, its antialiased edge too
    assert marks.sum() == 6 * 100 + 30 * 110 + (12 + 4) * (48 + 4)
    rows, columns = np.mgrid[:256, :320]
    saturated = image.copy()
    saturated[(rows - 128) ** 2 + (columns - 60) ** 2 <= 15 ** 2] = 255  # a saturated round crystal
    saturated[100:112, 200:212] = 255     # a saturated square one, smaller than a scale bar
    saturated[230:236, 20:60] = 127       # flat, but mid-gray: not drawn
    for left, height in ((150, 6), (160, 11), (175, 8)):  # bright specks side by side, of unlike sizes
        saturated[60 - height:60, left:left + 2] = 255
    assert not burned_in_marks(saturated).any()
    rows, columns = np.mgrid[:256, :320]  # saturated square crystals, blurred and noisy as imaged
    cubes = np.full(image.shape, 100.0)
    for row, column in ((60, 60), (128, 200), (200, 100)):
        cubes[row - 20:row + 20, column - 20:column + 20] = 320
    cubes = ndi.gaussian_filter(cubes, 1.5) + np.random.default_rng(1).normal(0, 12, cubes.shape)
    assert not burned_in_marks(np.clip(np.round(cubes), 0, 255).astype(np.uint8)).any()
    framed = image.copy()
    framed[:, :2] = framed[:, -2:] = framed[:2] = framed[-2:] = 0  # a black frame around the sample
    assert not burned_in_marks(framed).any()
    background = np.where((rows - 128) ** 2 + (columns - 160) ** 2 <= 90 ** 2, image, 0).astype(image.dtype)
    assert not burned_in_marks(background).any()  # a sample on a background clipped to black


def test_no_real_sem_image_has_marks_where_its_sample_is_even_with_clipped_gray_levels():
    real_sem = Path(__file__).resolve().parents[1].parent / "shared" / "real-sem"
    if not (real_sem / "manifest.json").is_file():
        pytest.skip(f"no real SEM images at {real_sem} (the shared folder beside the repository)")
    for entry in json.loads((real_sem / "manifest.json").read_text()):
        pixels = read_sem_image(real_sem / entry["image"]).analysed_pixels.astype(np.float32)
        for clipped in (0, 2, 10):  # stretched so that this % of the pixels clip at each end: flat sample
            low, high = np.percentile(pixels, (clipped, 100 - clipped))
            stretched = np.round(np.clip((pixels - low) / (high - low), 0, 1) * 255).astype(np.uint8)
            assert not burned_in_marks(stretched).any(), (entry["image"], clipped)


def expect_input_error(path, *fragments):
    with pytest.raises(ImageInputError) as raised:
        read_sem_image(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_bad_inputs_give_clear_messages(tmp_path):
    expect_input_error(tmp_path / "missing.tif", "no such file")
    (tmp_path / "empty.tif").write_bytes(b"")
    expect_input_error(tmp_path / "empty.tif", "empty")
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00" + b"\x13" * 200)
    expect_input_error(tmp_path / "corrupt.tif", "cannot be read")
    tifffile.imwrite(tmp_path / "whole.tif", sem_like((512, 512)))
    (tmp_path / "truncated.tif").write_bytes((tmp_path / "whole.tif").read_bytes()[:5000])
    expect_input_error(tmp_path / "truncated.tif", "cannot be read")
    (tmp_path / "notes.txt").write_text("hello")
    expect_input_error(tmp_path / "notes.txt", "unsupported file type")
    tifffile.imwrite(tmp_path / "small.tif", sem_like((32, 32)))
    expect_input_error(tmp_path / "small.tif", "at least 64 x 64")
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([sem_like(), sem_like(seed=1)]))
    expect_input_error(tmp_path / "stack.tif", "stack")
    with_nan = sem_like().astype(np.float32)
    with_nan[10, 10] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", with_nan)
    expect_input_error(tmp_path / "nan.tif", "NaN")
    tifffile.imwrite(tmp_path / "blank.tif", np.full((100, 100), 7, np.uint8))
    expect_input_error(tmp_path / "blank.tif", "blank")


def inverted_gray_palette_16bit():
    """A TIFF colour map (3, 256) of 16-bit values: index i shows gray 255 - i."""
    return np.repeat(((255 - np.arange(256)) * 257)[None].astype(np.uint16), 3, axis=0)


def test_palette_tiff_is_converted_through_its_colour_table(tmp_path):
    indices = sem_like()
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, indices, photometric="palette", colormap=inverted_gray_palette_16bit())
    image = read_sem_image(path)
    assert image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, 255 - indices)  # gray follows the palette, not the index
    assert any("palette" in notice and "colour table" in notice for notice in image.notices)


def test_colour_palette_tiff_gives_the_luminance_of_each_colour(tmp_path):
    indices = np.tile(np.arange(4, dtype=np.uint8), (80, 20))
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :4] = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]).T * 257
    path = tmp_path / "colours.tif"
    tifffile.imwrite(path, indices, photometric="palette", colormap=colormap)
    image = read_sem_image(path)
    np.testing.assert_array_equal(image.pixels[0, :4], [0, 76, 150, 29])  # 0.299, 0.587, 0.114 x 255
    assert any("luminance" in notice for notice in image.notices)


def test_palette_png_is_converted_through_its_colour_table(tmp_path):
    from PIL import Image

    indices = sem_like()
    palette = Image.fromarray(indices, "P")
    palette.putpalette([level for index in range(256) for level in (255 - index,) * 3])
    path = tmp_path / "palette.png"
    palette.save(path)
    image = read_sem_image(path)
    np.testing.assert_array_equal(image.pixels, 255 - indices)
    assert any("palette" in notice for notice in image.notices)


def test_a_folder_named_like_an_image_is_reported_as_a_folder(tmp_path):
    folder = tmp_path / "x.tif"
    folder.mkdir()
    with pytest.raises(ImageInputError, match="is a folder, not an image file") as raised:
        read_sem_image(folder)
    assert "no such file" not in str(raised.value) and str(folder) in str(raised.value)


def test_a_copy_without_pixel_size_takes_it_from_its_original_files_instrument_metadata(tmp_path):
    """The Fiji command's case: ImageJ opened an SEM file uncalibrated and hands over a copy."""
    from microcrystalnet.io import instrument_calibration

    original = tmp_path / "zeiss.tif"
    zeiss = "\r\n".join(["0", "AP_IMAGE_PIXEL_SIZE", "Image Pixel Size = 2.5 nm", ""])
    pixels = sem_like()
    tifffile.imwrite(original, pixels, extratags=[(34118, "s", 0, zeiss, True)])
    copy = tmp_path / "copy.tif"
    tifffile.imwrite(copy, pixels)
    assert read_sem_image(copy).pixel_size_um is None
    image = read_sem_image(copy, metadata_file=original)
    assert image.pixel_size_um == pytest.approx(0.0025)
    assert image.pixel_size_source == "Zeiss SEM metadata of zeiss.tif"
    assert "pixel size 2.5 nm from the Zeiss SEM metadata of zeiss.tif" in image.notices
    assert read_sem_image(copy, pixel_size_um=0.01, metadata_file=original).pixel_size_um == 0.01  # the user's wins

    cropped = instrument_calibration(original, (200, 320))  # a crop or a scaled copy: not this file's pixels
    assert cropped.pixel_size_um is None and "320 x 200 px" in cropped.notice and "320 x 256 px" in cropped.notice
    assert instrument_calibration(copy, pixels.shape).pixel_size_um is None  # no instrument metadata
    assert instrument_calibration(tmp_path / "absent.tif", pixels.shape).pixel_size_um is None


def test_an_fei_original_also_gives_the_data_bar(tmp_path):
    from microcrystalnet.io import instrument_calibration

    fei = "[Scan]\nPixelWidth=1.25e-08\n[Image]\nResolutionX=320\nResolutionY=200\n"
    original = tmp_path / "fei.tif"
    tifffile.imwrite(original, sem_like(), extratags=[(34682, "s", 0, fei, True)])
    calibration = instrument_calibration(original, (256, 320))
    assert calibration.pixel_size_um == pytest.approx(0.0125) and calibration.data_bar_row == 200
    assert calibration.source == "FEI metadata of fei.tif"


def test_a_colour_table_written_by_imagej_is_read_as_8_bit():
    """ImageJ writes an 8-bit LUT into a TIFF colour map as value * 256 (other writers * 257): the
    Fiji command's temporary TIFF of a palette image came out 16-bit, unlike the original."""
    from microcrystalnet.io.image_file import palette_to_gray

    indices = np.arange(12, dtype=np.uint8).reshape(3, 4)
    levels = np.arange(256)
    levels[9] = 255  # a Zeiss SEM's table: the identity but for one entry
    table = np.stack([levels] * 3, axis=1)
    by_instrument, _ = palette_to_gray(indices, table * 257)
    by_imagej, _ = palette_to_gray(indices, table * 256)
    assert by_imagej.dtype == by_instrument.dtype == np.uint8
    assert np.array_equal(by_imagej, by_instrument) and by_imagej[2, 1] == 255
