"""The runtimes the timing harness knows: light enough for the CLI to read at start-up."""

RUNTIMES = {
    "tf": "TensorFlow inference: the Keras model in a tf.function, no XLA",
    "tf-fused": "TensorFlow inference of the model with BatchNorm folded (mobilenet_sep.fuse), as tf",
    "tf-train": "TensorFlow training: one compiled Keras train step (SGD, MSE loss, no XLA) on a clone",
    "onnx": "ONNX Runtime, CPU execution provider, fp32",
    "litert": "LiteRT fp32 (XNNPACK)",
    "litert-int8": "LiteRT full int8 with float input/output (XNNPACK)",
}
"""The runtimes `measure_model` knows, with what each one times."""

COMPARE_RUNTIMES = ("tf", "tf-train", "onnx", "litert")
"""What `compare` times by default."""

PER_LAYER_RUNTIMES = ("tf", "onnx", "litert", "litert-int8")
"""What `compare --per-layer` times by default: the inference runtimes, each against its roofline."""


def check_runtimes(runtimes) -> tuple:
    """A non-empty sequence of known runtime names (or their comma-separated text), as a tuple."""
    received = runtimes
    if isinstance(runtimes, str):
        runtimes = [runtime.strip() for runtime in runtimes.split(",") if runtime.strip()]
    runtimes = tuple(runtimes)
    unknown = [runtime for runtime in runtimes if runtime not in RUNTIMES]
    if unknown or not runtimes:
        raise ValueError(
            f"`runtimes` must be a comma-separated list among {', '.join(RUNTIMES)}. Received: runtimes={received!r}"
        )
    return runtimes
