"""Sampled softmax (`sampled_softmax_loss`, `log_uniform_candidate_sampler`,
`LookupEmbedding.sampled_softmax_loss`, `SampledSoftmaxLoss`)."""

import re

import keras
import numpy as np
import pytest
from keras import ops

import keras_embedlab
from keras_embedlab import (
    LookupEmbedding,
    SampledSoftmaxLoss,
    log_uniform_candidate_sampler,
    sampled_softmax_loss,
)

BACKEND = keras.backend.backend()
on_tensorflow = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="compares with TensorFlow's own tf.nn.sampled_softmax_loss")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _grad_fn(fn, compiled=False):
    """`(value, grads)` of scalar `fn(*tensors)` for every argument, on the
    current backend (Keras has no backend-agnostic gradient)."""
    if BACKEND == "jax":
        import jax

        g = jax.value_and_grad(fn, argnums=(0, 1))
        return jax.jit(g) if compiled else g
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def g(*args):
            args = [tf.convert_to_tensor(a) for a in args]
            with tf.GradientTape() as tape:
                tape.watch(args[:2])
                value = fn(*args)
            return value, tape.gradient(value, args[:2])

        return tf.function(g) if compiled else g
    import torch

    def g(*args):
        args = [torch.as_tensor(np.asarray(a)) for a in args]
        for a in args[:2]:
            a.requires_grad_(True)
        value = fn(*args)
        return value, torch.autograd.grad(value, args[:2])

    return g


def _full_softmax(weights, inputs, labels, biases=None):
    """NumPy reference: mean over the true classes of the cross-entropy."""
    logits = inputs @ weights.T
    if biases is not None:
        logits = logits + biases
    top = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return lse - np.take_along_axis(logits, labels, axis=1).mean(axis=1)


def _full_gradient(weights, inputs, labels):
    """NumPy reference: the gradient of `_full_softmax(...).sum()` for
    `weights` and `inputs`; d loss / d logits is softmax - targets."""
    logits = inputs @ weights.T
    d_logits = np.exp(logits - logits.max(axis=1, keepdims=True))
    d_logits /= d_logits.sum(axis=1, keepdims=True)
    for column in labels.T:
        d_logits[np.arange(len(labels)), column] -= 1.0 / labels.shape[1]
    return [d_logits.T @ inputs, d_logits @ weights]


def _problem(num_classes=10, dim=4, batch=3, num_true=1, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(num_classes, dim)).astype("float32")
    inputs = rng.normal(size=(batch, dim)).astype("float32")
    # Distinct targets in each row (a repeated one counts twice in
    # TensorFlow's definition, unlike in the full softmax).
    labels = np.stack([rng.choice(num_classes, num_true, replace=False)
                       for _ in range(batch)]).astype("int32")
    return weights, inputs, labels


# (a) Against TensorFlow, on the same sampled candidates.

@on_tensorflow
@pytest.mark.parametrize("num_true, hits, use_biases", [
    pytest.param(1, True, True, id="true1-hits-biases"),
    pytest.param(2, True, True, id="true2-hits-biases"),
    pytest.param(2, False, True, id="true2-keep-hits"),
    pytest.param(1, True, False, id="true1-no-biases"),
])
def test_equals_tensorflow_sampled_softmax_loss(num_true, hits, use_biases):
    import tensorflow as tf

    weights, inputs, labels = _problem(12, 5, 4, num_true)
    rng = np.random.default_rng(1)
    biases = rng.normal(size=12).astype("float32")
    # Candidates that include some labels (accidental hits), and counts.
    sampled = np.array([labels[0, 0], 3, labels[2, -1], 7, 11], "int64")
    true_count = rng.uniform(0.1, 1, labels.shape).astype("float32")
    sampled_count = rng.uniform(0.1, 1, 5).astype("float32")

    def ours(w, b, x):
        return sampled_softmax_loss(
            w, b if use_biases else None, labels, x, 5, 12,
            num_true=num_true,
            sampled_values=(sampled, true_count, sampled_count),
            remove_accidental_hits=hits)

    def theirs(w, b, x):
        return tf.nn.sampled_softmax_loss(
            w, b if use_biases else tf.zeros_like(b), labels.astype("int64"),
            x, 5, 12, num_true=num_true,
            sampled_values=(tf.constant(sampled), tf.constant(true_count),
                            tf.constant(sampled_count)),
            remove_accidental_hits=hits)

    results = []
    for fn in (ours, theirs):
        args = [tf.Variable(a) for a in (weights, biases, inputs)]
        with tf.GradientTape() as tape:
            loss = fn(*args)
            total = tf.reduce_sum(loss * tf.range(1.0, 5.0))
        grads = tape.gradient(total, args)
        # Without biases ours has no bias gradient, TensorFlow's is 0.
        results.append([loss.numpy()] + [
            np.zeros(12) if g is None else tf.convert_to_tensor(g).numpy()
            for g in grads])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.isfinite(results[0][0]).all()


