"""Image sources behind `data.load_dataset`: tensorflow-datasets sets and folders of image files.

Both decode to uint8 (height, width, 3) at the model's size and hand over to `data.image_pipeline`,
so they share its caching, augmentation, preprocessing and batching.
"""

import functools
import os
import random

from mobilenet_sep.data import image_pipeline, image_size, to_rgb_size

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
FOLDER_TEST_FRACTION = 0.2
"""A folder without `train/` and `test/` sub-folders is split per class, this fraction to test, seed 0."""


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


@functools.lru_cache(maxsize=8)
def readable_files(paths):
    """The paths TensorFlow can decode as images: one parallel decoding pass, errors dropped, not raised."""
    import tensorflow as tf

    def decode(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return index, tf.shape(image)

    indices = tf.data.Dataset.from_tensor_slices(list(paths)).enumerate()
    indices = indices.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    readable = {int(index) for index, _ in indices.as_numpy_iterator()}
    return tuple(path for index, path in enumerate(paths) if index in readable)


def load_folder(argument, options):
    """`folder:PATH`: one sub-folder of images per class, or `PATH/train` and `PATH/test` laid out so.

    Grayscale and RGBA files become RGB; files that do not decode are skipped and counted.
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
    readable = set(readable_files(tuple(path for path, _ in listed)))
    kept = [(path, label) for path, label in listed if path in readable]
    if not kept:
        raise ValueError(f"No readable image in the {options.split} split of the folder. Received: dataset={spec!r}")
    size = image_size(options)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape((None, None, 3))
        return to_rgb_size(image, size), label

    paths, labels = zip(*kept, strict=True)
    examples = tf.data.Dataset.from_tensor_slices((list(paths), tf.constant(labels, tf.int64)))
    examples = examples.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return image_pipeline(examples, len(kept), options, "crop_flip", len(classes), classes, len(listed) - len(kept))
