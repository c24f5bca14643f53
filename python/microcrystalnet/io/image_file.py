"""Reading SEM images: pixels, pixel size, and what was done to them on the way in.

Accepted: TIFF (8-, 16-bit integer or 32-bit float; ImageJ and instrument TIFFs), PNG, JPEG.
RGB is converted to gray (with a notice), and so are palette (indexed-colour) images, through
their colour table: their pixel values are indices, not brightness. A single 2D image is
expected: stacks, empty, unreadable or too small files and images holding NaN raise
:class:`ImageInputError` with a message naming the file and what to do.

Pixel size, in order: the caller's value -> ImageJ calibration -> FEI/Thermo Fisher metadata
(``[Scan] PixelWidth``, read by tifffile) -> Zeiss SEM metadata (``ap_image_pixel_size``, read by
tifffile) -> Tescan metadata (INI text in TIFF tag 50431, ``[MAIN] PixelSizeX`` in metres) ->
JEOL metadata (``$$SM_MICRON_BAR`` pixels long = ``$$SM_MICRON_MARKER``, e.g. ``1um``, from the
``<image>.txt`` JEOL writes beside each image, or the JEOL header tag 65027 when it holds that
text) -> unknown (results in pixels).
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from PIL import Image

from ..databar import find_data_bar
from ..notices import SET_PIXEL_SIZE, Notice

Array = np.ndarray

#: smallest accepted image side, pixels (a crystal patch alone is 64 px)
MIN_IMAGE_SIDE = 64

TIFF_SUFFIXES = (".tif", ".tiff")
OTHER_SUFFIXES = (".png", ".jpg", ".jpeg")
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + OTHER_SUFFIXES

_UNIT_TO_UM = {"um": 1.0, "\u00b5m": 1.0, "\u03bcm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
               "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3, "m": 1e6, "meter": 1e6,
               "cm": 1e4, "pm": 1e-6}


class ImageInputError(ValueError):
    """An input image cannot be analysed; the message names the file and the fix."""


@dataclass
class SEMImage:
    """A gray SEM image ready for analysis.

    ``pixels``: the image as read, (Y, X), original dtype and values (Mean is measured on
    these). ``data_bar_row``: first row of the instrument's data bar (excluded from analysis),
    or None. ``pixel_size_um``: micrometres per pixel, or None if unknown;
    ``pixel_size_source`` says where it came from. ``notices``: what was done on reading
    that a user should know.
    """

    path: Path
    pixels: Array
    pixel_size_um: float | None = None
    pixel_size_source: str | None = None
    data_bar_row: int | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def analysed_pixels(self) -> Array:
        """The part of ``pixels`` above the data bar."""
        return self.pixels if self.data_bar_row is None else self.pixels[: self.data_bar_row]


def to_unit_range(pixels: Array) -> Array:
    """Float32 (Y, X) in [0, 1]: 8-bit values / 255; other types scaled from their min to max.

    8-bit images keep their values, as the reference classifier was trained on 8-bit patches
    divided by 255. Other types are stretched as ImageJ converts them to 8-bit.
    """
    # in place on one float32 copy: a float64 copy of a 12000 x 12000 image alone is 1.2 GB
    unit = pixels.astype(np.float32)
    if pixels.dtype == np.uint8:
        unit /= 255.0
        return unit
    low, high = float(np.min(pixels)), float(np.max(pixels))
    if high <= low:
        return np.zeros(pixels.shape, np.float32)
    unit -= low
    unit /= high - low
    return unit


#: rows converted at once by :func:`to_8bit` (bounds its float32 working copy)
_BAND_ROWS = 1024


def to_8bit(pixels: Array) -> Array:
    """Uint8 (Y, X) for display: 8-bit images as they are, other types scaled from their min to
    max to 0-255 as ImageJ converts them to 8-bit; worked in bands of rows, so a large image never
    has a full-size float copy."""
    if pixels.dtype == np.uint8:
        return pixels
    low, high = float(np.min(pixels)), float(np.max(pixels))
    display = np.zeros(pixels.shape, np.uint8)
    if high <= low:
        return display
    for top in range(0, pixels.shape[0], _BAND_ROWS):
        band = pixels[top:top + _BAND_ROWS].astype(np.float32)
        band -= low
        band *= 255.0 / (high - low)
        display[top:top + _BAND_ROWS] = np.rint(band)
    return display


LUMINANCE = "luminance 0.299 R + 0.587 G + 0.114 B"


def _rgb_to_gray(pixels: Array, notices: list[str]) -> Array:
    if pixels.shape[-1] == 4:  # RGBA: SEM signal has no transparency; say where the file had some
        opaque = np.iinfo(pixels.dtype).max if np.issubdtype(pixels.dtype, np.integer) else 1.0
        see_through = int(np.count_nonzero(pixels[..., 3] != opaque))
        if see_through:
            notices.append(f"its alpha channel (transparency) was ignored: {see_through} pixels are not fully "
                           "opaque and are analysed by their colour alone")
    channels = pixels[..., :3].astype(np.float64)
    if np.array_equal(channels[..., 0], channels[..., 1]) and np.array_equal(channels[..., 0], channels[..., 2]):
        notices.append("RGB image with three equal channels: using one channel as gray")
        return pixels[..., 0]
    notices.append(f"RGB image converted to gray ({LUMINANCE})")
    gray = channels @ np.array([0.299, 0.587, 0.114])
    return np.round(gray).astype(pixels.dtype) if np.issubdtype(pixels.dtype, np.integer) else gray.astype(np.float32)


def palette_to_gray(indices: Array, palette_rgb: Array) -> tuple[Array, str]:
    """Gray pixels of a palette (indexed-colour) image, and a notice saying how they were made.

    ``indices``: integer (Y, X), each pixel an entry of ``palette_rgb``: (N, 3) R, G, B of each
    entry, 8-bit (PNG) or 16-bit (TIFF colour maps). Gray palettes give their gray level, colour
    palettes the luminance of each entry. Returns uint8 when every entry is 8-bit (TIFF colour maps
    store 8-bit palettes as multiples of 257, or, written by ImageJ, of 256), else uint16.
    """
    palette = np.asarray(palette_rgb).astype(np.int64)
    for step in (257, 256):
        if palette.max(initial=0) > 255 and not np.any(palette % step):
            palette //= step
    gray_palette = bool(np.all(palette == palette[:, :1]))
    table = palette[:, 0] if gray_palette else np.round(palette @ np.array([0.299, 0.587, 0.114]))
    table = table.astype(np.uint8 if palette.max(initial=0) <= 255 else np.uint16)
    if indices.max(initial=0) >= len(table):
        raise ValueError(f"pixel value {indices.max()} has no entry in the colour table of {len(table)} entries")
    how = "gray levels of its gray palette" if gray_palette else f"{LUMINANCE} of each palette colour"
    return table[indices], f"palette (indexed-colour) image converted to gray through its colour table ({how})"


def _read_png_or_jpeg(path: Path) -> tuple[Array, list[str]]:
    with Image.open(path) as opened:
        if opened.mode in ("P", "PA"):
            indices = np.asarray(opened.convert("P") if opened.mode == "PA" else opened)
            palette = np.asarray(opened.getpalette(), np.uint8).reshape(-1, 3)
            gray, notice = palette_to_gray(indices, palette)
            return gray, [notice]
    return iio.imread(path), []


def _imagej_pixel_size(tif: tifffile.TiffFile) -> float | None:
    metadata = tif.imagej_metadata or {}
    tag = tif.pages.first.tags.get("XResolution")
    if "unit" not in metadata or tag is None or tag.value[0] <= 0:
        return None
    numerator, denominator = tag.value
    return pixel_size_from_unit(denominator / numerator, metadata["unit"])


def _fei_pixel_size(tif: tifffile.TiffFile) -> float | None:
    metadata = tif.fei_metadata or {}
    width = metadata.get("Scan", {}).get("PixelWidth") or metadata.get("EScan", {}).get("PixelWidth")
    return float(width) * 1e6 if isinstance(width, (int, float)) and width > 0 else None


def _zeiss_pixel_size(tif: tifffile.TiffFile) -> float | None:
    metadata = tif.sem_metadata or {}
    entry = metadata.get("ap_image_pixel_size") or metadata.get("ap_pixel_size")
    if not entry or len(entry) < 3 or not isinstance(entry[1], (int, float)):
        return None
    return pixel_size_from_unit(float(entry[1]), str(entry[2]))


TESCAN_TAG = 50431
JEOL_HEADER_TAG = 65027


def _tag_text(tif: tifffile.TiffFile, code: int) -> str | None:
    tag = tif.pages.first.tags.get(code)
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) else None


def _tescan_pixel_size(tif: tifffile.TiffFile) -> float | None:
    text = _tag_text(tif, TESCAN_TAG)
    if not text:
        return None
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text if text.lstrip().startswith("[") else "[MAIN]\n" + text)
        metres = float(parser.get("MAIN", "PixelSizeX"))
    except (configparser.Error, ValueError):
        return None
    return metres * 1e6 if metres > 0 else None


def jeol_pixel_size(text: str) -> float | None:
    """Micrometres per pixel from JEOL SEM metadata text (``$$SM_MICRON_BAR`` and ``$$SM_MICRON_MARKER``)."""
    bar = re.search(r"^\$+SM_MICRON_BAR\s+([\d.]+)", text, re.MULTILINE)
    marker = re.search(r"^\$+SM_MICRON_MARKER\s+([\d.]+)\s*([a-zA-Z\u00b5]+)", text, re.MULTILINE)
    if not bar or not marker or float(bar.group(1)) <= 0:
        return None
    return pixel_size_from_unit(float(marker.group(1)) / float(bar.group(1)), marker.group(2))


def _jeol_pixel_size(tif: tifffile.TiffFile) -> float | None:
    sidecar = Path(tif.filehandle.path).with_suffix(".txt")
    text = _tag_text(tif, JEOL_HEADER_TAG) or ""
    if "SM_MICRON" not in text and sidecar.is_file():
        text = sidecar.read_text(errors="replace")
    return jeol_pixel_size(text)


def _fei_data_bar_row(tif: tifffile.TiffFile, height: int) -> int | None:
    """FEI files state the height of the image without the bar as [Image] ResolutionY."""
    rows = (tif.fei_metadata or {}).get("Image", {}).get("ResolutionY")
    return int(rows) if isinstance(rows, int) and 0 < rows < height else None


def _read_tiff(path: Path) -> tuple[Array, float | None, str | None, int | None, list[str]]:
    notices = []
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise ImageInputError(f"{path}: cannot be read as an image (the TIFF holds no readable image); "
                                  "is the file complete?")
        pixels = tif.series[0].asarray()  # later series of instrument TIFFs are thumbnails
        page = tif.series[0].keyframe
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
            pixels, notice = palette_to_gray(pixels, np.asarray(page.colormap).T)
            notices.append(notice)
        size, source = _imagej_pixel_size(tif), "ImageJ calibration"
        if not size:
            size, source = _instrument_pixel_size(tif)
        bar_row = _fei_data_bar_row(tif, pixels.shape[-2] if pixels.ndim >= 2 else 0) if tif.is_fei else None
    return pixels, size, source, bar_row, notices


def _instrument_pixel_size(tif: tifffile.TiffFile) -> tuple[float | None, str | None]:
    """The pixel size (um) an SEM instrument wrote into the TIFF's metadata, and which metadata it was."""
    for reader, name in ((_fei_pixel_size, "FEI metadata"), (_zeiss_pixel_size, "Zeiss SEM metadata"),
                         (_tescan_pixel_size, "Tescan metadata"), (_jeol_pixel_size, "JEOL metadata")):
        size = reader(tif)
        if size:
            return size, name
    return None, None


