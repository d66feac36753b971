"""Image sources of `load_dataset`: the embedded digits, tensorflow-datasets sets and folders of image files.

Each decodes to uint8 (height, width, 3) at the model's size and hands over to
`pipeline.image_pipeline`, so they share its caching, augmentation, preprocessing and batching.
"""

import functools
import os
import random

from mobilenet_sep.data.pipeline import image_pipeline, image_size, to_rgb_size
from mobilenet_sep.data.registry import register_loader

DIGITS_TEST_FRACTION = 0.2

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
FOLDER_TEST_FRACTION = 0.2
"""A folder without `train/` and `test/` sub-folders is split per class, this fraction to test, seed 0."""


@register_loader("tfds")
def load_tfds(argument, options):
    """`tfds:NAME[:SPLIT]`: any tensorflow-datasets image classification set (`as_supervised`)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if not argument:
        raise ValueError("A tfds dataset needs a name, e.g. tfds:cifar10. Received: dataset='tfds'")
    name, _, split = argument.partition(":")
    split = split or options.split
    spec = f"tfds:{argument}"
    try:
        examples, info = tfds.load(
            name,
            split=split,
            data_dir=options.data_dir,
            download=options.download,
            as_supervised=True,
            with_info=True,
            shuffle_files=False,
        )
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"tensorflow-datasets has no dataset named {name!r}. Received: dataset={spec!r}") from None
    except AssertionError as error:  # tfds' way of saying "not downloaded and prepared"
        raise ValueError(
            f"{name} is not prepared in data_dir {options.data_dir or '~/tensorflow_datasets'} ({error}); "
            f"pass download=True (--download) where there is network, or the right data_dir. Received: dataset={spec!r}"
        ) from None
    except ValueError as error:  # unknown split names, datasets without supervised keys, ...
        raise ValueError(f"{' '.join(str(error).split())[:300]}. Received: dataset={spec!r}") from None
    image_spec, label_spec = examples.element_spec
    if image_spec.shape.rank != 3 or not label_spec.dtype.is_integer:
        raise ValueError(f"{name} is not an image classification set (image, label). Received: dataset={spec!r}")
    size = image_size(options)
    examples = examples.map(
        lambda image, label: (to_rgb_size(image, size), tf.cast(label, tf.int64)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    num_examples = int(examples.cardinality())
    if num_examples < 0:
        num_examples = info.splits[split].num_examples
    label = info.features[info.supervised_keys[1]]
    return image_pipeline(examples, num_examples, options, "crop_flip", label.num_classes, label.names)


def _image_files(folder):
    return sorted(
        entry.path
        for entry in os.scandir(folder)
        if entry.is_file() and not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_EXTENSIONS)
    )


def _class_folders(root, spec):
    if not os.path.isdir(root):
        raise ValueError(f"No such folder. Received: dataset={spec!r}")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise ValueError(
            f"The folder has no class sub-folders (one per class, holding images). Received: dataset={spec!r}"
        )
    files = {name: _image_files(os.path.join(root, name)) for name in classes}
    if not any(files.values()):
        raise ValueError(
            f"The class sub-folders hold no image files ({', '.join(IMAGE_EXTENSIONS)}). Received: dataset={spec!r}"
        )
    return classes, files


def _split_files(files, split):
    """Each class's files shuffled with seed 0; the last FOLDER_TEST_FRACTION of them is the test split."""
    chosen = {}
    for name, paths in files.items():
        paths = list(paths)
        random.Random(0).shuffle(paths)
        test_count = round(len(paths) * FOLDER_TEST_FRACTION)
        chosen[name] = paths[len(paths) - test_count :] if split == "test" else paths[: len(paths) - test_count]
    return chosen


