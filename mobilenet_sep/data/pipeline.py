"""The one tf.data pipeline core: load options, the loaded-dataset record, seeded epochs, image batches.

Images come out as float32 in [-1, 1], as `keras.applications.mobilenet.preprocess_input` makes
them; grayscale becomes 3 channels. Every source (`images`, `pointclouds`) hands its decoded
examples to `image_pipeline` or to `seeded_epochs`, so caching, shuffling, augmentation and
batching are written once.
"""

import dataclasses
from collections.abc import Callable

from mobilenet_sep.utils import checks

AUGMENTATIONS = ("default", "none", "crop", "crop_flip")
"""`crop`: pad by 1/8 of the size and crop back at random (a shift); `flip`: mirror left-right.
`default` lets the loader choose (digits: crop, since mirrored digits are other glyphs; photos: crop_flip)."""

SHUFFLE_BUFFER = 16_384
"""Training sets up to this size are shuffled whole each epoch; larger ones through a buffer this big."""

CACHE_LIMIT_BYTES = 1 << 30
"""Decoded, resized images are cached in memory when they take at most this much (as uint8)."""


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """How to load a split: for which model input, in what batches, for training or evaluation."""

    split: str
    input_shape: tuple
    batch_size: int
    training: bool = False
    seed: int = 0
    data_dir: str | None = None
    download: bool = False
    augment: str = "default"


@dataclasses.dataclass
class LoadedDataset:
    """A batched tf.data pipeline and what a trainer needs to know about it."""

    dataset: object
    num_classes: int
    class_names: list
    num_examples: int
    skipped: int = 0
    for_epoch: Callable | None = None

    def epoch(self, index: int):
        """Epoch `index` of a training set (see the loader contract); `dataset` where no `for_epoch` exists."""
        return self.for_epoch(index) if self.for_epoch is not None else self.dataset


def check_options(options: "DataOptions") -> "DataOptions":
    """The options every loader relies on, checked once for all of them."""
    checks.positive_int(options.batch_size, "batch_size")
    checks.choice(options.augment, AUGMENTATIONS, "augment")
    return options


def preprocess(images):
    """uint8-range pixels -> float32 in [-1, 1]: keras.applications MobileNet's `preprocess_input`."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def image_size(options: DataOptions) -> tuple[int, int]:
    """(height, width) from an image model's input shape (height, width, 3)."""
    shape = tuple(options.input_shape)
    if len(shape) != 3 or shape[2] != 3 or not all(isinstance(size, int) and size > 0 for size in shape[:2]):
        raise ValueError(f"Image data needs input_shape (height, width, 3). Received: input_shape={shape}")
    return shape[:2]


def to_rgb_size(image, size):
    """One image of any size with 1, 3 or 4 channels -> uint8 (height, width, 3)."""
    import tensorflow as tf

    channels = image.shape[-1]
    if channels == 1:
        image = tf.image.grayscale_to_rgb(image)
    elif channels == 4:
        image = image[..., :3]
    resized = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def _augment(image, seed, augment):
    """Seeded (stateless) pad-and-crop shift and left-right flip of one uint8 image."""
    import tensorflow as tf

    if augment == "none":
        return image
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if "crop" in augment:
        height, width = image.shape[0], image.shape[1]
        pad_y, pad_x = max(1, height // 8), max(1, width // 8)
        padded = tf.pad(image, [[pad_y, pad_y], [pad_x, pad_x], [0, 0]])
        image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=crop_seed)
    if "flip" in augment:
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def seeded_epochs(examples, num_examples: int, options: DataOptions, prepare: Callable) -> Callable:
    """`for_epoch(k)` of a training set, for any kind of data: examples shuffled from the seed
    `(options.seed, k)`, `prepare(example, seed)` applied with a stateless per-example seed (shape
    [2]) for its augmentation, full batches of `options.batch_size`, prefetched."""
    import tensorflow as tf

    if num_examples < options.batch_size:
        raise ValueError(
            f"The training split has {num_examples} examples, fewer than one batch. Received: batch_size={options.batch_size}"
        )

    def for_epoch(epoch):
        epoch_seed = tf.constant(options.seed, tf.int64) * 1_000_003 + epoch
        shuffled = examples.shuffle(min(num_examples, SHUFFLE_BUFFER), seed=epoch_seed, reshuffle_each_iteration=False)
        return (
            shuffled.enumerate()
            .map(lambda index, example: prepare(example, tf.stack([epoch_seed, index])), tf.data.AUTOTUNE)
            .batch(options.batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    return for_epoch


def image_pipeline(
    examples,
    num_examples: int,
    options: DataOptions,
    default_augment: str,
    num_classes: int,
    class_names,
    skipped: int = 0,
) -> LoadedDataset:
    """The one image pipeline: (uint8 image, label) examples -> LoadedDataset of preprocessed batches.

    `examples` must already be decoded to (height, width, 3) uint8 at the model's size (see
    `to_rgb_size`). They are cached in memory when they fit, then for training shuffled and
    augmented per epoch from seeds (`seeded_epochs`), then scaled to [-1, 1], batched and prefetched.
    """
    import tensorflow as tf

    height, width = image_size(options)
    if num_examples * height * width * 3 <= CACHE_LIMIT_BYTES:
        examples = examples.cache()
    class_names = list(class_names)
    if not options.training:
        scaled = examples.map(lambda image, label: (preprocess(image), label), num_parallel_calls=tf.data.AUTOTUNE)
        dataset = scaled.batch(options.batch_size).prefetch(tf.data.AUTOTUNE)
        return LoadedDataset(dataset, num_classes, class_names, num_examples, skipped)
    augment = default_augment if options.augment == "default" else options.augment

    def prepare(example, seed):
        image, label = example
        return preprocess(_augment(image, seed, augment)), label

    for_epoch = seeded_epochs(examples, num_examples, options, prepare)
    return LoadedDataset(for_epoch(0), num_classes, class_names, num_examples, skipped, for_epoch)