@on_tensorflow
def test_expected_counts_equal_tensorflow_sampler():
    import tensorflow as tf

    true = np.array([[0, 5], [9, 2]], "int64")
    _, true_count, sampled_count = tf.random.log_uniform_candidate_sampler(
        true, 2, 6, unique=False, range_max=10)
    ours = log_uniform_candidate_sampler(true, 2, 6, False, 10, seed=0)
    np.testing.assert_allclose(_np(ours[1]), true_count.numpy(), rtol=1e-6)
    # Their samples differ from ours; the count of each is the same formula.
    p = np.log((np.arange(10) + 2) / (np.arange(10) + 1)) / np.log(11)
    np.testing.assert_allclose(_np(ours[2]), 6 * p[_np(ours[0])],
                               rtol=1e-6)


# (b) The gradient in expectation, on every backend.

def test_whole_vocabulary_sampled_equals_full_softmax_compiled():
    # With every class sampled (unique), each expected count is 1 and the
    # true class's sampled copy is an accidental hit: exactly the softmax.
    weights, inputs, labels = _problem(8, 3, 4, num_true=2)

    def loss(w, x):
        return ops.sum(sampled_softmax_loss(w, None, labels, x, 8, 8,
                                            num_true=2, seed=5))

    value, grads = _grad_fn(loss, compiled=True)(weights, inputs)
    np.testing.assert_allclose(
        _np(value), _full_softmax(weights, inputs, labels).sum(), rtol=1e-5)
    for got, want in zip(grads, _full_gradient(weights, inputs, labels)):
        np.testing.assert_allclose(_np(got), want, rtol=1e-4, atol=1e-5)


def _mean_sampled_gradient(weights, inputs, labels, num_sampled, draws,
                           variant="exact"):
    """The sampled gradient averaged over `draws` samples; a `variant`
    leaves out the correction or the removal of accidental hits."""
    grad = _grad_fn(lambda w, x, s, t, c: ops.sum(sampled_softmax_loss(
        w, None, labels, x, num_sampled, len(weights),
        sampled_values=(s, t, c),
        remove_accidental_hits=variant != "keep-hits")), compiled=True)
    seed = keras.random.SeedGenerator(int(np.random.randint(1000)))
    total = [np.zeros_like(weights), np.zeros_like(inputs)]
    for _ in range(draws):
        s, t, c = log_uniform_candidate_sampler(
            labels, 1, num_sampled, True, len(weights), seed=seed)
        if variant == "uncorrected":
            t, c = ops.ones_like(t), ops.ones_like(c)
        _, grads = grad(weights, inputs, s, t, c)
        total = [a + _np(g) for a, g in zip(total, grads)]
    return [a / draws for a in total]


def test_gradient_approaches_full_softmax_in_expectation():
    # Sampled softmax is biased for few samples; with 9 of 10 classes drawn
    # (unique) the average gradient is within a few percent of the full
    # softmax's, and mistakes in the correction or the hits show.
    weights, inputs, labels = _problem(10, 3, 2)
    full = _full_gradient(weights, inputs, labels)

    def error(variant, draws):
        grads = _mean_sampled_gradient(weights, inputs, labels, 9, draws,
                                       variant)
        return max(np.abs(g - f).max() / np.abs(f).max()
                   for g, f in zip(grads, full))

    # Measured on 3 backends: about 0.03 to 0.08 (bias and the noise of 60
    # draws); keeping the accidental hits gives about 0.6.
    assert error("exact", 60) < 0.15
    assert error("keep-hits", 10) > 0.3


# (c) The sampler.

def test_sampler_draws_log_uniform_classes():
    from scipy import stats

    p = np.log((np.arange(8) + 2) / (np.arange(8) + 1)) / np.log(9)
    true = np.array([[1], [6]])
    sampled, true_count, sampled_count = log_uniform_candidate_sampler(
        true, 1, 5000, False, 8, seed=3)
    counts = np.bincount(_np(sampled), minlength=8)
    assert counts.sum() == 5000 and len(counts) == 8
    assert stats.chisquare(counts, 5000 * p).pvalue > 1e-3
    # The same draws are far from uniform: the check can fail.
    assert stats.chisquare(counts, np.full(8, 625)).pvalue < 1e-9
    np.testing.assert_allclose(_np(true_count), 5000 * p[true], rtol=1e-5)
    np.testing.assert_allclose(_np(sampled_count), 5000 * p[_np(sampled)],
                               rtol=1e-5)


