"""Datasets by spec (`digits`, `tfds:NAME`, `folder:PATH`, `shapes`, `modelnet40:PATH`) and the one
tf.data pipeline they share. Importing the package registers every source."""

from mobilenet_sep.data import images, pointclouds  # noqa: F401  (each registers its loaders)
from mobilenet_sep.data.pipeline import AUGMENTATIONS, DataOptions, LoadedDataset, preprocess
from mobilenet_sep.data.registry import LOADERS, load_dataset, register_loader

__all__ = ["AUGMENTATIONS", "LOADERS", "DataOptions", "LoadedDataset", "load_dataset", "preprocess", "register_loader"]
