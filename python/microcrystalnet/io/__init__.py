"""Files in and out: SEM images in; RoiSet.zip, results CSV, label TIFF, overlay PNG and summary out."""

from .image_file import SUPPORTED_SUFFIXES, ImageInputError, SEMImage, read_sem_image, to_unit_range

__all__ = ["SUPPORTED_SUFFIXES", "ImageInputError", "SEMImage", "read_sem_image", "to_unit_range"]
