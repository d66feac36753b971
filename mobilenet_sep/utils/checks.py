"""The one vocabulary of argument checks: every public function says what it takes with these.

Each check returns the value (normalized where it says so) or raises a ValueError whose one line
ends with the argument and the value received (`Received: alpha=-1`), the form the CLI prints.
"""

import difflib
import math
from collections.abc import Iterable
from typing import Any


def fail(argument: str, value: Any, requirement: str) -> None:
    """Raise the standard error: "`argument` requirement. Received: argument=value"."""
    raise ValueError(f"`{argument}` {requirement}. Received: {argument}={value!r}")


def is_int(value: Any) -> bool:
    """An int that is not a bool (True is an int to Python, never to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: Any, argument: str, minimum: int = 1) -> int:
    """An int >= `minimum` (1 by default), bools refused."""
    if not is_int(value) or value < minimum:
        requirement = "must be a positive int" if minimum == 1 else f"must be an int >= {minimum}"
        fail(argument, value, requirement)
    return value


def optional_positive_int(value: Any, argument: str) -> int | None:
    """None, or a positive int."""
    return None if value is None else positive_int(value, argument)


def number(
    value: Any,
    argument: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number (not a bool, not a string) within the bounds given, as a float.

    `low_open` / `high_open` exclude the bound itself: `number(rate, "dropout", low=0, high=1,
    high_open=True)` accepts [0, 1).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(argument, value, "must be a finite number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        if high is None:
            fail(argument, value, f"must be {'>' if low_open else '>='} {low:g}")
        if low is None:
            fail(argument, value, f"must be {'<' if high_open else '<='} {high:g}")
        fail(argument, value, f"must be in {left}{low:g}, {high:g}{right}")
    return float(value)


def int_pair(value: Any, argument: str) -> tuple[int, int]:
    """`3` or `(3, 5)` -> a pair of positive ints."""
    pair = (value, value) if is_int(value) else value
    try:
        pair = tuple(pair)
    except TypeError:
        fail(argument, value, "must be an int or a pair of ints")
    if len(pair) != 2 or not all(is_int(item) for item in pair):
        fail(argument, value, "must be an int or a pair of ints")
    if min(pair) <= 0:
        fail(argument, value, "must be positive")
    return pair


def did_you_mean(value: Any, known: Iterable[str], cutoff: float = 0.6, count: int = 1) -> str:
    """" Did you mean: x?" for the `count` closest known names, or an empty string."""
    close = difflib.get_close_matches(str(value), list(known), n=count, cutoff=cutoff)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def choice(value: Any, known: Iterable, argument: str) -> Any:
    """One of `known`; the error lists them and suggests the closest."""
    known = list(known)
    if value not in known:
        names = ", ".join("None" if item is None else str(item) for item in known)
        hint = did_you_mean(value, [str(item) for item in known if item is not None])
        raise ValueError(f"`{argument}` must be one of {names}.{hint} Received: {argument}={value!r}")
    return value
