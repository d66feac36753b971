"""Standard vs depthwise-separable convolution: the predicted saving beside the measured one, per runtime.

The prediction is the exact multiply-add count of each model (`profile`); for a
single layer also the paper's closed form, separable / standard = 1/N + 1/Dk^2.
The measurement times both models with the one harness (`measure`) on each
runtime, one after the other, and divides the medians. The two rarely agree:
a runtime's speed-up depends on how well its kernels use the hardware for each
kind of convolution, which is the point of showing both.
"""

import dataclasses
import re

from mobilenet_sep import measure
from mobilenet_sep.files import save_figure

DEFAULT_RUNTIMES = ("tf", "tf-train", "onnx", "litert")

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
        import keras

        from mobilenet_sep.layers import DepthwiseConv, PointwiseConv

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


def twin_names(name):
    """(separable, standard-conv twin) zoo names for either member of the pair."""
    from mobilenet_sep import zoo

    zoo.get_entry(name)  # an unknown name raises with suggestions
    separable = name.removeprefix("conv_")
    standard = f"conv_{separable}"
    if not {separable, standard} <= set(zoo.list_models()):
        raise ValueError(f"Only the zoo's MobileNets have a standard-conv twin. Received: name={name!r}")
    return separable, standard


@dataclasses.dataclass(frozen=True)
class RuntimeRatio:
    """One runtime's timings of both models at one batch size; `speedup` = standard / separable median time."""

    runtime: str
    separable: measure.Timing
    standard: measure.Timing

    @property
    def speedup(self):
        return self.standard.median_s / self.separable.median_s

    def to_dict(self):
        return {
            "runtime": self.runtime,
            "description": measure.RUNTIMES[self.runtime],
            "batch_size": self.separable.batch_size,
            "threads": self.separable.threads,
            "separable_ms": 1e3 * self.separable.median_s,
            "standard_ms": 1e3 * self.standard.median_s,
            "measured_speedup": self.speedup,
            "repeats": [len(self.separable.seconds), len(self.standard.seconds)],
            "note": "; ".join(dict.fromkeys(note for note in (self.separable.note, self.standard.note) if note)),
        }


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Predicted (exact counts) and measured (timings) cost of a separable model and its standard twin."""

    subject: str
    separable: object  # Profile
    standard: object  # Profile
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

    def table(self):
        """A rich renderable: one row per runtime, the prediction beside each measurement."""
        from rich.table import Table

        title = (
            f"{self.subject}: standard {self.standard.mult_adds:,} vs separable {self.separable.mult_adds:,} "
            f"mult-adds, predicted speed-up {self.predicted_speedup:.2f}x"
        )
        if self.closed_form is not None:
            title += f" (closed form 1/N + 1/Dk^2 = {self.closed_form:.5f} -> {1 / self.closed_form:.2f}x)"
        table = Table(title=title)
        columns = ("runtime", "batch", "threads", "separable ms", "standard ms", "predicted", "measured", "note")
        for column in columns:
            table.add_column(column, justify="left" if column in ("runtime", "note") else "right")
        for ratio in self.ratios:
            row = ratio.to_dict()
            table.add_row(
                ratio.runtime,
                str(row["batch_size"]),
                str(row["threads"]),
                f"{row['separable_ms']:.2f}",
                f"{row['standard_ms']:.2f}",
                f"{self.predicted_speedup:.2f}x",
                f"{ratio.speedup:.2f}x",
                row["note"],
            )
        return table

    def plot(self, path):
        """A PNG bar chart: predicted vs measured speed-up per runtime, written atomically."""
        from matplotlib.figure import Figure

        labels = [f"{ratio.runtime}\n(batch {ratio.separable.batch_size})" for ratio in self.ratios]
        positions = range(len(labels))
        figure = Figure(figsize=(max(6.0, 1.6 * len(labels)), 4.5), layout="constrained")
        axes = figure.subplots()
        width = 0.38
        axes.bar(
            [p - width / 2 for p in positions],
            [self.predicted_speedup] * len(labels),
            width,
            label="predicted (mult-adds)",
            color="#1f77b4",
        )
        measured = axes.bar(
            [p + width / 2 for p in positions],
            [ratio.speedup for ratio in self.ratios],
            width,
            label="measured (median time)",
            color="#ff7f0e",
        )
        axes.bar_label(measured, fmt="%.2fx", fontsize=8)
        axes.set_xticks(list(positions), labels)
        axes.set_ylabel("standard / separable")
        axes.set_title(f"{self.subject}: what separable convolution saves")
        axes.legend()
        return save_figure(figure, path)


def compare_models(
    separable,
    standard,
    *,
    subject=None,
    closed_form=None,
    runtimes=DEFAULT_RUNTIMES,
    batch_size=1,
    threads=None,
    repeats=30,
    budget_s=10.0,
    progress=None,
):
    """Profile both models and time them on each runtime, separable then standard, runtime by runtime.

    Call `measure.set_tensorflow_threads(threads)` before building the models when
    the thread count matters: TensorFlow fixes its pools at its first op.
    """
    from mobilenet_sep.profiler import profile  # imported here: the CLI reads this module's defaults before TensorFlow

    options = {
        "batch_sizes": (batch_size,),
        "threads": threads,
        "repeats": repeats,
        "budget_s": budget_s,
        "progress": progress,
    }
    ratios = []
    for runtime in runtimes:
        (separable_timing,) = measure.measure_model(separable, (runtime,), **options)
        (standard_timing,) = measure.measure_model(standard, (runtime,), **options)
        ratios.append(RuntimeRatio(runtime, separable_timing, standard_timing))
    return Comparison(subject or separable.name, profile(separable), profile(standard), tuple(ratios), closed_form)


def compare_layer(spec, **options):
    """`compare_models` for one layer spec (a LayerSpec or its text, e.g. "12x12x3:k5:s1:valid:n256")."""
    spec = spec if isinstance(spec, LayerSpec) else LayerSpec.parse(spec)
    separable, standard = spec.models()
    return compare_models(separable, standard, subject=str(spec), closed_form=spec.closed_form, **options)


def compare_zoo_model(name, overrides=None, **options):
    """`compare_models` for a zoo MobileNet and its standard-conv twin, with the same overrides."""
    from mobilenet_sep import zoo

    separable_name, standard_name = twin_names(name)
    overrides = overrides or {}
    separable = zoo.create_model(separable_name, **overrides)
    standard = zoo.create_model(standard_name, **overrides)
    return compare_models(separable, standard, subject=separable.name, **options)
