"""Standard vs depthwise-separable convolution: the predicted saving beside the measured one, per runtime.

The prediction is the exact multiply-add count of each model (`profile`); for a
single layer also the paper's closed form, separable / standard = 1/N + 1/Dk^2.
The measurement times both models with the one harness (`measure`) on each
runtime in alternating rounds (separable, standard, separable, standard, ...),
with the same warm-up and repeats, and reports each median with its quartiles
and the speed-up as the median of the per-round ratios with its interval
(`stats.paired_ratio`): where the interval holds 1.0, there is no measurable
difference. The prediction and the measurement rarely agree: a runtime's
speed-up depends on how well its kernels use the hardware for each kind of
convolution, which is the point of showing both.
"""

import dataclasses
import re

import keras

from mobilenet_sep import zoo
from mobilenet_sep.layers import DepthwiseConv, PointwiseConv
from mobilenet_sep.profiler import Profile, profile
from mobilenet_sep.speed import measure, stats
from mobilenet_sep.speed.runtimes import COMPARE_RUNTIMES


_SPEC = re.compile(r"(?P<height>-?\d+)x(?P<width>-?\d+)x(?P<channels>-?\d+)")
_TAGGED = re.compile(r"(?P<tag>[ksn])(?P<first>-?\d+)(?:x(?P<second>-?\d+))?")


def _pair_text(pair):
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One convolution: input height x width x channels, kernel, stride, padding and output filters."""

    height: int
    width: int
    channels: int
    kernel: tuple
    stride: tuple
    padding: str
    filters: int

    @classmethod
    def parse(cls, text):
        """`12x12x3:k5:s1:valid:n256` (kernel and stride may be `k3x5`, `s2x1`; defaults k3, s1, same)."""
        parts = str(text).strip().lower().split(":")
        shape = _SPEC.fullmatch(parts[0])
        if not shape:
            raise ValueError(f"A layer spec starts with HxWxC, e.g. 12x12x3:k5:s1:valid:n256. Received: layer={text!r}")
        fields = {"k": (3, 3), "s": (1, 1), "padding": "same", "n": None}
        for part in parts[1:]:
            tagged = _TAGGED.fullmatch(part)
            if part in ("same", "valid"):
                fields["padding"] = part
            elif tagged:
                first = int(tagged["first"])
                value = (first, int(tagged["second"] or first))
                fields[tagged["tag"]] = value[0] if tagged["tag"] == "n" else value
            else:
                raise ValueError(
                    f"Unknown field {part!r} in the layer spec (kN, sN, same|valid, nN). Received: layer={text!r}"
                )
        if fields["n"] is None:
            raise ValueError(f"The layer spec needs the output filters, e.g. n256. Received: layer={text!r}")
        spec = cls(
            int(shape["height"]),
            int(shape["width"]),
            int(shape["channels"]),
            fields["k"],
            fields["s"],
            fields["padding"],
            fields["n"],
        )
        spec._check(text)
        return spec

    def _check(self, text):
        sizes = (self.height, self.width, self.channels, *self.kernel, *self.stride, self.filters)
        if min(sizes) <= 0:
            raise ValueError(f"Sizes, kernel, stride and filters must be positive. Received: layer={text!r}")
        if self.padding == "valid" and (self.kernel[0] > self.height or self.kernel[1] > self.width):
            raise ValueError(f"The kernel is larger than the valid-padded input. Received: layer={text!r}")

    def __str__(self):
        kernel, stride = _pair_text(self.kernel), _pair_text(self.stride)
        return f"{self.height}x{self.width}x{self.channels}:k{kernel}:s{stride}:{self.padding}:n{self.filters}"

    @property
    def closed_form(self):
        """The paper's separable / standard cost ratio, 1/N + 1/Dk^2 (Dk^2 = kernel area)."""
        return 1 / self.filters + 1 / (self.kernel[0] * self.kernel[1])

    def models(self):
        """(separable, standard) single-layer Keras models of this spec, without bias."""
        def single(name, *layers):
            inputs = outputs = keras.Input((self.height, self.width, self.channels), name="input")
            for layer in layers:
                outputs = layer(outputs)
            return keras.Model(inputs, outputs, name=name)

        options = {"strides": self.stride, "padding": self.padding, "use_bias": False}
        separable = single(
            "separable",
            DepthwiseConv(self.kernel, name="depthwise", **options),
            PointwiseConv(self.filters, use_bias=False, name="pointwise"),
        )
        standard = single("standard", keras.layers.Conv2D(self.filters, self.kernel, name="standard", **options))
        return separable, standard


