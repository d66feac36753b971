"""tensorflow-datasets sets (offline, through tfds.testing.mock_data) and image folders the tests write."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from mobilenet_sep.data import DataOptions, load_dataset

COLORS = {"cat": (200, 30, 30), "dog": (20, 160, 40), "owl": (10, 20, 230)}


def _arrays(dataset):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
    return np.concatenate(images), np.concatenate(labels)


@pytest.mark.parametrize(
    "spec,split,classes",
    [
        ("tfds:cifar10", "train", 10),
        ("tfds:mnist", "test", 10),  # grayscale 28x28
        ("tfds:tf_flowers:train[:80%]", "test", 5),  # images of any size; the spec's split wins
    ],
)
def test_tfds_sets_load_offline_resized_and_scaled(spec, split, classes, tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        loaded = load_dataset(spec, DataOptions(split, (40, 36, 3), batch_size=5, data_dir=str(tmp_path)))
        images, labels = _arrays(loaded.dataset)
        names = tfds.builder(spec.split(":")[1], data_dir=str(tmp_path)).info.features["label"].names
    assert (loaded.num_classes, loaded.num_examples, loaded.skipped) == (classes, 12, 0)
    assert loaded.class_names == names and len(names) == classes
    assert images.shape == (12, 40, 36, 3) and images.min() >= -1 and images.max() <= 1
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < classes
    if "mnist" in spec:
        np.testing.assert_array_equal(images[..., 0], images[..., 1])


def test_tfds_training_epochs_are_seeded(tmp_path):
    options = DataOptions("train", (32, 32, 3), batch_size=4, training=True, data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=16):
        loaded = load_dataset("tfds:cifar10", options)
        first, again, other = (_arrays(loaded.epoch(epoch)) for epoch in (1, 1, 2))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[0].shape == (16, 32, 32, 3) and not np.array_equal(first[0], other[0])


def test_tfds_errors_name_the_dataset(tmp_path):
    options = DataOptions("train", (32, 32, 3), 8, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no dataset named 'no_such_set'. Received: dataset='tfds:no_such_set'"):
        load_dataset("tfds:no_such_set", options)
    with pytest.raises(ValueError, match="cifar10 is not prepared.*--download.*Received: dataset='tfds:cifar10'"):
        load_dataset("tfds:cifar10", options)  # nothing downloaded in tmp_path, download=False
    with pytest.raises(ValueError, match="needs a name"):
        load_dataset("tfds", options)


def _write(path, color, size=(20, 16), mode="RGB"):
    image = Image.new("RGB", size, color)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert(mode).save(path)


def _folder(root, per_class=5):
    for name, color in COLORS.items():
        for index in range(per_class):
            _write(root / name / f"{index}.{'png' if index % 2 else 'jpg'}", color)
    return root


def test_folder_classes_splits_grayscale_and_corrupt_files(tmp_path):
    root = _folder(tmp_path / "images")
    _write(root / "owl" / "grey.png", (10, 20, 230), mode="L")  # grayscale: becomes 3 equal channels
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "dog" / "notes.txt").write_text("ignored: not an image extension")
    loaded = {
        split: load_dataset(f"folder:{root}", DataOptions(split, (32, 32, 3), batch_size=4))
        for split in ("train", "test")
    }
    # cat 5 files, dog 5 + 1 corrupt, owl 5 + 1 grey: 17 images listed, 16 readable.
    assert loaded["train"].class_names == ["cat", "dog", "owl"] and loaded["train"].num_classes == 3
    assert loaded["train"].num_examples + loaded["test"].num_examples == 16
    assert loaded["train"].skipped + loaded["test"].skipped == 1
    for split in ("train", "test"):
        images, labels = _arrays(loaded[split].dataset)
        assert len(labels) == loaded[split].num_examples
        for image, label in zip(images, labels, strict=True):
            name = loaded[split].class_names[label]
            grey = np.allclose(image[..., 0], image[..., 1], atol=1e-6)
            expected = np.array(COLORS[name]) / 127.5 - 1
            if not grey:  # solid colour in, solid colour out (JPEG may move a value by a few levels)
                np.testing.assert_allclose(image, np.broadcast_to(expected, image.shape), atol=8 / 127.5)
            else:
                assert name == "owl"
    assert loaded["test"].num_examples in (2, 3)  # round(20%) of each class: 1 of 5, 1 of 6, 1 of 6


def test_folder_with_train_and_test_subfolders_uses_them(tmp_path):
    _folder(tmp_path / "set" / "train", per_class=3)
    _folder(tmp_path / "set" / "test", per_class=2)
    sizes = [
        load_dataset(f"folder:{tmp_path / 'set'}", DataOptions(split, (32, 32, 3), 4)).num_examples
        for split in ("train", "test")
    ]
    assert sizes == [9, 6]


def test_folder_training_batches_are_full_and_seeded(tmp_path):
    root = _folder(tmp_path / "images", per_class=10)
    options = DataOptions("train", (32, 32, 3), batch_size=8, training=True, seed=1)
    loaded = load_dataset(f"folder:{root}", options)
    images, labels = _arrays(loaded.epoch(0))
    assert loaded.num_examples == 24 and images.shape == (24, 32, 32, 3)
    np.testing.assert_array_equal(_arrays(loaded.epoch(0))[1], labels)


def test_empty_classless_and_missing_folders_are_clear_errors(tmp_path):
    options = DataOptions("train", (32, 32, 3), 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders.*Received: dataset='folder:.*empty'"):
        load_dataset(f"folder:{tmp_path / 'empty'}", options)
    (tmp_path / "loose").mkdir()
    _write(tmp_path / "loose" / "a.png", (1, 2, 3))  # images but no class folders
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'loose'}", options)
    (tmp_path / "hollow" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="hold no image files"):
        load_dataset(f"folder:{tmp_path / 'hollow'}", options)
    (tmp_path / "junk" / "cat").mkdir(parents=True)
    (tmp_path / "junk" / "cat" / "a.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="No readable image in the train split"):
        load_dataset(f"folder:{tmp_path / 'junk'}", options)
    with pytest.raises(ValueError, match="No such folder"):
        load_dataset(f"folder:{tmp_path / 'absent'}", options)


def test_folder_has_only_train_and_test_splits(tmp_path):
    root = _folder(tmp_path / "images")
    with pytest.raises(ValueError, match='splits "train" and "test". Received: split=\'validation\''):
        load_dataset(f"folder:{root}", DataOptions("validation", (32, 32, 3), batch_size=4))


def test_export_data_calibrates_on_every_class_of_a_class_ordered_folder(tmp_path):
    """Folders list files class by class: the calibration batches must be shuffled, not the first class."""
    from mobilenet_sep import create_model
    from mobilenet_sep.export.exporter import export_data

    root = _folder(tmp_path / "images", per_class=40)
    model = create_model("mobilenet_v1_0.25_128", input_shape=(32, 32, 3), classes=len(COLORS))
    calibration, (images, labels), _ = export_data(f"folder:{root}", model, limit=1000)
    first_batch = next(iter(calibration))
    dominant = {int(np.argmax(np.asarray(image).mean(axis=(0, 1)))) for image in first_batch}
    assert dominant == {0, 1, 2}  # red cats, green dogs, blue owls: every class is in the first batch
    assert len(images) == len(labels) == 3 * 8 and sorted(set(labels.tolist())) == [0, 1, 2]
    calibration, _, description = export_data(f"folder:{root}", model, calibrate=False)
    assert calibration is None and description.endswith(": test split evaluates")


WEB_RED = (204, 51, 0)
"""A colour of Pillow's web palette: palette files hold it exactly."""


