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
    """The models whose layers are the ceiling ops: (one wide 1x1 conv, a 3x3 conv then a 1x1 conv, the streams)."""
    inputs = keras.Input((28, 28, 1024), name="input")
    wide = keras.Model(
        inputs, keras.layers.Conv2D(1024, 1, use_bias=False, name=COMPUTE_OPS[0])(inputs), name="ceiling_wide"
    )
    inputs = keras.Input((56, 56, 64), name="input")
    spatial = keras.layers.Conv2D(64, 3, padding="same", use_bias=False, name=COMPUTE_OPS[1])(inputs)
    reshaped = keras.layers.Reshape((14, 14, 1024), name="regroup")(spatial)
    chain = keras.Model(
        inputs, keras.layers.Conv2D(512, 1, use_bias=False, name=COMPUTE_OPS[2])(reshaped), name="ceiling_chain"
    )
    channels, width = 64, 256
    inputs = keras.Input((MEMORY_ELEMENTS // (width * channels), width, channels), name="input")
    streamed = keras.layers.DepthwiseConv2D(1, use_bias=False, name=MEMORY_OPS[0])(inputs)
    memory = keras.Model(inputs, keras.layers.Add(name=MEMORY_OPS[1])([streamed, streamed]), name="ceiling_memory")
    return wide, chain, memory


def _describe(rates, rows, unit):
    return ", ".join(
        f"{name} {stats.Spread.of(rates[name]).median:.1f} {unit} ({rows[name].ops_text})" for name in rates
    )


def measure_ceilings(runtime: str, *, threads=None, warmup=3, repeats=30, budget_s=10.0, progress=None) -> Ceilings:
    """`runtime`'s measured ceilings on this machine (see the module docstring)."""
    options = {"threads": threads, "warmup": warmup, "repeats": repeats, "budget_s": budget_s, "progress": progress}
    rows = {row.name: row for times in time_layers(ceiling_models(), runtime, **options) for row in times.layers}
    untimed = [name for name in (*COMPUTE_OPS, *MEMORY_OPS) if not rows[name].timed or rows[name].ms <= 0]
    if untimed:
        raise ValueError(
            f"The ceiling op {untimed[0]} could not be timed on this runtime. Received: runtime={runtime!r}"
        )
    traffic = 2 * MEMORY_ELEMENTS * element_bytes(runtime)
    # A marginal time (a cut's minus the cut before) can be zero in a round the machine held the shorter cut up.
    rounds = {name: [seconds for seconds in rows[name].seconds if seconds > 0] for name in (*COMPUTE_OPS, *MEMORY_OPS)}
    compute = {name: [2 * rows[name].mult_adds / seconds / 1e9 for seconds in rounds[name]] for name in COMPUTE_OPS}
    memory = {name: [traffic / seconds / 1e9 for seconds in rounds[name]] for name in MEMORY_OPS}
    peak = max(COMPUTE_OPS, key=lambda name: stats.Spread.of(compute[name]).median)
    stream = max(MEMORY_OPS, key=lambda name: stats.Spread.of(memory[name]).median)
    return Ceilings(
        runtime,
        stats.Spread.of(compute[peak]),
        stats.Spread.of(memory[stream]),
        f"the fastest of {_describe(compute, rows, 'G(FL)OP/s')}: {peak}",
        f"the fastest over {traffic // 2 // 2**20} MiB in and out of {_describe(memory, rows, 'GB/s')}: {stream}",
    )
