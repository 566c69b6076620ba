"""The log-uniform (Zipfian) candidate sampler, as TensorFlow's
`tf.random.log_uniform_candidate_sampler`, in `keras.ops`.

Class `k` of `range_max` is drawn with probability
`P(k) = (log(k + 2) - log(k + 1)) / log(range_max + 1)`: small ids, the
frequent words of a vocabulary sorted by frequency, are drawn most.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from keras import ops, random

from keras_embedlab.utils.argument_checks import (
    check_bool,
    check_positive_int,
    received,
)


def log_uniform_probabilities(range_max: int) -> np.ndarray:
    """`P(k)` for every class `k < range_max`, in float64 (NumPy)."""
    k = np.arange(range_max, dtype=np.float64)
    return (np.log1p(1.0 / (k + 1.0))) / math.log1p(range_max)


def _probabilities(classes, range_max):
    """`P(classes)` as float32 tensors, computed as TensorFlow does."""
    classes = ops.cast(classes, "float32")
    return ops.divide(ops.log(ops.divide(ops.add(classes, 2.0),
                                         ops.add(classes, 1.0))),
                      math.log1p(range_max))


@functools.cache
def expected_tries(num_sampled: int, range_max: int) -> float:
    """How many draws with replacement give `num_sampled` distinct classes
    on average: the `t` with `sum_k 1 - (1 - P(k)) ** t == num_sampled`.

    TensorFlow's unique sampler counts the draws it actually made (a random
    number); this is that count's typical value, known before sampling, so
    the expected counts it gives sum to `num_sampled` exactly. Infinite
    when every class is sampled.
    """
    if num_sampled >= range_max:
        return math.inf
    log_miss = np.log1p(-log_uniform_probabilities(range_max))

    def distinct(tries):
        return float(np.sum(-np.expm1(tries * log_miss)))

    low, high = float(num_sampled), float(num_sampled)
    while distinct(high) < num_sampled:
        low, high = high, high * 2.0
    for _ in range(200):  # Bisection to float64 precision.
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        low, high = (middle, high) if distinct(middle) < num_sampled else (
            low, middle)
    return high


def expected_count(classes, num_sampled: int, unique: bool, range_max: int):
    """How often each of `classes` is expected among the sampled candidates
    (TensorFlow's `true_expected_count` / `sampled_expected_count`)."""
    p = _probabilities(classes, range_max)
    if not unique:
        return ops.multiply(p, float(num_sampled))
    tries = expected_tries(num_sampled, range_max)
    if math.isinf(tries):
        return ops.ones_like(p)
    return ops.negative(ops.expm1(ops.multiply(ops.log1p(ops.negative(p)),
                                               tries)))


def check_sampler_arguments(num_true, num_sampled, unique, range_max):
    check_positive_int("num_true", num_true)
    check_positive_int("num_sampled", num_sampled)
    check_bool("unique", unique)
    check_positive_int("range_max", range_max)
    if unique and num_sampled > range_max:
        raise ValueError(
            f"`num_sampled` must be at most `range_max` ({range_max}) with "
            "unique=True: only that many distinct classes exist. "
            + received("num_sampled", num_sampled)
            + " Lower `num_sampled`, or sample with unique=False."
        )


def log_uniform_candidate_sampler(
    true_classes: Any,
    num_true: int,
    num_sampled: int,
    unique: bool,
    range_max: int,
    seed: Any = None,
):
    """Samples classes from the log-uniform distribution, as TensorFlow's
    `tf.random.log_uniform_candidate_sampler` (same arguments and results).

    Args:
        true_classes: Integer tensor of shape `(batch_size, num_true)`: the
            target classes, used only for their expected counts.
        num_true: Positive integer, the number of targets per example.
        num_sampled: Positive integer, the number of classes to sample.
        unique: If True, the `num_sampled` classes are distinct, drawn as
            TensorFlow draws them (with replacement, keeping each class the
            first time it comes up, until `num_sampled` distinct ones): here
            by the equivalent Gumbel top-k over all `range_max` classes, so
            that shapes stay static in compiled code. That costs
            `range_max` random numbers per call (no table row is read); use
            `unique=False` for a cost in `num_sampled` only.
        range_max: Positive integer, the number of classes.
        seed: None, an integer or a `keras.random.SeedGenerator`, as for
            `keras.random`. An integer gives the same candidates on every
            call; to draw new ones at each training step, pass a
            `SeedGenerator` (in a `jax.jit` function of your own, inside a
            `keras.StatelessScope` that maps its `state`, as `model.fit`
            does).

    Returns:
        `(sampled_candidates, true_expected_count, sampled_expected_count)`:
        int32 classes of shape `(num_sampled,)`, and float32 expected counts
        of shapes `(batch_size, num_true)` and `(num_sampled,)`. With
        `unique=False` a class's expected count is `num_sampled * P(k)`;
        with `unique=True` it is `1 - (1 - P(k)) ** t`, TensorFlow's formula,
        with `t` the number of draws that gives `num_sampled` distinct
        classes on average (TensorFlow uses the number it happened to
        draw), so the counts of all classes sum to `num_sampled`.
    """
    check_sampler_arguments(num_true, num_sampled, unique, range_max)
    true_classes = ops.convert_to_tensor(true_classes)
    if "int" not in str(true_classes.dtype):
        raise ValueError(
            "`true_classes` must be an integer tensor of shape (batch_size, "
            f"num_true). Received: true_classes of dtype "
            f"{true_classes.dtype}."
        )
    if unique:
        # The first `num_sampled` distinct draws of a stream of draws with
        # replacement are distributed as the top `num_sampled` of
        # `log P(k) + Gumbel noise` (sampling without replacement).
        log_p = ops.convert_to_tensor(
            np.log(log_uniform_probabilities(range_max)).astype("float32"))
        uniform = random.uniform((range_max,), minval=0.0, maxval=1.0,
                                 seed=seed)
        gumbel = ops.negative(ops.log(ops.negative(ops.log(uniform))))
        _, sampled = ops.top_k(ops.add(log_p, gumbel), num_sampled)
    else:
        # Inverse transform: floor(exp(u * log(range_max + 1))) - 1.
        uniform = random.uniform((num_sampled,), minval=0.0, maxval=1.0,
                                 seed=seed)
        sampled = ops.subtract(ops.floor(ops.exp(ops.multiply(
            uniform, math.log1p(range_max)))), 1.0)
        sampled = ops.clip(sampled, 0.0, float(range_max - 1))
    sampled = ops.cast(sampled, "int32")
    return (sampled,
            expected_count(true_classes, num_sampled, unique, range_max),
            expected_count(sampled, num_sampled, unique, range_max))
