"""Datasets for training and evaluation by spec: `load_dataset(spec, options)` and its loader registry.

A spec is `KIND` or `KIND:ARGUMENT`: `digits`, `tfds:cifar10`, `tfds:tf_flowers:train[:80%]`,
`folder:/path/to/images`, `shapes`, `modelnet40:/path/to/hdf5`. The kind picks a loader
registered with `@register_loader(kind)` where it is defined, so point clouds and images share the door.

Loader contract, for every entry of `LOADERS`:
    `loader(argument: str | None, options: DataOptions) -> LoadedDataset`, where `argument` is the
    text after `KIND:` (None without it). An explicit split in the argument wins over `options.split`.
    `LoadedDataset.dataset` is one pass over the split in batches of `options.batch_size`:
    `(inputs, integer labels)`. With `options.training` it is shuffled and augmented, its batches all
    full, and `for_epoch(k)` gives epoch k's pass: order and augmentation are a pure function of
    `(options.seed, k)`, so a resumed run sees exactly the batches an uninterrupted one would
    (`seeded_epochs` builds it for any data). A loader may leave `for_epoch` None: trainers then
    reuse `dataset` every epoch, and resuming is not bit-exact. Bad input raises ValueError with one
    line ending in the value received.
"""

from collections.abc import Callable

from mobilenet_sep.data.pipeline import DataOptions, LoadedDataset, check_options
from mobilenet_sep.utils import checks
from mobilenet_sep.utils.registry import Registry

LOADERS = Registry("dataset loader")
"""Dataset kind -> its loader, filled by `register_loader` as the source modules are imported."""


def register_loader(kind: str) -> Callable:
    """Decorator: make `loader(argument, options) -> LoadedDataset` the loader of specs `kind[:ARGUMENT]`."""
    return LOADERS.register(kind)


def load_dataset(spec: str, options: DataOptions) -> LoadedDataset:
    """The LoadedDataset a spec names (see the module docstring), ready for `options.input_shape`."""
    kind, _, argument = str(spec).partition(":")
    if kind not in LOADERS:
        hint = checks.did_you_mean(kind, LOADERS, cutoff=0.7)
        raise ValueError(f"Unknown dataset kind; known kinds: {', '.join(LOADERS)}.{hint} Received: dataset={spec!r}")
    return LOADERS[kind](argument or None, check_options(options))
