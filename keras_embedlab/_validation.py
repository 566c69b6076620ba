"""Argument checks shared by every module (no Keras import, so the vectors
package can use them). Each error names the argument, echoes the value and
its type, and says what would be valid, as Keras's own layers do."""

from __future__ import annotations

import math
from typing import Any, Sequence

INVALID_IDS_MODES = ("error", "zeros")
SUPPORTED_COMBINERS = ("sum", "mean", "sqrtn")


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r} (of type {type(value).__name__})."


def check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. "
                         + _received(name, value))


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. "
                         + _received(name, value))


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


def check_padding_idx(padding_idx: Any, input_dim: int | None) -> None:
    """An id in `[0, input_dim)`; `input_dim=None`: not known yet (any id
    from 0 up, checked again once it is)."""
    if padding_idx is None:
        return
    if input_dim is None:
        if (not isinstance(padding_idx, int) or isinstance(padding_idx, bool)
                or padding_idx < 0):
            raise ValueError(
                "`padding_idx` must be None or a non-negative integer id "
                "(below the vocabulary size). "
                + _received("padding_idx", padding_idx)
            )
        return
    if (not isinstance(padding_idx, int) or isinstance(padding_idx, bool)
            or not 0 <= padding_idx < input_dim):
        raise ValueError(
            "`padding_idx` must be None or an integer id in [0, input_dim) "
            f"= [0, {input_dim}). " + _received("padding_idx", padding_idx)
        )


def check_max_norm(max_norm: Any) -> None:
    if max_norm is not None and not (is_number(max_norm) and max_norm > 0):
        raise ValueError("`max_norm` must be None or a positive number. "
                         + _received("max_norm", max_norm))


def check_norm_type(norm_type: Any) -> None:
    if not (is_number(norm_type) and norm_type > 0):
        raise ValueError(
            "`norm_type` must be a positive number (the p of the p-norm, "
            "e.g. 2.0 or 1.0). " + _received("norm_type", norm_type)
        )


def check_invalid_ids(value: Any) -> None:
    check_choice("invalid_ids", value, INVALID_IDS_MODES)


def check_combiner(combiner: Any) -> None:
    check_choice("combiner", combiner, SUPPORTED_COMBINERS, allow_none=True)