def test_unique_sampler_draws_distinct_classes_log_uniformly():
    from scipy import stats

    p = np.log((np.arange(5) + 2) / (np.arange(5) + 1)) / np.log(6)
    seed = keras.random.SeedGenerator(11)
    firsts = []
    for _ in range(100):
        sampled, _, counts = log_uniform_candidate_sampler(
            [[0]], 1, 3, True, 5, seed=seed)
        sampled = _np(sampled)
        assert len(set(sampled.tolist())) == 3, sampled
        firsts.append(sampled[0])
    # The first class kept is one draw of the log-uniform distribution.
    observed = np.bincount(firsts, minlength=5)
    assert stats.chisquare(observed, 100 * p).pvalue > 1e-3
    # Counts are TensorFlow's 1 - (1 - p) ** tries; over all classes they
    # sum to num_sampled; with every class drawn each count is 1.
    _, _, every = log_uniform_candidate_sampler([[0]], 1, 5, True, 5,
                                                seed=seed)
    all_counts = log_uniform_candidate_sampler(
        np.arange(5)[:, None], 1, 3, True, 5, seed=0)[1]
    np.testing.assert_allclose(_np(all_counts).sum(), 3.0, rtol=1e-5)
    np.testing.assert_allclose(_np(every), np.ones(5), rtol=1e-6)
    tries = np.log1p(-_np(counts)) / np.log1p(-p[sampled])
    np.testing.assert_allclose(tries, tries[0], rtol=1e-4)


# (d) The layer: training rows as `reverse=True` reads them; exact logits.

@pytest.mark.parametrize("options", [
    pytest.param({}, id="plain"),
    pytest.param({"padding_idx": 2, "max_norm": 1.0, "logit_soft_cap": 3.0},
                 id="padding-maxnorm-cap"),
    pytest.param({"tie_weights": False}, id="untied"),
])
def test_layer_loss_is_the_softmax_of_its_reverse_logits(options):
    weights, inputs, labels = _problem(6, 3, 4, num_true=1)
    layer = LookupEmbedding(6, 3, weights=weights, **options)
    logits = _np(layer(inputs, reverse=True))
    # The reference logits, from NumPy.
    if options.get("tie_weights") is False:
        kernel = _np(layer.reverse_embeddings)
    else:
        table = weights.copy()
        if "padding_idx" in options:
            table[2] = 0.0
            norms = np.linalg.norm(table, axis=1, keepdims=True)
            table = table * np.minimum(1.0, 1.0 / np.maximum(norms, 1e-12))
        kernel = table.T
    want = inputs @ kernel
    if "logit_soft_cap" in options:
        want = np.tanh(want / 3.0) * 3.0
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-6)
    # Every class sampled: the training loss is exactly the softmax of the
    # inference logits.
    loss = layer.sampled_softmax_loss(labels[:, 0], inputs, 6, seed=4)
    top = want.max(axis=1, keepdims=True)
    full = (np.log(np.exp(want - top).sum(axis=1)) + top[:, 0]
            - np.take_along_axis(want, labels, axis=1)[:, 0])
    np.testing.assert_allclose(_np(loss), full, rtol=1e-5, atol=1e-6)


@on_tensorflow
def test_sparse_table_gets_only_the_read_rows():
    import tensorflow as tf

    layer = LookupEmbedding(50, 3, sparse=True)  # Built by the loss.
    labels = np.array([4, 9])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer.sampled_softmax_loss(
            labels, tf.ones((2, 3)), 4, seed=1))
    grad = tape.gradient(loss, layer.trainable_weights)[0]
    assert isinstance(grad, tf.IndexedSlices)
    assert len(set(grad.indices.numpy().tolist())) <= 6


# (e) Bad arguments.

# One test, not one per case: each case would pay a session teardown.
_BAD_ARGUMENTS = [
    ({"num_sampled": 11}, "`num_sampled` must be at most `num_classes` (10)"),
    ({"num_sampled": 0}, "`num_sampled` must be a positive"),
    ({"num_classes": 2.5}, "`num_classes` must be a positive"),
    ({"num_true": 2}, "`labels` must have shape (batch_size, num_true)"),
    ({"inputs": np.ones((3, 5), "float32")},
     "`inputs` must be float vectors of shape (batch_size, 4)"),
    ({"biases": np.ones(9, "float32")},
     "`biases` must be None or a tensor of shape (num_classes,)"),
    ({"weights": np.ones((9, 4), "float32")},
     "`weights` must be one tensor of shape (num_classes, dim)"),
    ({"sampled_values": ([1, 2], [1.0])},
     "`sampled_values` must be None or a tuple"),
    ({"remove_accidental_hits": 1},
     "`remove_accidental_hits` must be True or False"),
]


