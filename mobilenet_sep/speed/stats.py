"""The statistics every reported timing goes through: a median with its quartiles, and a ratio of two
subjects timed in alternating rounds with a distribution-free interval.

Timings on a shared machine are skewed and drift, so nothing here assumes a normal distribution:
the interval of a median comes from order statistics (the binomial sign-test bound), and a ratio is
the median of per-round ratios, so drift that hits both subjects of a round cancels out.
"""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Spread:
    """A sample's median, 25th and 75th percentiles and size."""

    median: float
    p25: float
    p75: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        if len(values) == 0:
            raise ValueError("A spread needs at least one value. Received: values=[]")
        p25, median, p75 = np.percentile(np.asarray(values, np.float64), [25, 50, 75])
        return cls(float(median), float(p25), float(p75), len(values))

    def scaled(self, factor: float) -> "Spread":
        """The same spread in other units (seconds -> milliseconds: 1e3)."""
        return Spread(self.median * factor, self.p25 * factor, self.p75 * factor, self.count)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free interval for the median: order statistics k and n + 1 - k of the sorted values.

    k is the largest rank with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2, so the interval covers
    the true median with at least `confidence` for any continuous distribution. Below 6 values no
    rank qualifies at 95 %: the interval is then the whole range (and covers less).
    """
    ordered = sorted(float(value) for value in values)
    count = len(ordered)
    if count == 0:
        raise ValueError("An interval needs at least one value. Received: values=[]")
    tail = (1.0 - confidence) / 2
    rank, cumulative = 0, 0.0
    for k in range(count):
        cumulative += math.comb(count, k) / 2**count  # P(Binomial < k + 1)
        if cumulative > tail:
            break
        rank = k + 1
    rank = max(rank, 1)
    return ordered[rank - 1], ordered[count - rank]


@dataclasses.dataclass(frozen=True)
class Ratio:
    """numerator / denominator from paired rounds: the median per-round ratio and its interval.

    `measurable` is False when the interval contains 1.0: the two cannot be told apart.
    """

    value: float
    low: float
    high: float
    rounds: int
    confidence: float = CONFIDENCE

    @property
    def measurable(self) -> bool:
        return not self.low <= 1.0 <= self.high

    def describe(self, digits: int = 2) -> str:
        """ "4.78x (4.61-4.95)" or "no measurable difference (0.97-1.04)"."""
        interval = f"({self.low:.{digits}f}-{self.high:.{digits}f})"
        if not self.measurable:
            return f"no measurable difference {interval}"
        return f"{self.value:.{digits}f}x {interval}"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "measurable": self.measurable, "text": self.describe()}


def paired_ratio(
    numerator: Sequence[float], denominator: Sequence[float], confidence: float = CONFIDENCE
) -> Ratio:
    """The ratio of two subjects timed round by round (A B A B ...): round i's numerator over its denominator."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError(
            "Paired timings need the same number of rounds for both subjects. "
            f"Received: rounds={len(numerator)} and {len(denominator)}"
        )
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True)]
    low, high = median_interval(ratios, confidence)
    return Ratio(float(np.median(ratios)), low, high, len(ratios), confidence)
