"""What the ONNX and TFLite exports share: the output path check, atomic writes, verification, metadata.

Every exported file is checked against the Keras model before anyone gets it; the
figures of that check travel beside the file in a small JSON (`model.onnx.json`).
"""

import dataclasses
import hashlib
import importlib.metadata
import json
import os

import numpy as np

from mobilenet_sep.files import write_atomically

RANDOM_INPUTS = 8
"""Random inputs, uniform in [-1, 1] (the preprocessed range), on which outputs are compared."""

TOOLS = ("mobilenet-sep", "tensorflow", "keras", "numpy", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")


class ExportError(ValueError):
    """An exported file failed its check and was not written."""


@dataclasses.dataclass(frozen=True)
class Verification:
    """How closely an exported file computes what the Keras model computes.

    `relative_error` is max |exported - keras| / max |keras| over `random_inputs`
    random inputs. `top1_agreement` is the share of inputs where both pick the same
    class: on the evaluation set when one was given, else on the random inputs.
    With labels, `keras_top1` and `exported_top1` are the accuracies and
    `top1_delta` the exported minus the Keras one, in points (percent).
    """

    random_inputs: int
    relative_error: float
    tolerance: float | None
    top1_agreement: float
    evaluation_examples: int | None = None
    keras_top1: float | None = None
    exported_top1: float | None = None
    problems: tuple[str, ...] = ()

    @property
    def top1_delta(self):
        if self.keras_top1 is None:
            return None
        return 100.0 * (self.exported_top1 - self.keras_top1)

    @property
    def passed(self):
        return not self.problems

    def to_dict(self):
        fields = dataclasses.asdict(self)
        return {**fields, "problems": list(self.problems), "top1_delta": self.top1_delta, "passed": self.passed}


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the file, its metadata JSON, and the verification figures."""

    path: str
    metadata_path: str
    format: str
    quantization: str
    file_bytes: int
    verification: Verification
    metadata: dict


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|, in float64."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-30))


def fixed_input_shape(model):
    """(height, width, channels) of a model with one fully known input (batch aside), else ValueError."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or None in shape[1:]:
        raise ValueError(
            "Export and timing need a model with one input of fixed size (height, width, channels); "
            f"rebuild it with input_shape=(H, W, 3). Received: input_shape={shape}"
        )
    return shape[1:]


def random_images(count, shape, seed=0):
    """`count` seeded float32 inputs of `shape`, uniform in [-1, 1] (the preprocessed range)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, *shape)).astype("float32")


def random_inputs(model, count=RANDOM_INPUTS, seed=0):
    """`count` random inputs of the model's shape (see `random_images`)."""
    return random_images(count, fixed_input_shape(model), seed)


def in_batches(function, images, batch_size=32):
    """`function` applied batch by batch, outputs concatenated: bounded memory on large evaluation sets."""
    return np.concatenate(
        [np.asarray(function(images[start : start + batch_size])) for start in range(0, len(images), batch_size)]
    )


def keras_outputs(model, images):
    """The Keras model's outputs in inference mode."""
    return in_batches(lambda batch: model(batch, training=False), images)


def verify(run_exported, model, *, tolerance, evaluation=None, problems=(), seed=0):
    """Compare `run_exported(images) -> outputs` with the Keras model.

    The relative error is taken on random inputs; `evaluation` = (images, labels)
    (labels may be None) adds top-1 agreement and accuracies on real data.
    Checks that fail become `problems`; `problems` passed in (e.g. from a graph
    check) are kept.
    """
    images = random_inputs(model, seed=seed)
    expected, actual = keras_outputs(model, images), in_batches(run_exported, images)
    error = relative_error(actual, expected)
    problems = list(problems)
    if tolerance is not None and not error <= tolerance:
        problems.append(f"relative error {error:.3g} exceeds the tolerance {tolerance:.3g}")
    fields = {"top1_agreement": _agreement(actual, expected)}
    if evaluation is not None:
        eval_images, labels = evaluation
        eval_images = np.asarray(eval_images, "float32")
        expected, actual = keras_outputs(model, eval_images), in_batches(run_exported, eval_images)
        fields = {"top1_agreement": _agreement(actual, expected), "evaluation_examples": len(eval_images)}
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            fields["keras_top1"] = float(np.mean(np.argmax(expected, -1) == labels))
            fields["exported_top1"] = float(np.mean(np.argmax(actual, -1) == labels))
    return Verification(len(images), error, tolerance, problems=tuple(problems), **fields)


def _agreement(actual, expected):
    return float(np.mean(np.argmax(actual, -1) == np.argmax(expected, -1)))


def tool_versions():
    """Versions of the packages that made and checked the file."""
    versions = {}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_source(model, source):
    """Where the model came from: the zoo name and its config, or the `.keras` file and its SHA-256."""
    from mobilenet_sep import zoo

    described = {"model": os.fspath(source) if source is not None else model.name}
    if source is not None and os.fspath(source) in zoo.catalogue():
        described["zoo_config"] = zoo.get_entry(os.fspath(source)).config
    elif source is not None and os.path.isfile(source):
        with open(source, "rb") as file:
            described["sha256"] = hashlib.sha256(file.read()).hexdigest()
    return described


def describe_model(model):
    """Name, shapes, multiply-adds and parameters (per example, as `mobilenet_sep.profile` counts) of the model."""
    from mobilenet_sep.profiler import profile

    counts = profile(model)
    return {
        "name": model.name,
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
        "mult_adds": counts.mult_adds,
        "parameters": counts.params,
    }


def finish_export(model, path, content, *, format, quantization, verification, force, source, details):
    """Refuse a failed file unless forced, else write it and its metadata JSON atomically."""
    if not verification.passed and not force:
        raise ExportError(
            f"The {format} export failed its check ({'; '.join(verification.problems)}); nothing was written "
            f"(force=True / --force writes it anyway). Received: out={os.fspath(path)!r}"
        )
    metadata = {
        "file": os.path.basename(path),
        "format": format,
        "quantization": quantization,
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "source": describe_source(model, source),
        "model": describe_model(model),
        **details,
        "verification": verification.to_dict(),
        "tools": tool_versions(),
    }
    metadata_path = f"{path}.json"
    text = json.dumps(metadata, indent=2) + "\n"
    write_atomically({path: content, metadata_path: text.encode()})
    return ExportResult(path, metadata_path, format, quantization, len(content), verification, metadata)
