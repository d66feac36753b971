"""The timing statistics, on injected timings whose answer is known."""

import math

import pytest

from mobilenet_sep.speed import measure, stats


def test_spread_is_median_and_quartiles():
    spread = stats.Spread.of([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (spread.median, spread.p25, spread.p75, spread.count) == (3.0, 2.0, 4.0, 5)
    assert spread.scaled(1e3).median == 3000.0


def test_median_interval_uses_the_sign_test_ranks():
    values = list(range(1, 31))  # n = 30: the 95 % ranks are the 10th and the 21st value
    assert stats.median_interval(values) == (10, 21)
    tail = sum(math.comb(30, k) for k in range(10)) / 2**30
    assert tail <= 0.025 < tail + math.comb(30, 10) / 2**30
    assert stats.median_interval([5.0, 1.0, 3.0]) == (1.0, 5.0)  # too few for 95 %: the whole range


def test_paired_ratio_cancels_drift_that_hits_both_subjects():
    drift = [1.0 + 0.5 * round_ for round_ in range(20)]  # the machine slows down 10x over the run
    slow, fast = [3.0 * d for d in drift], [d for d in drift]
    ratio = stats.paired_ratio(slow, fast)
    assert ratio.value == pytest.approx(3.0) and ratio.low == pytest.approx(3.0) and ratio.high == pytest.approx(3.0)
    assert ratio.measurable and ratio.describe() == "3.00x (3.00-3.00)"


def test_an_interval_containing_one_is_no_measurable_difference():
    ratio = stats.paired_ratio([1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 1.02], [1.0] * 7)
    assert ratio.low < 1.0 < ratio.high and not ratio.measurable
    assert ratio.describe().startswith("no measurable difference (")
    assert ratio.to_dict()["measurable"] is False


def test_unpaired_timings_are_refused():
    with pytest.raises(ValueError, match="Received: rounds=3 and 2"):
        stats.paired_ratio([1, 2, 3], [1, 2])


def test_time_interleaved_alternates_the_subjects_round_by_round():
    calls = []
    runs = [lambda: calls.append("A"), lambda: calls.append("B")]
    seconds = measure.time_interleaved(runs, warmup=2, repeats=4, budget_s=100.0)
    assert calls == ["A", "A", "B", "B"] + ["A", "B"] * 4
    assert [len(subject) for subject in seconds] == [4, 4]
