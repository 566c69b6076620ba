"""Sampled softmax: training logits over a large vocabulary from the true
classes and a few sampled ones, as TensorFlow's `tf.nn.sampled_softmax_loss`,
in `keras.ops` (every backend, eager and compiled)."""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
from keras import ops

from keras_embedlab.ids import reader
from keras_embedlab.sampled_softmax.sampler import (
    log_uniform_candidate_sampler,
)
from keras_embedlab.utils.argument_checks import (
    check_bool,
    check_positive_int,
    received,
)

# TensorFlow pushes an accidental hit's logit down by the largest float32.
_HIT_PENALTY = float(np.finfo(np.float32).max)


def _shape(value):
    return tuple(value.shape)


def check_loss_arguments(num_sampled, num_classes, num_true,
                         remove_accidental_hits, sampled_values):
    check_positive_int("num_sampled", num_sampled)
    check_positive_int("num_classes", num_classes)
    check_positive_int("num_true", num_true)
    check_bool("remove_accidental_hits", remove_accidental_hits)
    if sampled_values is None and num_sampled > num_classes:
        raise ValueError(
            f"`num_sampled` must be at most `num_classes` ({num_classes}): "
            "the default sampler draws distinct classes. "
            + received("num_sampled", num_sampled)
            + " Lower `num_sampled`, or pass your own `sampled_values` "
            "(e.g. from log_uniform_candidate_sampler(..., unique=False))."
        )
    if sampled_values is not None and (
            not isinstance(sampled_values, (tuple, list))
            or len(sampled_values) != 3):
        raise ValueError(
            "`sampled_values` must be None or a tuple (sampled_candidates, "
            "true_expected_count, sampled_expected_count), as returned by "
            "log_uniform_candidate_sampler. Received: sampled_values of type "
            f"{type(sampled_values).__name__}."
        )


def as_labels(labels, num_true):
    """Labels of shape (batch, num_true) (rank 1 is one per example), in
    their own dtype: Keras losses receive floats, which the invalid-id rule
    checks as floats (2.5 is no class) before any cast."""
    labels = ops.convert_to_tensor(labels)
    shape = _shape(labels)
    if len(shape) == 1 and num_true == 1:
        labels = ops.expand_dims(labels, -1)
    elif len(shape) != 2 or shape[1] not in (None, num_true):
        raise ValueError(
            "`labels` must have shape (batch_size, num_true) (or "
            "(batch_size,) with num_true=1). Received: labels of shape "
            f"{shape} with num_true={num_true}."
        )
    return labels


def as_inputs(inputs, dim):
    inputs = ops.convert_to_tensor(inputs)
    shape = _shape(inputs)
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if len(shape) != 2 or shape[1] not in (None, dim) or "float" not in dtype:
        raise ValueError(
            f"`inputs` must be float vectors of shape (batch_size, {dim}), "
            f"{dim} being the size of a class's row of `weights`. Received: "
            f"inputs of shape {shape} and dtype {dtype}."
        )
    return inputs