@dataclasses.dataclass(frozen=True)
class RuntimeRatio:
    """One runtime's timings of both models, taken in alternating rounds at one batch size.

    `speedup` is standard / separable time: the median of the per-round ratios, with its interval.
    """

    runtime: str
    separable: measure.Timing
    standard: measure.Timing

    @property
    def speedup(self) -> stats.Ratio:
        return stats.paired_ratio(self.standard.seconds, self.separable.seconds)

    def milliseconds(self) -> tuple[stats.Spread, stats.Spread]:
        """(separable, standard) median time with its quartiles, in ms."""
        return tuple(stats.Spread.of(timing.seconds).scaled(1e3) for timing in (self.separable, self.standard))

    @property
    def note(self) -> str:
        """What qualifies either timing, each said once."""
        return "; ".join(dict.fromkeys(note for note in (self.separable.note, self.standard.note) if note))

    def to_dict(self) -> dict:
        separable_ms, standard_ms = self.milliseconds()
        return {
            "runtime": self.runtime,
            "description": measure.RUNTIMES[self.runtime],
            "batch_size": self.separable.batch_size,
            "threads": self.separable.threads,
            "warmup": self.separable.warmup,
            "rounds": len(self.separable.seconds),
            "separable_ms": separable_ms.to_dict(),
            "standard_ms": standard_ms.to_dict(),
            "measured_speedup": self.speedup.to_dict(),
            "note": self.note,
        }


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Predicted (exact counts) and measured (timings) cost of a separable model and its standard twin."""

    subject: str
    separable: Profile
    standard: Profile
    ratios: tuple
    closed_form: float | None = None

    @property
    def predicted_speedup(self):
        """Standard / separable multiply-adds."""
        return self.standard.mult_adds / self.separable.mult_adds

    def to_dict(self):
        return {
            "subject": self.subject,
            "separable": {
                "model": self.separable.model_name,
                "mult_adds": self.separable.mult_adds,
                "params": self.separable.params,
            },
            "standard": {
                "model": self.standard.model_name,
                "mult_adds": self.standard.mult_adds,
                "params": self.standard.params,
            },
            "predicted_speedup": self.predicted_speedup,
            "closed_form_cost_ratio": self.closed_form,
            "closed_form_speedup": None if self.closed_form is None else 1 / self.closed_form,
            "runtimes": [ratio.to_dict() for ratio in self.ratios],
        }


def compare_models(
    separable,
    standard,
    *,
    subject=None,
    closed_form=None,
    runtimes=COMPARE_RUNTIMES,
    batch_size=1,
    threads=None,
    warmup=3,
    repeats=30,
    budget_s=20.0,
    progress=None,
):
    """Profile both models and time them on each runtime, in alternating rounds (see `measure_interleaved`).

    `budget_s` bounds each runtime's rounds, both models together. Call
    `measure.set_tensorflow_threads(threads)` before building the models when the
    thread count matters: TensorFlow fixes its pools at its first op.
    """
    options = {"batch_size": batch_size, "threads": threads, "warmup": warmup, "repeats": repeats, "budget_s": budget_s}
    ratios = []
    for runtime in runtimes:
        timings = measure.measure_interleaved((separable, standard), runtime, progress=progress, **options)
        ratios.append(RuntimeRatio(runtime, *timings))
    return Comparison(subject or separable.name, profile(separable), profile(standard), tuple(ratios), closed_form)


def compare_layer(spec, **options):
    """`compare_models` for one layer spec (a LayerSpec or its text, e.g. "12x12x3:k5:s1:valid:n256")."""
    spec = spec if isinstance(spec, LayerSpec) else LayerSpec.parse(spec)
    separable, standard = spec.models()
    return compare_models(separable, standard, subject=str(spec), closed_form=spec.closed_form, **options)


def twin_pair(model, overrides=None):
    """(separable, standard): a MobileNetV1 and its fair twin (`zoo.pair`): same input, head, stride, every override.

    `model` is a zoo name (either member of a pair, built with `overrides`), a `.keras` file or a
    built model. `compare_with_twin` and the per-layer comparison both start here.
    """
    if isinstance(model, str) and model.endswith(".keras"):
        model = zoo.load_model(model, **(overrides or {}))  # overrides of a saved file are refused there
        overrides = None
    return zoo.pair(model, **(overrides or {}))


def compare_with_twin(model, overrides=None, **options):
    """`compare_models` for a MobileNetV1 and its fair twin (`twin_pair`); the separable member is the subject."""
    separable, standard = twin_pair(model, overrides)
    return compare_models(separable, standard, subject=separable.name, **options)
