"""Point-cloud data: the synthetic shapes, ModelNet40 HDF5 files the tests write, the pipeline."""

import h5py
import numpy as np
import pytest

from mobilenet_sep.data import DataOptions, load_dataset
from mobilenet_sep.data import pointclouds as pointcloud_data


def options(split="train", points=64, batch_size=8, training=False, **extra):
    return DataOptions(split, (points, 3), batch_size, training=training, **extra)


def batches(dataset):
    return [(points.numpy(), labels.numpy()) for points, labels in dataset]


def test_synthetic_shapes_are_seeded_labelled_and_in_the_unit_sphere():
    points, labels = pointcloud_data.synthetic_shapes("test", 50)
    again, _ = pointcloud_data.synthetic_shapes("test", 50)
    train, _ = pointcloud_data.synthetic_shapes("train", 50)
    np.testing.assert_array_equal(points, again)
    assert points.shape == (400, 50, 3) and points.dtype == np.float32 and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [40] * len(pointcloud_data.SHAPES)
    radii = np.linalg.norm(points, axis=2)
    assert radii.max() <= 1.0 + 5 * np.sqrt(3) * pointcloud_data.JITTER_SIGMA
    np.testing.assert_allclose(points.mean(axis=1), 0.0, atol=0.02)  # centred before the noise
    assert not np.isclose(train[:40], points[:40]).all()  # the splits come from different seeds


def test_synthetic_surfaces_have_their_shapes():
    rng = np.random.default_rng(0)
    sphere = pointcloud_data._SAMPLERS["sphere"](rng, 500)
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 1.0)
    cube = pointcloud_data._SAMPLERS["cube"](rng, 500)
    np.testing.assert_allclose(np.abs(cube).max(axis=1), 1.0)  # every point on a face
    assert np.bincount(np.argmax(np.abs(cube), axis=1), minlength=3).min() > 100  # on all three pairs of faces
    torus = pointcloud_data._SAMPLERS["torus"](rng, 500)
    distance_to_ring = np.hypot(np.hypot(torus[:, 0], torus[:, 2]) - 1.0, torus[:, 1])
    np.testing.assert_allclose(distance_to_ring, 0.35)
    disk = pointcloud_data._SAMPLERS["disk"](rng, 2000)
    assert np.all(disk[:, 1] == 0) and abs(np.mean(np.hypot(disk[:, 0], disk[:, 2]) < np.sqrt(0.5)) - 0.5) < 0.05


def test_shapes_loader_batches_for_evaluation():
    loaded = load_dataset("shapes", options("test", points=32, batch_size=64))
    assert loaded.num_classes == 10 and loaded.class_names == list(pointcloud_data.SHAPES)
    assert loaded.num_examples == 400
    parts = batches(loaded.dataset)
    assert [len(labels) for _, labels in parts] == [64] * 6 + [16]
    points = np.concatenate([points for points, _ in parts])
    expected, labels = pointcloud_data.synthetic_shapes("test", 32)
    np.testing.assert_array_equal(points, expected)  # evaluation: in order, not augmented
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in parts]), labels)


def test_training_epochs_are_full_seeded_shuffled_and_augmented():
    loaded = load_dataset("shapes:test", options(points=16, batch_size=64, training=True, seed=3))
    first, again = batches(loaded.epoch(1)), batches(loaded.epoch(1))
    other = batches(loaded.epoch(2))
    assert len(first) == 400 // 64 and all(len(labels) == 64 for _, labels in first)
    for (points, labels), (same_points, same_labels) in zip(first, again, strict=True):
        np.testing.assert_array_equal(points, same_points)
        np.testing.assert_array_equal(labels, same_labels)
    assert not np.array_equal(first[0][1], other[0][1])
    raw, raw_labels = pointcloud_data.synthetic_shapes("test", 16)
    points, labels = first[0]
    # Each augmented cloud is a raw cloud of its label rotated about the up axis (y) and jittered:
    # y moves by the jitter only, the distance from the axis by at most two jitters.
    for cloud, label in zip(points, labels, strict=True):
        candidates = raw[raw_labels == label]
        y_error = np.abs(candidates[:, :, 1] - cloud[:, 1]).max(axis=1)
        match = candidates[np.argmin(y_error)]
        assert y_error.min() <= pointcloud_data.JITTER_CLIP + 1e-6
        axis_distance = np.hypot(match[:, 0], match[:, 2]) - np.hypot(cloud[:, 0], cloud[:, 2])
        assert np.abs(axis_distance).max() <= 2 * pointcloud_data.JITTER_CLIP + 1e-6
    plain = load_dataset("shapes:test", options(points=16, batch_size=400, training=True, augment="none"))
    clouds, _ = batches(plain.epoch(0))[0]
    assert {cloud.tobytes() for cloud in clouds} == {cloud.tobytes() for cloud in raw}  # only shuffled