def sampled_logits_loss(read_rows: Callable, read_biases: Callable | None,
                        labels, inputs, num_sampled, num_classes, num_true,
                        sampled_values, remove_accidental_hits, seed,
                        soft_cap=None):
    """The loss from rows read by `read_rows(ids)` (and biases by
    `read_biases(ids)`): the one computation behind the function, the
    layer's method and the Keras loss. `soft_cap` caps the raw logits as
    `LookupEmbedding(logit_soft_cap=...)` does."""
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(
            labels, num_true, num_sampled, True, num_classes, seed=seed)
    sampled, true_count, sampled_count = (
        ops.stop_gradient(ops.convert_to_tensor(v)) for v in sampled_values)
    sampled = ops.cast(sampled, "int32")
    if _shape(sampled) not in ((num_sampled,), (None,)):
        raise ValueError(
            f"`sampled_values[0]` (the sampled candidates) must have shape "
            f"(num_sampled,) = ({num_sampled},). Received: shape "
            f"{_shape(sampled)}."
        )
    dtype = inputs.dtype
    true_rows = ops.cast(read_rows(ops.reshape(labels, (-1,))), dtype)
    true_rows = ops.reshape(true_rows, (-1, num_true, true_rows.shape[-1]))
    sampled_rows = ops.cast(read_rows(sampled), dtype)
    # Each example with its own true rows; one matmul for the shared samples.
    true_logits = ops.sum(ops.multiply(ops.expand_dims(inputs, 1),
                                       true_rows), axis=-1)
    sampled_logits = ops.matmul(inputs, ops.transpose(sampled_rows))
    true_logits = ops.cast(true_logits, "float32")
    sampled_logits = ops.cast(sampled_logits, "float32")
    if soft_cap is not None:
        true_logits, sampled_logits = (
            ops.multiply(ops.tanh(ops.divide(x, soft_cap)), soft_cap)
            for x in (true_logits, sampled_logits))
    if read_biases is not None:
        true_logits = ops.add(true_logits, ops.reshape(ops.cast(
            read_biases(ops.reshape(labels, (-1,))), "float32"),
            (-1, num_true)))
        sampled_logits = ops.add(sampled_logits,
                                 ops.cast(read_biases(sampled), "float32"))
    if remove_accidental_hits:
        # A sampled class that is one of the example's targets is no
        # negative: its logit drops out of the softmax.
        hits = ops.any(ops.equal(ops.expand_dims(labels, -1), sampled),
                       axis=1)
        sampled_logits = ops.add(sampled_logits, ops.where(
            hits, -_HIT_PENALTY, 0.0))
    # `logits - log(Q)`: each class's logit less the log of how often it is
    # expected among the candidates.
    true_logits = ops.subtract(true_logits, ops.log(ops.cast(true_count,
                                                             "float32")))
    sampled_logits = ops.subtract(sampled_logits, ops.log(ops.cast(
        sampled_count, "float32")))
    logits = ops.concatenate([true_logits, sampled_logits], axis=1)
    # Softmax cross-entropy with target 1/num_true on each true class.
    return ops.subtract(ops.logsumexp(logits, axis=1),
                        ops.mean(true_logits, axis=1))


def _gather(values, ids):
    return ops.take(values, ids, axis=0)


def sampled_softmax_loss(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = True,
    seed: Any = None,
):
    """The sampled softmax training loss, as `tf.nn.sampled_softmax_loss`.

    The softmax over all `num_classes` is estimated from the true classes
    and `num_sampled` classes drawn by `log_uniform_candidate_sampler`
    (unique, as TensorFlow's default): only those rows of `weights` are
    read. Each logit is corrected by the log of its class's expected count
    (`logits - log(Q)`), and, with `remove_accidental_hits`, a sampled class
    equal to one of the example's targets is left out. For exact logits at
    inference, use `inputs @ weights.T + biases` (or the layer's
    `reverse=True`). Same arguments as TensorFlow's, in keras.ops.

    Args:
        weights: Float tensor of shape `(num_classes, dim)`, one row per
            class (a `LookupEmbedding`'s `embeddings` has this layout).
        biases: Float tensor of shape `(num_classes,)`, or None for no bias.
        labels: Integer tensor of shape `(batch_size, num_true)` (or
            `(batch_size,)` with `num_true=1`), the target classes, in
            `[0, num_classes)`.
        inputs: Float tensor of shape `(batch_size, dim)`.
        num_sampled: Positive integer, the classes sampled per batch (shared
            by its examples).
        num_classes: Positive integer, the number of classes.
        num_true: Positive integer, the targets per example.
        sampled_values: Optional `(sampled_candidates, true_expected_count,
            sampled_expected_count)` from a candidate sampler; by default
            `log_uniform_candidate_sampler(labels, num_true, num_sampled,
            unique=True, range_max=num_classes, seed=seed)`. No gradient
            flows through them.
        remove_accidental_hits: Boolean, default True.
        seed: None, an integer or a `keras.random.SeedGenerator` for the
            default sampler. An integer draws the same classes at every
            call; in a training loop pass a `SeedGenerator` (see
            `log_uniform_candidate_sampler` for `jax.jit`).

    Returns:
        Float32 tensor of shape `(batch_size,)`: each example's loss.
    """
    check_loss_arguments(num_sampled, num_classes, num_true,
                         remove_accidental_hits, sampled_values)
    weights = ops.convert_to_tensor(weights)
    if len(_shape(weights)) != 2 or _shape(weights)[0] not in (
            None, num_classes):
        raise ValueError(
            "`weights` must be one tensor of shape (num_classes, dim) = "
            f"({num_classes}, dim). Received: weights of shape "
            f"{_shape(weights)}."
        )
    read_biases = None
    if biases is not None:
        biases = ops.convert_to_tensor(biases)
        if _shape(biases) not in ((num_classes,), (None,)):
            raise ValueError(
                "`biases` must be None or a tensor of shape (num_classes,) = "
                f"({num_classes},). Received: biases of shape "
                f"{_shape(biases)}."
            )
        read_biases = lambda ids: _gather(biases, ids)  # noqa: E731
    # The invalid-id rule (`ids.reader`): a label outside [0, num_classes)
    # raises, in compiled code too, instead of reading a clamped or NaN row.
    labels = ops.cast(reader.prepare_ids(as_labels(labels, num_true),
                                         num_classes, "error",
                                         "sampled_softmax_loss"), "int32")
    inputs = as_inputs(inputs, _shape(weights)[1])
    return sampled_logits_loss(
        lambda ids: _gather(weights, ids), read_biases, labels, inputs,
        num_sampled, num_classes, num_true, sampled_values,
        remove_accidental_hits, seed)


