"""Datasets as device-resident tensor splits."""

from rlnas.data.base import DataError, DataSplits, Split, split_indices
from rlnas.data.images import load_image_classification

__all__ = ["DataError", "DataSplits", "Split", "load_image_classification", "split_indices"]