def write_modelnet(folder, rng, files=(("train", 3), ("train", 2), ("test", 4)), points=20, listing=True):
    """A small copy of modelnet40_ply_hdf5_2048: ply_data_{split}{k}.h5, {split}_files.txt, shape_names.txt."""
    folder.mkdir(exist_ok=True)
    written = {"train": [], "test": []}
    for index, (split, count) in enumerate(files):
        name = f"ply_data_{split}{index}.h5"
        data = rng.uniform(-1, 1, size=(count, points, 3)).astype("float32")
        label = rng.integers(0, 40, size=(count, 1)).astype("uint8")
        with h5py.File(folder / name, "w") as file:
            file["data"], file["label"] = data, label
        written[split].append((name, data, label[:, 0]))
    if listing:
        for split, entries in written.items():
            (folder / f"{split}_files.txt").write_text(
                "".join(f"data/modelnet40_ply_hdf5_2048/{n}\n" for n, _, _ in entries)
            )
    (folder / "shape_names.txt").write_text("".join(f"shape{k}\n" for k in range(40)))
    return written


@pytest.mark.parametrize("listing", [True, False])
def test_modelnet40_reads_the_official_layout(tmp_path, rng, listing):
    folder = tmp_path / "modelnet40_ply_hdf5_2048"
    written = write_modelnet(folder, rng, listing=listing)
    for split in ("train", "test"):
        loaded = load_dataset(f"modelnet40:{folder}", options(split, points=12, batch_size=100))
        assert loaded.num_classes == 40 and loaded.class_names[3] == "shape3"
        ((points, labels),) = batches(loaded.dataset)
        np.testing.assert_array_equal(points, np.concatenate([data[:, :12] for _, data, _ in written[split]]))
        np.testing.assert_array_equal(labels, np.concatenate([label for _, _, label in written[split]]))
    # Without an argument the folder comes from data_dir (or its modelnet40_ply_hdf5_2048 subfolder).
    loaded = load_dataset("modelnet40", options("test", points=20, batch_size=2, data_dir=str(tmp_path)))
    assert loaded.num_examples == 4
    training = load_dataset(f"modelnet40:{folder}", options("train", points=20, batch_size=2, training=True))
    assert len(batches(training.epoch(0))) == 2  # 5 clouds in full batches of 2


def test_modelnet40_refuses_bad_folders_and_files(tmp_path, rng):
    folder = tmp_path / "data"
    write_modelnet(folder, rng, points=20)
    with pytest.raises(ValueError, match=r"No such folder. Received: folder="):
        load_dataset(f"modelnet40:{tmp_path / 'missing'}", options())
    with pytest.raises(ValueError, match=r"hold 20 points per cloud. Received: input_shape=\(21, 3\)"):
        load_dataset(f"modelnet40:{folder}", options(points=21))
    with pytest.raises(ValueError, match=r"Received: augment='crop'"):
        load_dataset(f"modelnet40:{folder}", options(points=20, training=True, augment="crop", batch_size=2))
    (folder / "test_files.txt").write_text("ply_data_test9.h5\n")
    with pytest.raises(ValueError, match=r"missing .*ply_data_test9.h5.*Received: folder="):
        load_dataset(f"modelnet40:{folder}", options("test", points=20))
    (folder / "ply_data_train0.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(ValueError, match=r"Cannot read .*ply_data_train0.h5.*Received: folder="):
        load_dataset(f"modelnet40:{folder}", options(points=20))
    with h5py.File(folder / "ply_data_train0.h5", "w") as file:
        file["data"], file["label"] = np.zeros((2, 20, 2), "float32"), np.zeros((2, 1), "uint8")
    with pytest.raises(ValueError, match=r"Received: data.shape=\(2, 20, 2\)"):
        load_dataset(f"modelnet40:{folder}", options(points=20))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no train_files.txt and no \*train\*.h5 file"):
        load_dataset(f"modelnet40:{empty}", options())
    with pytest.raises(ValueError, match=r"needs a folder"):
        load_dataset("modelnet40", options())


def test_point_data_needs_a_point_input_shape():
    with pytest.raises(ValueError, match=r"Received: input_shape=\(32, 32, 3\)"):
        load_dataset("shapes", DataOptions("test", (32, 32, 3), 8))
    with pytest.raises(ValueError, match=r"Received: split='validation'"):
        load_dataset("shapes:validation", options())


def test_shipped_recipe_builds_its_model_and_loads_its_data():
    from mobilenet_sep import zoo
    from mobilenet_sep.train.recipe import load_recipe

    recipe = load_recipe("shapes_pointwise")
    overrides = {key: value for key, value in recipe["model"].items() if key != "name"}
    model = zoo.load_model(recipe["model"]["name"], **overrides)
    loaded = load_dataset(recipe["data"]["dataset"], DataOptions("test", model.input_shape[1:], 50))
    points, labels = next(iter(loaded.dataset))
    assert points.shape == (50, *model.input_shape[1:]) and model(points).shape == (50, 40)
    assert loaded.num_classes == 10  # the engine sets the model's classes from the data


SHORT_SHAPES_RUN = ["model.input_shape=[256, 3]", "train.epochs=6", "optimizer.learning_rate=0.003"]
"""The shipped recipe made cheap for CI: a quarter of its points, 6 of its 8 epochs, a higher learning rate."""


@pytest.mark.slow
def test_shapes_recipe_learns_the_held_out_shapes(tmp_path):
    from mobilenet_sep.train.engine import train
    from mobilenet_sep.train.recipe import load_recipe

    result = train(load_recipe("shapes_pointwise", overrides=SHORT_SHAPES_RUN), tmp_path)
    # 400 held-out clouds of 10 classes (chance: 10 %); this run measured 93.0 % (the full recipe: 99 %).
    assert result.metrics["test_examples"] == 400 and result.metrics["top1"] >= 0.90
