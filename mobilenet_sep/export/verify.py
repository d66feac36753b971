"""What the ONNX and TFLite exports share: the output path check, atomic writes, verification, metadata.

Every exported file is checked against the Keras model before anyone gets it; the
figures of that check travel beside the file in a small JSON (`model.onnx.json`).
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from mobilenet_sep import zoo
from mobilenet_sep.export.formats import MAX_TOP1_DROP, MIN_AGREEMENT
from mobilenet_sep.profiler import profile
from mobilenet_sep.utils import checks
from mobilenet_sep.utils.files import write_atomically
from mobilenet_sep.utils.inputs import fixed_input_shape, random_images
from mobilenet_sep.utils.record import package_versions

RANDOM_INPUTS = 8
"""Random inputs, uniform in [-1, 1] (the preprocessed range), on which outputs are compared."""

FLOAT32_TOLERANCE = 1e-4
"""Largest relative error a float32 file may show against Keras. Separable nets land near 1e-6;
the standard-conv twin's long 3x3xC sums reach 1.2e-5 under another runtime's summation order,
while a wrong fold or layout is off by 1e-2 or more."""


class ExportError(ValueError):
    """An exported file failed its check and was not written; `verification` holds the figures it failed by."""

    def __init__(self, message: str, verification: "Verification | None" = None):
        super().__init__(message)
        self.verification = verification


@dataclasses.dataclass(frozen=True)
class AccuracyBounds:
    """What a quantized file must keep of the Keras model: its top-1 accuracy and its choices.

    `max_top1_drop`: points of top-1 accuracy the file may lose (None: no bound), judged where the
    evaluation data has labels. `min_agreement`: the least share of inputs on which the file picks
    the Keras model's class, always judged (on the evaluation data, else on the random inputs).
    """

    max_top1_drop: float | None = MAX_TOP1_DROP
    min_agreement: float = MIN_AGREEMENT

    def __post_init__(self):
        if self.max_top1_drop is not None:
            checks.number(self.max_top1_drop, "max_top1_drop", low=0)
        checks.number(self.min_agreement, "min_agreement", low=0, high=1)

    def problems(self, agreement: float, keras_top1: float | None, exported_top1: float | None, where: str) -> list:
        """The bounds the measured figures miss, each as a sentence with the figures."""
        problems = []
        if agreement < self.min_agreement:
            problems.append(
                f"top-1 agreement with Keras {100 * agreement:.2f} % on {where} is below the minimum "
                f"{100 * self.min_agreement:.2f} %"
            )
        if self.max_top1_drop is not None and keras_top1 is not None:
            drop = 100.0 * (keras_top1 - exported_top1)
            if drop > self.max_top1_drop:
                problems.append(
                    f"top-1 accuracy fell {drop:.2f} points ({100 * keras_top1:.2f} % -> {100 * exported_top1:.2f} %) "
                    f"on {where}, more than the {self.max_top1_drop:g} allowed"
                )
        return problems

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Verification:
    """How closely an exported file computes what the Keras model computes.

    `relative_error` is max |exported - keras| / max |keras| over `random_inputs`
    random inputs. `top1_agreement` is the share of inputs where both pick the same
    class: on the evaluation set when one was given, else on the random inputs.
    With labels, `keras_top1` and `exported_top1` are the accuracies and
    `top1_delta` the exported minus the Keras one, in points (percent).
    `accuracy_bounds` are the bounds the file was held to (quantized files), if any.
    """

    random_inputs: int
    relative_error: float
    tolerance: float | None
    top1_agreement: float
    evaluation_examples: int | None = None
    keras_top1: float | None = None
    exported_top1: float | None = None
    problems: tuple[str, ...] = ()
    accuracy_bounds: AccuracyBounds | None = None

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


def verify(run_exported, model, *, tolerance, evaluation=None, problems=(), bounds=None, seed=0):
    """Compare `run_exported(images) -> outputs` with the Keras model.

    The relative error is taken on random inputs; `evaluation` = (images, labels)
    (labels may be None) adds top-1 agreement and accuracies on real data.
    Checks that fail become `problems`: the tolerance, and `bounds` (AccuracyBounds)
    when given; `problems` passed in (e.g. from a graph check) are kept.
    """
    images = random_inputs(model, seed=seed)
    expected, actual = keras_outputs(model, images), in_batches(run_exported, images)
    error = relative_error(actual, expected)
    problems = list(problems)
    if tolerance is not None and not error <= tolerance:
        problems.append(f"relative error {error:.3g} exceeds the tolerance {tolerance:.3g}")
    fields = {"top1_agreement": _agreement(actual, expected)}
    where = f"{len(images)} random inputs"
    if evaluation is not None:
        eval_images, labels = evaluation
        eval_images = np.asarray(eval_images, "float32")
        expected, actual = keras_outputs(model, eval_images), in_batches(run_exported, eval_images)
        fields = {"top1_agreement": _agreement(actual, expected), "evaluation_examples": len(eval_images)}
        where = f"{len(eval_images)} test examples"
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            fields["keras_top1"] = float(np.mean(np.argmax(expected, -1) == labels))
            fields["exported_top1"] = float(np.mean(np.argmax(actual, -1) == labels))
    if bounds is not None:
        accuracies = fields.get("keras_top1"), fields.get("exported_top1")
        problems += bounds.problems(fields["top1_agreement"], *accuracies, where)
    return Verification(len(images), error, tolerance, problems=tuple(problems), accuracy_bounds=bounds, **fields)


def _agreement(actual, expected):
    return float(np.mean(np.argmax(actual, -1) == np.argmax(expected, -1)))


def describe_source(model, source):
    """Where the model came from: the zoo name and its config, or the `.keras` file and its SHA-256."""
    described = {"model": os.fspath(source) if source is not None else model.name}
    if source is not None and os.fspath(source) in zoo.catalogue():
        described["zoo_config"] = zoo.get_entry(os.fspath(source)).config
    elif source is not None and os.path.isfile(source):
        with open(source, "rb") as file:
            described["sha256"] = hashlib.sha256(file.read()).hexdigest()
    return described


def describe_model(model):
    """Name, shapes, multiply-adds and parameters (per example, as `mobilenet_sep.profile` counts) of the model."""
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
        kind = format if quantization == "none" else f"{format} {quantization}"
        raise ExportError(
            f"The {kind} export failed its check ({'; '.join(verification.problems)}); nothing was written "
            f"(force=True / --force writes it anyway). Received: out={os.fspath(path)!r}",
            verification,
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
        "tools": package_versions(),
    }
    metadata_path = f"{path}.json"
    text = json.dumps(metadata, indent=2) + "\n"
    write_atomically({path: content, metadata_path: text.encode()})
    return ExportResult(path, metadata_path, format, quantization, len(content), verification, metadata)
