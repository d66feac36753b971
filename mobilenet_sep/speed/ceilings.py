"""This machine's ceilings, measured per runtime in the same run: peak arithmetic rate and memory bandwidth.

Each ceiling is the best of a few large ops timed the way the layers are (`layer_timing`: the same
per-op method, threads, warm-up and rounds), so a layer's achieved rate and its ceiling are
figures of one kind. A runtime's kernels reach very different rates on different shapes and ops
(one 1x1 convolution may run at a tenth of another's rate; LiteRT's int8 ReLU is not delegated to
XNNPACK and streams far slower than its int8 add), and a ceiling is what the runtime can reach,
so each is the fastest of its ops:

- compute, in GFLOP/s counting a mult-add as 2 (GOP/s for int8): 1x1 convolutions 28x28x1024 ->
  1024 and 14x14x1024 -> 512, and a 3x3 convolution 56x56x64 -> 64; every one is tens of FLOP
  per byte of minimum traffic, right of any ridge;
- memory, in GB/s of input plus output: a 1x1 depthwise convolution and an add of a tensor to
  itself over 4 Mi elements (16 MiB each way in float32, beyond a core's L2 cache and as much as
  the largest layers move; 4 MiB in int8, whose layers move a quarter of the bytes too).

An op whose time is not above zero (a short run on a busy machine) is left out of its ceiling;
a runtime on which no op of a ceiling could be timed is an error.
"""

import keras

from mobilenet_sep.speed import stats
from mobilenet_sep.speed.layer_timing import time_layers
from mobilenet_sep.speed.roofline import Ceilings, element_bytes

COMPUTE_OPS = ("peak_wide", "peak_3x3", "peak_1x1")
MEMORY_OPS = ("stream_depthwise", "stream_add")
MEMORY_ELEMENTS = 4 * 2**20
"""Elements each memory-bound op reads (and writes)."""


def ceiling_models() -> tuple[keras.Model, ...]:
    """The ceiling ops, each a model of its own (`COMPUTE_OPS`, then `MEMORY_OPS`).

    One op a model: a layer's time on ONNX Runtime and LiteRT is what it adds to the cut before it
    (`layer_timing`), and a runtime that fuses one op into the next (ONNX Runtime folds an add into
    the convolution before it) would make a second op's added time no measure of its own rate.
    """
    streamed = (MEMORY_ELEMENTS // (256 * 64), 256, 64)
    layers = {
        COMPUTE_OPS[0]: (
            (28, 28, 1024),
            lambda x: keras.layers.Conv2D(1024, 1, use_bias=False, name=COMPUTE_OPS[0])(x),
        ),
        COMPUTE_OPS[1]: (
            (56, 56, 64),
            lambda x: keras.layers.Conv2D(64, 3, padding="same", use_bias=False, name=COMPUTE_OPS[1])(x),
        ),
        COMPUTE_OPS[2]: ((14, 14, 1024), lambda x: keras.layers.Conv2D(512, 1, use_bias=False, name=COMPUTE_OPS[2])(x)),
        MEMORY_OPS[0]: (streamed, lambda x: keras.layers.DepthwiseConv2D(1, use_bias=False, name=MEMORY_OPS[0])(x)),
        MEMORY_OPS[1]: (streamed, lambda x: keras.layers.Add(name=MEMORY_OPS[1])([x, x])),
    }
    models = []
    for name, (shape, layer) in layers.items():
        inputs = keras.Input(shape, name="input")
        models.append(keras.Model(inputs, layer(inputs), name=f"ceiling_{name}"))
    return tuple(models)


def _describe(rates, rows, unit):
    return ", ".join(
        f"{name} {stats.Spread.of(rates[name]).median:.1f} {unit} ({rows[name].ops_text})" for name in rates
    )


def measure_ceilings(runtime: str, *, threads=None, warmup=3, repeats=30, budget_s=10.0, progress=None) -> Ceilings:
    """`runtime`'s measured ceilings on this machine (see the module docstring)."""
    options = {"threads": threads, "warmup": warmup, "repeats": repeats, "budget_s": budget_s, "progress": progress}
    rows = {row.name: row for times in time_layers(ceiling_models(), runtime, **options) for row in times.layers}
    # A marginal time (a cut's minus the cut before) can be zero in a round the machine held the shorter cut up.
    rounds = {
        name: [seconds for seconds in rows[name].seconds if seconds > 0]
        for name in (*COMPUTE_OPS, *MEMORY_OPS)
        if rows[name].timed and rows[name].ms > 0
    }
    for kind in (COMPUTE_OPS, MEMORY_OPS):
        if not rounds.keys() & set(kind):
            raise ValueError(
                f"No ceiling op of {', '.join(kind)} could be timed on this runtime. Received: runtime={runtime!r}"
            )
    traffic = 2 * MEMORY_ELEMENTS * element_bytes(runtime)
    compute = {
        name: [2 * rows[name].mult_adds / seconds / 1e9 for seconds in rounds[name]]
        for name in COMPUTE_OPS
        if name in rounds
    }
    memory = {name: [traffic / seconds / 1e9 for seconds in rounds[name]] for name in MEMORY_OPS if name in rounds}
    peak = max(compute, key=lambda name: stats.Spread.of(compute[name]).median)
    stream = max(memory, key=lambda name: stats.Spread.of(memory[name]).median)
    return Ceilings(
        runtime,
        stats.Spread.of(compute[peak]),
        stats.Spread.of(memory[stream]),
        f"the fastest of {_describe(compute, rows, 'G(FL)OP/s')}: {peak}",
        f"the fastest over {traffic // 2 // 2**20} MiB in and out of {_describe(memory, rows, 'GB/s')}: {stream}",
    )
