"""Argument checks shared by every module (no Keras import, so the vectors
package can use them); the layers' own options are checked in
`layers/base.py`. Each error names the argument, echoes the value and
its type, and says what would be valid, as Keras's own layers do."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r} (of type {type(value).__name__})."


def check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. "
                         + received(name, value))


def check_int_at_least(name: str, value: Any, minimum: int) -> int:
    """`value` must be an integer (Python or NumPy) `>= minimum`; returns
    it as a Python int."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or value < minimum):
        raise ValueError(f"`{name}` must be an integer >= {minimum}. "
                         + received(name, value))
    return int(value)


def check_number_at_least(name: str, value: Any, minimum: float,
                          strict: bool = False) -> float:
    """`value` must be a finite number `>= minimum` (`> minimum` if
    `strict`); returns it as a Python float."""
    ok = (not isinstance(value, bool)
          and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value)
          and (value > minimum if strict else value >= minimum))
    if not ok:
        bound = ">" if strict else ">="
        raise ValueError(f"`{name}` must be a finite number {bound} "
                         f"{minimum}. " + received(name, value))
    return float(value)


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. "
                         + received(name, value))


def check_choice(name: str, value: Any, choices: Sequence[str],
                 allow_none: bool = False) -> None:
    """`value` must be one of `choices` (strings), or None if allowed."""
    if allow_none and value is None:
        return
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        prefix = "None or one of" if allow_none else "one of"
        raise ValueError(f"`{name}` must be {prefix} {listed}. "
                         f"Received: {name}={value!r}.")


def is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