def test_bad_arguments_raise_clear_errors():
    weights, inputs, labels = _problem(10, 4, 3)
    for kwargs, message in _BAD_ARGUMENTS:
        arguments = dict(weights=weights, biases=None, labels=labels,
                         inputs=inputs, num_sampled=3, num_classes=10)
        arguments.update(kwargs)
        with pytest.raises(ValueError, match=re.escape(message)):
            sampled_softmax_loss(**arguments)
            pytest.fail(f"No error for {kwargs}")


def test_sampler_and_layer_bad_arguments():
    with pytest.raises(ValueError, match=re.escape(
            "`num_sampled` must be at most `range_max` (4) with unique=True")):
        log_uniform_candidate_sampler([[0]], 1, 5, True, 4)
    with pytest.raises(ValueError, match="`true_classes` must be an integer"):
        log_uniform_candidate_sampler([[0.5]], 1, 2, False, 4)
    with pytest.raises(ValueError, match="`unique` must be True or False"):
        log_uniform_candidate_sampler([[0]], 1, 2, "yes", 4)
    layer = LookupEmbedding(4, 2)
    with pytest.raises(ValueError, match=re.escape(
            "`num_sampled` must be at most `num_classes` (4)")):
        SampledSoftmaxLoss(layer, num_sampled=5)
    # Labels follow the invalid-id rule: out of range, or not whole.
    weights, inputs, _ = _problem(4, 2, 1)
    with pytest.raises(ValueError, match="invalid id: 4"):
        sampled_softmax_loss(weights, None, [[4]], inputs, 2, 4)
    with pytest.raises(ValueError, match="invalid id: 2.5"):
        SampledSoftmaxLoss(layer, num_sampled=2)(np.array([2.5]), inputs)


def test_public_names():
    for name in ("sampled_softmax_loss", "log_uniform_candidate_sampler",
                 "SampledSoftmaxLoss"):
        assert name in keras_embedlab.__all__ and name in dir(keras_embedlab)


def test_model_fit_dense_and_row_sparse(tmp_path):
    # `model.fit` with the loss: the exact softmax loss of the tied logits
    # falls, a new draw at every step, exact logits at inference. A
    # `sparse=True` table under `RowSparseModel` gets the dense table's
    # update (plain SGD: rows no lookup read have a zero gradient).
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, (32, 2)).astype("int32")
    labels = ((ids[:, 0] + 1) % 20).astype("int32")
    table = rng.normal(size=(20, 4)).astype("float32")
    tables = []
    for sparse in (False, True):
        embedding = LookupEmbedding(20, 4, weights=table, sparse=sparse)
        inputs = keras.Input((2,), dtype="int32")
        hidden = keras.layers.GlobalAveragePooling1D()(embedding(inputs))
        model_class = keras_embedlab.RowSparseModel if sparse else keras.Model
        model = model_class(inputs, hidden)
        optimizer = (keras_embedlab.SparseSGD(1.0) if sparse
                     else keras.optimizers.SGD(1.0))
        loss = SampledSoftmaxLoss(embedding, num_sampled=5, seed=2)
        model.compile(optimizer, loss=loss)
        start = _np(loss.seed_generator.state)

        def full_loss():  # The exact softmax loss of the tied logits.
            return _full_softmax(_np(embedding.embeddings),
                                 _np(model(ids)), labels[:, None]).mean()

        before = full_loss()
        history = model.fit(ids, labels, batch_size=8, epochs=3, verbose=0,
                            shuffle=False)
        assert np.isfinite(history.history["loss"]).all()
        tables.append(_np(embedding.embeddings))
        if sparse:
            continue
        assert full_loss() < 0.95 * before, (before, full_loss())
        # The seed state moved on (JAX's fit keeps only the model's state).
        assert not np.array_equal(_np(loss.seed_generator.state), start)
        vectors = model.predict(ids[:4], verbose=0)
        np.testing.assert_allclose(
            _np(embedding(vectors, reverse=True)),
            vectors @ tables[0].T, rtol=1e-5, atol=1e-5)
        # Saved and reloaded: the seed is no weight; the loss, which knows
        # the layer by name only, asks to compile again.
        model.save(tmp_path / "model.keras")
        reloaded = keras.saving.load_model(tmp_path / "model.keras")
        assert len(reloaded.weights) == len(model.weights) == 1
        with pytest.raises(ValueError, match="Compile the model again"):
            reloaded.fit(ids, labels, verbose=0)
    np.testing.assert_allclose(tables[1], tables[0], rtol=1e-5, atol=1e-5)
