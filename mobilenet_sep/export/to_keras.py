"""`.keras` export, BatchNorm folded (`fuse`) or not: saved, loaded back as users load it, checked against the model."""

import collections
import os
import tempfile

import keras

from mobilenet_sep import zoo
from mobilenet_sep.export.fuse import fuse as fuse_model
from mobilenet_sep.export.verify import FLOAT32_TOLERANCE, finish_export, verify
from mobilenet_sep.utils.files import check_output_path


def layer_counts(model) -> dict:
    """{layer class: count} of the model's layers, inputs aside: the `.keras` file's "op list"."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return dict(collections.Counter(type(layer).__name__ for layer in layers))


def export_keras(
    model,
    path,
    *,
    fuse=False,
    tolerance=FLOAT32_TOLERANCE,
    evaluation=None,
    force=False,
    source=None,
    data_description=None,
):
    """Save `model` (with `fuse`, `fuse(model)`: inference only) as a `.keras` file at `path`, plus `path.json`.

    The file is loaded back with safe_mode, as `load_model` does, and its outputs are
    compared with the original model's in inference; a file further than `tolerance`
    (relative) is not written unless `force`. Returns an `ExportResult`.
    """
    path = check_output_path(path)
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"A Keras model file ends in .keras. Received: out={os.fspath(path)!r}")
    exported = fuse_model(model) if fuse else model
    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, os.path.basename(path))
        exported.save(saved)
        loaded = zoo.load_model(saved)
        with open(saved, "rb") as file:
            content = file.read()
    verification = verify(
        lambda images: loaded(images, training=False), model, tolerance=tolerance, evaluation=evaluation
    )
    details = {
        "fused": fuse,
        "fusion": getattr(loaded, "fusion", None),
        "evaluation_data": data_description if evaluation is not None else None,
        "graph": {"ops": layer_counts(loaded)},
    }
    return finish_export(
        model,
        os.fspath(path),
        content,
        format="keras",
        quantization="none",
        verification=verification,
        force=force,
        source=source,
        details=details,
    )
