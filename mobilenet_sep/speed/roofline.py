"""The roofline of one runtime on this machine: its two ceilings, a layer's minimum traffic, and the time they bound.

A layer needs at least `2 * mult_adds / peak` seconds to do its arithmetic and `bytes / bandwidth`
to move its data, so it needs at least the larger of the two: that ceiling binds ("compute" or
"memory"). `bytes` is the minimum traffic: the input and output once and the weights once, at
the runtime's dtype (int8 activations and kernels in an int8 model; a bias stays 32-bit).
Arithmetic intensity is `2 * mult_adds / bytes`: above `peak / bandwidth` the compute ceiling binds.
"""

import dataclasses
import math

from mobilenet_sep.profiler import LayerCost
from mobilenet_sep.speed.stats import Spread

ELEMENT_BYTES = {"litert-int8": 1}
"""Bytes per activation and kernel element of each runtime where it is not 4 (float32)."""


def element_bytes(runtime: str) -> int:
    return ELEMENT_BYTES.get(runtime, 4)


def minimum_bytes(row: LayerCost, element: int) -> int:
    """Input and output elements once, kernel weights once at `element` bytes, other weights (bias) at 4."""
    inputs = row.input_shape or ()
    shapes = inputs if inputs and isinstance(inputs[0], tuple) else (inputs,)
    activations = sum(math.prod(shape) for shape in shapes) + math.prod(row.output_shape or ())
    return activations * element + row.kernel_weights * element + (row.params - row.kernel_weights) * 4


@dataclasses.dataclass(frozen=True)
class Ceilings:
    """A runtime's measured peak arithmetic rate (GFLOP/s, a mult-add counting 2) and memory bandwidth (GB/s).

    Both are spreads over the rounds that measured them; `compute_op` and `memory_op` say what ran.
    On an int8 runtime the arithmetic is integer: GOP/s.
    """

    runtime: str
    gflops: Spread
    gbps: Spread
    compute_op: str
    memory_op: str

    @property
    def unit(self) -> str:
        return "GOP/s (int8)" if element_bytes(self.runtime) == 1 else "GFLOP/s"

    def bound(self, flops: float, traffic: float, peak: float | None = None, bandwidth: float | None = None):
        """(seconds, "compute" | "memory"): the roofline's least time for `flops` and `traffic` bytes.

        `peak` and `bandwidth` (GFLOP/s, GB/s) replace the medians, for a bound at another quartile.
        """
        compute = flops / (1e9 * (peak or self.gflops.median))
        memory = traffic / (1e9 * (bandwidth or self.gbps.median))
        return (compute, "compute") if compute >= memory else (memory, "memory")

    @property
    def ridge(self) -> float:
        """The intensity (FLOP/byte) where the two ceilings meet."""
        return self.gflops.median / self.gbps.median

    def corners(self):
        """(peak, bandwidth) pairs at the quartiles of both ceilings: what the bound's spread comes from."""
        return [
            (peak, bandwidth)
            for peak in (self.gflops.p25, self.gflops.p75)
            for bandwidth in (self.gbps.p25, self.gbps.p75)
        ]

    def to_dict(self) -> dict:
        return {
            "gflops": self.gflops.median,
            "gbps": self.gbps.median,
            "unit": self.unit,
            "ridge_flops_per_byte": self.ridge,
            "gflops_spread": self.gflops.to_dict(),
            "gbps_spread": self.gbps.to_dict(),
            "compute_op": self.compute_op,
            "memory_op": self.memory_op,
        }