def _png16(path, channels, value, size=(16, 20)):
    """A 16-bit PNG (1 or 3 channels) filled with `value` (one number per channel), written by hand."""
    import struct
    import zlib

    height, width = size
    row = b"\x00" + np.tile(np.asarray(value, ">u2"), width).tobytes()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 0 if channels == 1 else 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(row * height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b""))


def _cut(path, fraction=0.5):
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * fraction)])


def _kinds(folder):
    """One class folder per kind of file: {kind: the RGB it must decode to, or None: unreadable}."""
    red, size = Image.new("RGB", (20, 16), WEB_RED), (20, 16)
    writers = {
        "rgb_png": (lambda path: red.save(path), WEB_RED),
        "rgb_jpeg": (lambda path: red.save(path, quality=95), WEB_RED),
        "cmyk_jpeg": (lambda path: red.convert("CMYK").save(path, quality=95), WEB_RED),
        "rgba_png": (lambda path: Image.new("RGBA", size, (*WEB_RED, 90)).save(path), WEB_RED),  # alpha dropped
        "grey_png": (lambda path: Image.new("L", size, 90).save(path), (90, 90, 90)),
        "grey_alpha_png": (lambda path: Image.new("LA", size, (90, 30)).save(path), (90, 90, 90)),
        "grey_jpeg": (lambda path: Image.new("L", size, 90).save(path), (90, 90, 90)),
        "grey16_png": (lambda path: _png16(path, 1, 40000), (156,) * 3),  # 40000 / 65535 * 255 = 155.6
        "rgb16_png": (lambda path: _png16(path, 3, (51400, 7710, 0)), (200, 30, 0)),
        "palette_png": (lambda path: red.convert("P").save(path), WEB_RED),
        "palette_gif": (lambda path: red.convert("P").save(path), WEB_RED),
        "animated_gif": (
            lambda path: red.save(path, save_all=True, append_images=[Image.new("RGB", size, (0, 0, 255))]),
            WEB_RED,  # the first frame
        ),
        "rgb_bmp": (lambda path: red.save(path), WEB_RED),
        "palette_bmp": (lambda path: red.convert("P").save(path), WEB_RED),  # TensorFlow alone reads grey indices
        "one_bit_bmp": (lambda path: Image.new("1", size, 1).save(path), (255, 255, 255)),
        "png_named_jpeg": (lambda path: red.save(path, format="PNG"), WEB_RED),
        "cut_jpeg": (lambda path: (red.save(path), _cut(path)), None),
        "cut_png": (lambda path: (red.save(path), _cut(path)), None),
        "cut_gif": (lambda path: (red.convert("P").save(path), _cut(path, 0.6)), None),
        "empty_png": (lambda path: path.write_bytes(b""), None),
        "text_png": (lambda path: path.write_text("not an image"), None),
    }
    extensions = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "bmp": ".bmp"}
    expected = {}
    for kind, (write, colour) in writers.items():
        path = folder / kind / f"image{extensions[kind.rsplit('_', 1)[1]]}"
        path.parent.mkdir(parents=True)
        write(path)
        expected[kind] = colour
    return expected


def test_every_kind_of_image_file_becomes_rgb_or_is_skipped_and_counted(tmp_path):
    expected = _kinds(tmp_path / "kinds")
    loaded = load_dataset(f"folder:{tmp_path / 'kinds'}", DataOptions("train", (32, 32, 3), batch_size=8))
    readable = {kind: colour for kind, colour in expected.items() if colour is not None}
    assert loaded.class_names == sorted(expected)  # every kind is a class (one file: all of it in train)
    assert loaded.num_examples == len(readable) and loaded.skipped == len(expected) - len(readable) == 5
    images, labels = _arrays(loaded.dataset)
    decoded = {loaded.class_names[label]: image * 127.5 + 127.5 for image, label in zip(images, labels, strict=True)}
    assert set(decoded) == set(readable)
    for kind, colour in readable.items():
        tolerance = 8 if "jpeg" in kind else 1  # JPEG moves a value by a few levels
        np.testing.assert_allclose(decoded[kind], np.broadcast_to(colour, (32, 32, 3)), atol=tolerance, err_msg=kind)
