"""Files in and out: SEM images in; RoiSet.zip, results CSV, label TIFF, overlay PNG and summary out."""

from .image_file import (SUPPORTED_SUFFIXES, ImageInputError, InstrumentCalibration, SEMImage, instrument_calibration,
                         pixel_size_from_unit, read_sem_image, sem_image_from_array, to_unit_range)

__all__ = ["SUPPORTED_SUFFIXES", "ImageInputError", "InstrumentCalibration", "SEMImage", "instrument_calibration",
           "pixel_size_from_unit", "read_sem_image", "sem_image_from_array", "to_unit_range"]