@keras.saving.register_keras_serializable(package="keras_embedlab")
class SampledSoftmaxLoss(keras.losses.Loss):
    """A Keras loss for a model whose output is the vectors that a tied
    `LookupEmbedding` turns into logits (`layer(vectors, reverse=True)`).

    `model.compile(loss=SampledSoftmaxLoss(embedding, num_sampled=64))`
    trains on the sampled softmax of `embedding.sampled_softmax_loss`;
    `embedding(model(x), reverse=True)` gives the exact logits at
    inference. The loss holds its own `keras.random.SeedGenerator`, so each
    step draws new classes; its state is kept with the embedding layer's
    `non_trainable_variables` (not its weights), where `model.fit` carries
    it from step to step on every backend. A model saved with this loss
    reloads with a loss that knows the layer by name only: compile it
    again before training.

    Args:
        embedding: The `LookupEmbedding` whose table gives the logits.
        num_sampled: Positive integer, classes sampled per batch.
        num_true: Positive integer, targets per example.
        remove_accidental_hits: Boolean, default True.
        seed: Optional integer seed of the loss's `SeedGenerator`.
        reduction, name, dtype: As for every `keras.losses.Loss`.

    `y_true`: integer class ids of shape `(batch,)` or `(batch, num_true)`
    (Keras passes them as floats: ids below 2**24 are exact). `y_pred`: the
    vectors, of shape `(batch, output_dim)`.
    """

    def __init__(self, embedding, num_sampled: int, num_true: int = 1,
                 remove_accidental_hits: bool = True,
                 seed: int | None = None,
                 reduction: str = "sum_over_batch_size",
                 name: str = "sampled_softmax_loss", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        # A saved model's compile config names the layer; a reloaded loss
        # cannot reach the layer itself (see `call`).
        reloaded = isinstance(embedding, str)
        check_loss_arguments(num_sampled,
                             num_sampled if reloaded else embedding.input_dim,
                             num_true, remove_accidental_hits, None)
        self.embedding = None if reloaded else embedding
        self.embedding_name = embedding if reloaded else embedding.name
        self.num_sampled = num_sampled
        self.num_true = num_true
        self.remove_accidental_hits = remove_accidental_hits
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        if not reloaded:
            # The seed's state goes with the embedding layer's state (its
            # `non_trainable_variables`, not its weights: never saved), so
            # that the model's step carries it forward: JAX's `model.fit`
            # updates only the model's own variables, and would otherwise
            # draw the same classes at every step. Keras's tracker refuses
            # new state on a built layer, hence its list directly.
            embedding._seed_generators.append(self.seed_generator)

    def call(self, y_true, y_pred):
        if self.embedding is None:
            raise ValueError(
                "This SampledSoftmaxLoss was reloaded with a saved model and "
                f"knows its embedding layer only by name "
                f"('{self.embedding_name}'). Compile the model again: "
                "model.compile(loss=SampledSoftmaxLoss(model.get_layer("
                f"'{self.embedding_name}'), num_sampled={self.num_sampled}))."
            )
        return self.embedding.sampled_softmax_loss(
            y_true, y_pred, self.num_sampled, num_true=self.num_true,
            remove_accidental_hits=self.remove_accidental_hits,
            seed=self.seed_generator)

    def get_config(self):
        # The layer by name only: a reloaded model must compile again.
        return {**super().get_config(), "embedding": self.embedding_name,
                "num_sampled": self.num_sampled,
                "num_true": self.num_true,
                "remove_accidental_hits": self.remove_accidental_hits,
                "seed": self.seed}