def _pillow_reads(path):
    """Whether Pillow decodes the whole file (a truncated one fails)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    return True


def _tensorflow_misreads(path):
    """TensorFlow decodes a BMP with a palette (1, 4 or 8 bits per pixel) as grey palette indices."""
    from PIL import Image

    if not path.lower().endswith(".bmp"):
        return False
    try:
        with Image.open(path) as image:
            return image.mode not in ("RGB", "RGBA")
    except (OSError, ValueError, SyntaxError):
        return False


@functools.lru_cache(maxsize=8)
def decodable_files(paths):
    """{path: True when Pillow decodes it, False when TensorFlow does} of the files that decode.

    TensorFlow decodes most files, in one parallel pass (its errors dropped, not raised); Pillow
    takes those TensorFlow rejects (BMP with 16 bits per pixel or RLE, ...) or misreads (palette BMP).
    A file neither reads whole (truncated, empty, not an image) is left out: skipped and counted.
    """
    import tensorflow as tf

    def decode(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return index, tf.shape(image)

    indices = tf.data.Dataset.from_tensor_slices(list(paths)).enumerate()
    indices = indices.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    by_tensorflow = {int(index) for index, _ in indices.as_numpy_iterator()}
    decodable = {}
    for index, path in enumerate(paths):
        if index in by_tensorflow and not _tensorflow_misreads(path):
            decodable[path] = False
        elif _pillow_reads(path):
            decodable[path] = True
    return decodable


def pillow_rgb(path):
    """The image file at `path` as uint8 RGB (height, width, 3) through Pillow: palettes expanded, alpha
    dropped, 16-bit values scaled to 8 bits."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        if image.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey
            grey = np.asarray(image, np.float64) * (255.0 / 65535.0)
            return np.repeat(np.clip(np.round(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
        return np.asarray(image.convert("RGB"), np.uint8)


def _decode_file(path, by_pillow):
    """One image file -> uint8 (height, width, 3), by TensorFlow or, where `decodable_files` says so, Pillow."""
    import tensorflow as tf

    def with_pillow():
        return tf.numpy_function(lambda name: pillow_rgb(name.decode()), [path], tf.uint8, stateful=False)

    def with_tensorflow():
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)

    image = tf.cond(by_pillow, with_pillow, with_tensorflow)
    image.set_shape((None, None, 3))
    return image


@register_loader("folder")
def load_folder(argument, options):
    """`folder:PATH`: one sub-folder of images per class, or `PATH/train` and `PATH/test` laid out so.

    JPEG (CMYK too), PNG (grey, 16-bit, palette, alpha), GIF (its first frame) and BMP files become
    RGB; files that do not decode whole (truncated, empty, not an image) are skipped and counted.
    """
    import tensorflow as tf

    spec = f"folder:{argument}"
    if not argument:
        raise ValueError("A folder dataset needs a path, e.g. folder:./images. Received: dataset='folder'")
    if options.split not in ("train", "test"):
        raise ValueError(f'A folder dataset has the splits "train" and "test". Received: split={options.split!r}')
    split_root = os.path.join(argument, options.split)
    if os.path.isdir(os.path.join(argument, "train")) and os.path.isdir(split_root):
        classes, files = _class_folders(split_root, spec)
    else:
        classes, files = _class_folders(argument, spec)
        files = _split_files(files, options.split)
    listed = [(path, label) for label, name in enumerate(classes) for path in files[name]]
    decodable = decodable_files(tuple(path for path, _ in listed))
    kept = [(path, label, decodable[path]) for path, label in listed if path in decodable]
    if not kept:
        raise ValueError(f"No readable image in the {options.split} split of the folder. Received: dataset={spec!r}")
    size = image_size(options)
    paths, labels, by_pillow = zip(*kept, strict=True)
    examples = tf.data.Dataset.from_tensor_slices((list(paths), tf.constant(labels, tf.int64), list(by_pillow)))
    examples = examples.map(
        lambda path, label, pillow: (to_rgb_size(_decode_file(path, pillow), size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return image_pipeline(examples, len(kept), options, "crop_flip", len(classes), classes, len(listed) - len(kept))


@functools.cache
def digits_arrays():
    """scikit-learn's 8x8 digits as uint8 images with a fixed, stratified 80/20 train/test split."""
    import numpy as np
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = np.clip(np.round(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, digits.target, test_size=DIGITS_TEST_FRACTION, stratify=digits.target, random_state=0
    )
    return {"train": (train_images, train_labels), "test": (test_images, test_labels)}


@register_loader("digits")
def load_digits(argument, options):
    """The embedded default: 1,797 real 8x8 handwritten digits shipped with scikit-learn, no network."""
    import tensorflow as tf

    split = argument or options.split
    arrays = digits_arrays()
    if split not in arrays:
        raise ValueError(f"The digits set has the splits 'train' and 'test'. Received: split={split!r}")
    images, labels = arrays[split]
    size = image_size(options)
    examples = tf.data.Dataset.from_tensor_slices((images, labels.astype("int64")))
    examples = examples.map(lambda image, label: (to_rgb_size(image, size), label))
    names = [str(digit) for digit in range(10)]
    return image_pipeline(examples, len(labels), options, "crop", 10, names)
