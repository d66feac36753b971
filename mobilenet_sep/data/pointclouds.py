"""Point-cloud datasets: ModelNet40 (the official HDF5 files) and an embedded set of synthetic shapes.

Both are loaders of `load_dataset` (specs `modelnet40:/path/to/modelnet40_ply_hdf5_2048` and
`shapes`) and give batches of (points float32 [batch, N, 3], int64 labels), N from the model's
input shape (batch, N, 3). Training sets are shuffled and augmented per epoch as PointNet and the
pointwise CNN authors do: a random rotation about the up axis (y) and Gaussian jitter (sigma 0.01,
clipped at 0.05), a pure function of (seed, epoch), see the loader contract in `data.registry`.

The synthetic set is generated, never downloaded: ten kinds of parametric surface (sphere, cube,
cylinder, cone, torus, square pyramid, octahedron, capsule, bowl, disk), points sampled uniformly
by area, each cloud with its own random anisotropic scale, rotation about the up axis, tilt and
noise, then centred and scaled into the unit sphere like ModelNet's clouds. The same seed always
gives the same clouds; train and test come from different seeds.
"""

import os

import numpy as np

from mobilenet_sep.data.pipeline import LoadedDataset, seeded_epochs
from mobilenet_sep.data.registry import register_loader
from mobilenet_sep.utils import checks

SHAPES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "octahedron", "capsule", "bowl", "disk")
SHAPES_PER_CLASS = {"train": 100, "test": 40}
SHAPES_SEEDS = {"train": 2018, "test": 7}
"""The synthetic set: clouds per class and generator seed of each split."""

JITTER_SIGMA, JITTER_CLIP = 0.01, 0.05
UP_AXIS = 1  # y, as in ModelNet's HDF5 files


# ---------------------------------------------------------------------------------------------
# The synthetic shapes: each sampler returns `count` points uniformly distributed over its surface.


def _triangles(rng, vertices, faces, count):
    """Uniform points on a triangle mesh: a face chosen by area, then uniform barycentric weights."""
    corners = np.asarray(vertices, np.float64)[np.asarray(faces)]
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    chosen = corners[rng.choice(len(faces), size=count, p=areas / areas.sum())]
    root, weight = np.sqrt(rng.random((count, 1))), rng.random((count, 1))
    return (1 - root) * chosen[:, 0] + root * (1 - weight) * chosen[:, 1] + root * weight * chosen[:, 2]


def _parts(rng, count, parts):
    """Points spread over several surfaces in proportion to their areas: parts are (area, sampler)."""
    areas = np.array([area for area, _ in parts])
    counts = rng.multinomial(count, areas / areas.sum())
    points = np.concatenate([sampler(rng, part_count) for (_, sampler), part_count in zip(parts, counts, strict=True)])
    return points[rng.permutation(count)]


def _sphere_points(rng, count, radius=1.0, lower_half=False):
    points = rng.normal(size=(count, 3))
    points *= radius / np.linalg.norm(points, axis=1, keepdims=True)
    if lower_half:
        points[:, UP_AXIS] = -np.abs(points[:, UP_AXIS])
    return points


def _disk_points(rng, count, radius=1.0, height=0.0):
    """A flat disk perpendicular to the up axis: radius ~ sqrt(uniform) makes it uniform by area."""
    radii, angles = radius * np.sqrt(rng.random(count)), rng.uniform(0, 2 * np.pi, count)
    return _from_cylindrical(radii, angles, np.full(count, height))


def _from_cylindrical(radii, angles, heights):
    """(radius, angle, height along the up axis) -> x, y, z with y up."""
    return np.stack([radii * np.cos(angles), heights, radii * np.sin(angles)], axis=1)


def _tube_points(rng, count, radius, bottom, top):
    angles, heights = rng.uniform(0, 2 * np.pi, count), rng.uniform(bottom, top, count)
    return _from_cylindrical(np.full(count, radius), angles, heights)