@dataclass(frozen=True)
class InstrumentCalibration:
    """What an SEM file's instrument metadata says about an image opened from it: ``pixel_size_um``
    (None: nothing usable), where it came from (``source``, naming the file), the data bar's first
    row (FEI files state it), and a ``notice`` for the user either way."""

    pixel_size_um: float | None
    source: str | None
    data_bar_row: int | None
    notice: str


def instrument_calibration(path: str | Path, shape: tuple[int, int]) -> InstrumentCalibration:
    """The pixel size that the FEI, Zeiss, Tescan or JEOL metadata of the TIFF ``path`` gives an
    image of ``shape`` (rows, columns) opened from it, read as :func:`read_sem_image` reads it.

    For an image that lost its calibration on the way (ImageJ does not read instrument metadata):
    the Fiji command passes the file its image was opened from. Used only if the file's image has
    the same shape: a cropped or scaled copy has another pixel size or data bar, or none known.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES or not path.is_file():
        return InstrumentCalibration(None, None, None, f"pixel size unknown: {path} is not a TIFF file whose "
                                     "SEM metadata could give it")
    try:
        with tifffile.TiffFile(path) as tif:
            file_shape = tuple(tif.series[0].keyframe.shape[:2]) if tif.series else None
            size, source = _instrument_pixel_size(tif)
            bar_row = _fei_data_bar_row(tif, shape[0]) if tif.is_fei else None
    except Exception as error:  # every reader raises its own types for broken files
        return InstrumentCalibration(None, None, None, f"pixel size unknown: the SEM metadata of {path} cannot be "
                                     f"read ({type(error).__name__}: {error})")
    if not size:
        return InstrumentCalibration(None, None, None, f"pixel size unknown: {path} has no FEI, Zeiss, Tescan or "
                                     "JEOL metadata that gives it")
    if file_shape != tuple(shape):
        found = f"{file_shape[1]} x {file_shape[0]} px" if file_shape else "of another shape"
        return InstrumentCalibration(None, None, None, f"pixel size unknown: the {source} of {path} was not used, "
                                     f"because the image is {shape[1]} x {shape[0]} px and the file's {found} "
                                     "(cropped or scaled since it was opened?)")
    source = f"{source} of {path.name}"
    return InstrumentCalibration(size, source, bar_row, f"pixel size {size * 1000:.4g} nm from the {source}")


def read_sem_image(path: str | Path, pixel_size_um: float | None = None, exclude_data_bar: bool = True,
                   metadata_file: str | Path | None = None) -> SEMImage:
    """Read one SEM image for analysis.

    ``pixel_size_um`` overrides the file's calibration. With ``exclude_data_bar`` the
    instrument's data bar is found (metadata, else :func:`microcrystalnet.databar.find_data_bar`)
    and left out of the analysis. ``metadata_file``: for a copy of an image that lost its pixel
    size (the Fiji command's temporary TIFF of an uncalibrated image), the original file, whose
    instrument metadata then gives it (:func:`instrument_calibration`).
    """
    path = Path(path)
    if path.is_dir():
        raise ImageInputError(f"{path}: is a folder, not an image file; give the image files inside it "
                              f"(e.g. {path / '*.tif'}), or analyse the whole folder with 'microcrystalnet batch'")
    if not path.is_file():
        raise ImageInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ImageInputError(f"{path}: unsupported file type {suffix!r}; use TIFF, PNG or JPEG")
    if path.stat().st_size == 0:
        raise ImageInputError(f"{path}: the file is empty (0 bytes)")
    size, source, bar_row = None, None, None
    try:
        if suffix in TIFF_SUFFIXES:
            pixels, size, source, bar_row, notices = _read_tiff(path)
        else:
            pixels, notices = _read_png_or_jpeg(path)
    except ImageInputError:
        raise
    except Exception as error:  # every reader raises its own types for broken files
        raise ImageInputError(f"{path}: cannot be read as an image ({type(error).__name__}: {error}); "
                              "is the file complete and really a TIFF/PNG/JPEG?") from error

    if pixel_size_um is not None:
        size, source = pixel_size_um, "given by the user"
    elif not size and metadata_file is not None:
        calibration = instrument_calibration(metadata_file, pixels.shape[:2])
        size, source = calibration.pixel_size_um, calibration.source
        bar_row = bar_row if bar_row is not None else calibration.data_bar_row
        notices.append(calibration.notice)
    return sem_image_from_array(pixels, path, size, source, exclude_data_bar, bar_row, notices)


def _normalised_unit(unit: str) -> str:
    """Lower-case unit; ImageJ writes non-ASCII units escaped into TIFFs (``\\u00B5m``)."""
    unit = str(unit).strip()
    if "\\u" in unit:
        unit = unit.encode("ascii", "backslashreplace").decode("unicode_escape")
    return unit.lower()


def pixel_size_from_unit(length: float, unit: str) -> float | None:
    """Micrometres per pixel from a calibration (``length`` per pixel in ``unit``), or None."""
    factor = _UNIT_TO_UM.get(_normalised_unit(unit))
    return length * factor if factor and length > 0 else None


def sem_image_from_array(pixels: Array, path: str | Path, pixel_size_um: float | None = None,
                         pixel_size_source: str | None = None, exclude_data_bar: bool = True,
                         data_bar_row: int | None = None, reading_notices: Sequence[str] = ()) -> SEMImage:
    """Check an image already in memory (e.g. handed over by ImageJ) like a file read from disk.

    ``pixels``: (Y, X) gray or (Y, X, 3|4) RGB, any integer or float type; ``path`` names the
    image in messages and outputs. ``data_bar_row`` comes from metadata when known; otherwise,
    with ``exclude_data_bar``, the bar is looked for in the pixels. ``reading_notices``: what
    reading the file did that a user should know (e.g. a palette converted to gray).
    """
    path = Path(path)
    notices = list(reading_notices)
    source = pixel_size_source if pixel_size_um else None
    bar_row = data_bar_row
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4) and pixels.shape[0] > 4:
        pixels = _rgb_to_gray(pixels, notices)
    if pixels.ndim == 3 and pixels.shape[0] == 1:
        pixels = pixels[0]
    if pixels.ndim != 2:
        raise ImageInputError(f"{path}: expected one 2D image, got an array of shape {pixels.shape} "
                              "(a stack or multi-channel image); save the single SEM image on its own")
    if min(pixels.shape) < MIN_IMAGE_SIDE:
        raise ImageInputError(f"{path}: image is {pixels.shape[1]} x {pixels.shape[0]} px; "
                              f"at least {MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE} px are needed")
    if pixels.dtype.kind not in "uif":
        raise ImageInputError(f"{path}: unsupported pixel type {pixels.dtype}; use 8/16-bit integer or 32-bit float")
    if pixels.dtype.kind == "f" and not np.all(np.isfinite(pixels)):
        raise ImageInputError(f"{path}: the image holds NaN or infinite values; replace them (e.g. with "
                              "Process > Math > Remove NaNs in Fiji) and try again")
    if np.min(pixels) == np.max(pixels):
        raise ImageInputError(f"{path}: the image is blank (every pixel is {np.min(pixels)})")

    if exclude_data_bar:
        if bar_row is None:
            bar_row = find_data_bar(pixels)
            how = "found in the pixels"
        else:
            how = "from the file's metadata"
        if bar_row is not None:
            notices.append(f"data bar {how}: rows {bar_row}-{pixels.shape[0] - 1} are excluded from the analysis")
    else:
        bar_row = None
    if bar_row is not None and bar_row < MIN_IMAGE_SIDE:
        raise ImageInputError(f"{path}: only {bar_row} rows remain above the data bar; "
                              "if there is no data bar, turn its detection off (--keep-data-bar)")
    if pixel_size_um is None:
        notices.append(Notice.of("pixel size unknown: results are in pixels (", SET_PIXEL_SIZE, " to calibrate)"))
    return SEMImage(path, pixels, pixel_size_um, source, bar_row, notices)