def _cone_side_points(rng, count):
    """The side of a cone of radius 1 and height 2 (apex at y = 1): area grows with the radius."""
    fraction = np.sqrt(rng.random(count))
    return _from_cylindrical(fraction, rng.uniform(0, 2 * np.pi, count), 1.0 - 2.0 * fraction)


def _capsule_cap_points(rng, count):
    """The two half-spheres (radius 0.5) closing a capsule whose tube runs from y = -1 to 1."""
    points = _sphere_points(rng, count, 0.5)
    points[:, UP_AXIS] += np.where(points[:, UP_AXIS] >= 0, 1.0, -1.0)
    return points


def _torus_points(rng, count, major=1.0, minor=0.35):
    """Uniform on the torus: the tube angle is drawn with density proportional to the local radius."""
    tube = np.empty(0)
    while tube.size < count:
        proposal = rng.uniform(0, 2 * np.pi, 2 * count)
        keep = rng.random(2 * count) * (major + minor) <= major + minor * np.cos(proposal)
        tube = np.concatenate([tube, proposal[keep]])
    tube = tube[:count]
    radii = major + minor * np.cos(tube)
    return _from_cylindrical(radii, rng.uniform(0, 2 * np.pi, count), minor * np.sin(tube))


_CUBE_VERTICES = [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
_CUBE_FACES = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1)]
_CUBE_FACES += [(2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
_PYRAMID_VERTICES = [(-1, -1, -1), (1, -1, -1), (1, -1, 1), (-1, -1, 1), (0, 1, 0)]
_PYRAMID_FACES = [(0, 1, 2), (0, 2, 3), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)]
_OCTAHEDRON_VERTICES = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
_OCTAHEDRON_FACES = [(a, b, c) for a in (0, 1) for b in (2, 3) for c in (4, 5)]

_SAMPLERS = {
    "sphere": lambda rng, count: _sphere_points(rng, count),
    "cube": lambda rng, count: _triangles(rng, _CUBE_VERTICES, _CUBE_FACES, count),
    "cylinder": lambda rng, count: _parts(
        rng,
        count,
        [
            (4 * np.pi * 0.7, lambda r, c: _tube_points(r, c, 0.7, -1.0, 1.0)),
            (np.pi * 0.49, lambda r, c: _disk_points(r, c, 0.7, -1.0)),
            (np.pi * 0.49, lambda r, c: _disk_points(r, c, 0.7, 1.0)),
        ],
    ),
    "cone": lambda rng, count: _parts(
        rng, count, [(np.pi * np.sqrt(5), _cone_side_points), (np.pi, lambda r, c: _disk_points(r, c, 1.0, -1.0))]
    ),
    "torus": lambda rng, count: _torus_points(rng, count),
    "pyramid": lambda rng, count: _triangles(rng, _PYRAMID_VERTICES, _PYRAMID_FACES, count),
    "octahedron": lambda rng, count: _triangles(rng, _OCTAHEDRON_VERTICES, _OCTAHEDRON_FACES, count),
    "capsule": lambda rng, count: _parts(
        rng,
        count,
        [
            (2 * np.pi * 0.5 * 2.0, lambda r, c: _tube_points(r, c, 0.5, -1.0, 1.0)),
            (4 * np.pi * 0.25, _capsule_cap_points),
        ],
    ),
    "bowl": lambda rng, count: _sphere_points(rng, count, lower_half=True),
    "disk": lambda rng, count: _disk_points(rng, count),
}


def _rotation(angle, axis):
    cosine, sine = np.cos(angle), np.sin(angle)
    first, second = [a for a in range(3) if a != axis]
    matrix = np.eye(3)
    matrix[first, first] = matrix[second, second] = cosine
    matrix[first, second], matrix[second, first] = -sine, sine
    return matrix


def normalize(points):
    """Centre a cloud on its centroid and scale it so the farthest point is at distance 1."""
    points = points - points.mean(axis=0)
    return points / max(float(np.linalg.norm(points, axis=1).max()), 1e-12)


def synthetic_cloud(rng, shape, num_points):
    """One cloud of `shape`: anisotropic scale 0.75-1.25, tilt up to 15 degrees, any rotation about
    the up axis, normalized into the unit sphere, then noise of sigma 0.01."""
    points = _SAMPLERS[shape](rng, num_points) * rng.uniform(0.75, 1.25, 3)
    tilt = _rotation(rng.uniform(-np.pi / 12, np.pi / 12), 0) @ _rotation(rng.uniform(-np.pi / 12, np.pi / 12), 2)
    points = points @ (tilt @ _rotation(rng.uniform(0, 2 * np.pi), UP_AXIS)).T
    return normalize(points) + rng.normal(0.0, JITTER_SIGMA, points.shape)


def synthetic_shapes(split, num_points):
    """(points float32 [clouds, num_points, 3], int64 labels) of the synthetic set's split."""
    if split not in SHAPES_PER_CLASS:
        raise ValueError(f"The shapes set has the splits 'train' and 'test'. Received: split={split!r}")
    rng = np.random.default_rng(SHAPES_SEEDS[split])
    clouds, labels = [], []
    for label, shape in enumerate(SHAPES):
        for _ in range(SHAPES_PER_CLASS[split]):
            clouds.append(synthetic_cloud(rng, shape, num_points))
            labels.append(label)
    return np.asarray(clouds, np.float32), np.asarray(labels, np.int64)


# ---------------------------------------------------------------------------------------------
# Loaders and the one point-cloud pipeline.


def num_points(options):
    """N from a point model's input shape (N, 3)."""
    shape = tuple(options.input_shape)
    if len(shape) != 2 or shape[1] != 3 or not checks.is_int(shape[0]) or shape[0] < 1:
        raise ValueError(f"Point-cloud data needs input_shape (points, 3). Received: input_shape={shape}")
    return shape[0]


def augment(points, seed):
    """Random rotation about the up axis and clipped Gaussian jitter of one cloud [N, 3] (TensorFlow)."""
    import tensorflow as tf

    angle_seed, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    angle = tf.random.stateless_uniform([], angle_seed, 0.0, 2.0 * np.pi)
    cosine, sine = tf.cos(angle), tf.sin(angle)
    zero, one = tf.zeros_like(angle), tf.ones_like(angle)
    rotation = tf.reshape(tf.stack([cosine, zero, sine, zero, one, zero, -sine, zero, cosine]), [3, 3])
    jitter = tf.random.stateless_normal(tf.shape(points), jitter_seed, stddev=JITTER_SIGMA)
    return tf.matmul(points, rotation) + tf.clip_by_value(jitter, -JITTER_CLIP, JITTER_CLIP)


def point_pipeline(points, labels, options, class_names):
    """Arrays of clouds and labels -> LoadedDataset of batches, shuffled and augmented per epoch for training."""
    import tensorflow as tf

    if options.augment not in ("default", "none"):
        raise ValueError(f'Point clouds are augmented "default" or "none". Received: augment={options.augment!r}')
    examples = tf.data.Dataset.from_tensor_slices((points, labels))
    count = len(labels)
    if not options.training:
        dataset = examples.batch(options.batch_size).prefetch(tf.data.AUTOTUNE)
        return LoadedDataset(dataset, len(class_names), list(class_names), count)

    def prepare(example, seed):
        cloud, label = example
        return (augment(cloud, seed) if options.augment == "default" else cloud), label

    for_epoch = seeded_epochs(examples, count, options, prepare)
    return LoadedDataset(for_epoch(0), len(class_names), list(class_names), count, for_epoch=for_epoch)


@register_loader("shapes")
def load_shapes(argument, options):
    """The embedded synthetic set (`shapes`, or `shapes:train` / `shapes:test` to pick the split)."""
    points, labels = synthetic_shapes(argument or options.split, num_points(options))
    return point_pipeline(points, labels, options, SHAPES)


def _split_files(folder, split):
    """The split's HDF5 files: as `{split}_files.txt` lists them (by file name), else `*{split}*.h5`."""
    listing = os.path.join(folder, f"{split}_files.txt")
    if os.path.isfile(listing):
        with open(listing) as file:
            names = [os.path.basename(line.strip()) for line in file if line.strip()]
    else:
        names = sorted(name for name in os.listdir(folder) if name.endswith(".h5") and split in name)
    paths = [os.path.join(folder, name) for name in names]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing or not paths:
        what = f"missing {missing[0]}" if missing else f"no {split}_files.txt and no *{split}*.h5 file"
        raise ValueError(f"Not a ModelNet40 HDF5 folder ({what}). Received: folder={folder!r}")
    return paths


def read_modelnet40(folder, split):
    """(points float32 [M, P, 3], int64 labels [M], class names) from the official HDF5 files."""
    import h5py

    if split not in ("train", "test"):
        raise ValueError(f"ModelNet40 has the splits 'train' and 'test'. Received: split={split!r}")
    clouds, labels = [], []
    for path in _split_files(folder, split):
        try:
            with h5py.File(path, "r") as file:
                data, label = np.asarray(file["data"], np.float32), np.asarray(file["label"]).reshape(-1)
        except (OSError, KeyError) as error:
            raise ValueError(f"Cannot read {path} ({error}). Received: folder={folder!r}") from None
        if data.ndim != 3 or data.shape[2] != 3 or len(label) != len(data):
            raise ValueError(
                f"{path} must hold `data` [clouds, points, 3] and one `label` per cloud. "
                f"Received: data.shape={data.shape}, label.shape={(len(label),)}"
            )
        broken = np.flatnonzero(~np.isfinite(data).all(axis=(1, 2)))
        if broken.size:
            raise ValueError(
                f"{path} holds {broken.size} cloud(s) with NaN or infinite coordinates, the first at index "
                f"{broken[0]}. Received: data[{broken[0]}] with {int((~np.isfinite(data[broken[0]])).sum())} bad values"
            )
        clouds.append(data)
        labels.append(label.astype(np.int64))
    points, labels = np.concatenate(clouds), np.concatenate(labels)
    names_path = os.path.join(folder, "shape_names.txt")
    if os.path.isfile(names_path):
        with open(names_path) as file:
            names = [line.strip() for line in file if line.strip()]
    else:
        names = [f"class_{index}" for index in range(40)]
    if labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(f"Labels must be in [0, {len(names)}). Received: labels from {labels.min()} to {labels.max()}")
    return points, labels, names


@register_loader("modelnet40")
def load_modelnet40(argument, options):
    """ModelNet40 from a local folder of the official files (modelnet40_ply_hdf5_2048): the spec's
    argument, else `options.data_dir` (or its `modelnet40_ply_hdf5_2048` subfolder). The first N of
    each cloud's 2,048 points are used, as PointNet does."""
    folder = argument or options.data_dir
    if not folder:
        raise ValueError(
            "ModelNet40 needs a folder: modelnet40:/path/to/modelnet40_ply_hdf5_2048. Received: folder=None"
        )
    nested = os.path.join(folder, "modelnet40_ply_hdf5_2048")
    folder = nested if not argument and os.path.isdir(nested) else folder
    if not os.path.isdir(folder):
        raise ValueError(f"No such folder. Received: folder={folder!r}")
    points, labels, names = read_modelnet40(folder, options.split)
    count = num_points(options)
    if count > points.shape[1]:
        raise ValueError(
            f"The files hold {points.shape[1]} points per cloud. Received: input_shape={options.input_shape}"
        )
    return point_pipeline(points[:, :count], labels, options, names)
