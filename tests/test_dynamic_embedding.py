"""`DynamicEmbedding`: its map and rows against a NumPy reference policy."""

import os

import keras
import numpy as np
import pytest
from helpers import assert_close, to_numpy

import keras_embedlab as kel
from keras_embedlab.backend import keeps_int64

# JAX without x64: the layer's ids are int32 (and it says so at build).
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Layer '.*' \(DynamicEmbedding\) runs on JAX without x64")
ID_DTYPE = "int64" if keeps_int64() else "int32"
INT32_MAX = 2**31 - 1
CAPACITY, DIM, BUCKETS = 16, 3, 32
STEPS, BATCH, BAG = 8, 4, 8


def _stream(seed=0):
    """Zipf ranks over 150 raw ids: 64-bit ones where the backend keeps
    them, the dtype's largest id (the index's padding key) among them."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(ID_DTYPE)
    ids = rng.integers(info.min // 2, info.max // 2, 150, dtype=np.int64)
    ids[1] = info.max
    ids[3] = -5
    ranks = rng.zipf(1.3, size=(STEPS, BATCH, BAG))
    return ids[(ranks - 1) % len(ids)]


class Reference:
    """The class docstring's policy, one id at a time, in plain Python."""

    def __init__(self, capacity, min_count, policy, buckets, mask_zero=False):
        self.capacity, self.min_count, self.policy = capacity, min_count, policy
        self.buckets, self.mask_zero = buckets, mask_zero
        self.owner = {}  # id -> slot
        self.slot_ids = np.zeros(capacity, np.int64)
        self.counts = np.zeros(capacity, np.int64)
        self.last_seen = np.zeros(capacity, np.int64)
        self.admitted = np.zeros(capacity, np.int64)
        self.sketch = np.zeros((2, buckets), np.int64)
        self.size = self.step_count = 0
        self.reclaimed = 0  # evictions so far (the test is not vacuous)

    def _cells(self, raw_id):
        return kel.hash_ids(np.array([raw_id], np.int64), self.buckets, 0,
                            2)[0]

    def step(self, batch):
        """Updates the map; returns the batch's slots and the set of slots
        given to a new id."""
        self.step_count += 1
        t = self.step_count
        uniq, times = np.unique(batch, return_counts=True)
        protected, misses = set(), []
        for raw_id, k in zip(uniq.tolist(), times.tolist()):
            if self.mask_zero and raw_id == 0:
                continue
            if raw_id in self.owner:
                slot = self.owner[raw_id]
                self.counts[slot] = min(self.counts[slot] + k, INT32_MAX)
                self.last_seen[slot] = t
                protected.add(slot)
            else:
                for row, cell in enumerate(self._cells(raw_id)):
                    self.sketch[row, cell] = min(self.sketch[row, cell] + k,
                                                 INT32_MAX)
                misses.append(raw_id)
        candidates = []
        for raw_id in misses:
            estimate = min(self.sketch[row, cell]
                           for row, cell in enumerate(self._cells(raw_id)))
            if estimate >= self.min_count:
                candidates.append((-estimate, raw_id))
        candidates.sort()
        if self.policy == "lfu":
            def rank(s):
                return (self.counts[s], self.last_seen[s], s)
        else:
            def rank(s):
                return (self.last_seen[s], s)
        targets = list(range(self.size, self.capacity)) + sorted(
            (s for s in range(self.size) if s not in protected), key=rank)
        fresh = {}
        for (negative, raw_id), slot in zip(candidates, targets):
            if (slot >= self.size or self.policy == "lru"
                    or -negative > self.counts[slot]):
                fresh[slot] = (raw_id, -negative)
        for slot, (raw_id, estimate) in fresh.items():
            if slot < self.size:
                del self.owner[int(self.slot_ids[slot])]
                self.reclaimed += 1
            self.owner[raw_id] = slot
            self.slot_ids[slot], self.counts[slot] = raw_id, estimate
            self.last_seen[slot] = self.admitted[slot] = t
        self.size += sum(slot >= self.size for slot in fresh)
        slots = np.array([self.owner.get(i, self.capacity)
                          if not (self.mask_zero and i == 0)
                          else self.capacity for i in batch.reshape(-1)])
        return slots.reshape(batch.shape), set(fresh)

    def lookup(self, batch):
        """Read-only: the slots of a batch in the current map."""
        return np.vectorize(lambda i: self.owner.get(i, self.capacity))(
            batch)

    def check(self, layer):
        """The layer's map equals this one."""
        n = self.size
        assert int(to_numpy(layer.size)) == n
        assert int(to_numpy(layer.step)) == self.step_count
        for name, expected in (("slot_ids", self.slot_ids),
                               ("slot_counts", self.counts),
                               ("slot_last_seen", self.last_seen),
                               ("slot_admitted", self.admitted)):
            np.testing.assert_array_equal(
                to_numpy(getattr(layer, name))[:n], expected[:n], name)
        np.testing.assert_array_equal(to_numpy(layer.id_counts), self.sketch)


def _rows(table, reset, slots, fresh):
    """What the layer reads: fresh slots their reset row."""
    rows = table[slots].copy()
    for index in np.ndindex(slots.shape):
        if slots[index] in fresh:
            rows[index] = reset[slots[index] % len(reset)]
    return rows


@pytest.mark.parametrize("policy,min_count", [
    pytest.param("lfu", 2, id="lfu-min2"),
    pytest.param("lru", 1, id="lru-min1"),
])
def test_eager_map_and_outputs_equal_reference(policy, min_count):
    stream = _stream()
    layer = kel.DynamicEmbedding(CAPACITY, DIM, min_count, policy,
                                 count_buckets=BUCKETS)
    reference = Reference(CAPACITY, min_count, policy, BUCKETS)
    for batch in stream:
        outputs = layer(batch, training=True)
        slots, fresh = reference.step(batch)
        reference.check(layer)
        np.testing.assert_array_equal(to_numpy(layer.slots(batch)), slots)
        assert_close(outputs, _rows(to_numpy(layer.embeddings),
                                    to_numpy(layer.reset_rows), slots,
                                    fresh), atol=0)
    assert reference.reclaimed > 0 and reference.size == CAPACITY


def _dot_loss(y_true, y_pred):
    return keras.ops.sum(y_true * y_pred, axis=(1, 2))


class _ReferenceOptimizer:
    """The row-sparse rules in NumPy, with the reset of reclaimed rows."""

    def __init__(self, kind, table):
        self.kind, self.table = kind, table.copy()
        self.slots = [np.zeros_like(table) for _ in range(
            2 if kind == "lazy_adam" else 1)]
        self.iterations = 0

    def step(self, slots, fresh, reset, cotangent):
        for slot in fresh:
            self.table[slot] = reset[slot % len(reset)]
            for s in self.slots:
                s[slot] = 0
        grads = np.zeros_like(self.table)
        np.add.at(grads, slots.reshape(-1),
                  cotangent.reshape(-1, DIM) / len(slots))
        rows = np.flatnonzero(np.any(grads != 0, axis=1))
        g = grads[rows]
        self.iterations += 1
        if self.kind == "lazy_adam":
            lr, b1, b2, eps, t = 0.05, 0.9, 0.999, 1e-7, self.iterations
            m, v = self.slots
            m[rows] += (g - m[rows]) * (1 - b1)
            v[rows] += (g * g - v[rows]) * (1 - b2)
            alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            self.table[rows] -= alpha * m[rows] / (np.sqrt(v[rows]) + eps)
        else:
            (velocity,) = self.slots
            velocity[rows] = 0.5 * velocity[rows] - 0.1 * g
            self.table[rows] += velocity[rows]


@pytest.mark.parametrize("policy,optimizer", [
    pytest.param("lfu", "lazy_adam", id="lfu-LazyAdam"),
    pytest.param("lru", "sparse_sgd", id="lru-SparseSGD-momentum"),
])
def test_fit_steps_equal_reference(policy, optimizer):
    stream = _stream(1)
    cotangents = np.random.default_rng(2).normal(
        size=stream.shape + (DIM,)).astype("float32")
    layer = kel.DynamicEmbedding(CAPACITY, DIM, 2, policy,
                                 count_buckets=BUCKETS)
    inputs = keras.Input((BAG,), dtype=ID_DTYPE)
    model = kel.RowSparseModel(inputs, layer(inputs))
    opt = (kel.LazyAdam(0.05) if optimizer == "lazy_adam"
           else kel.SparseSGD(0.1, momentum=0.5))
    model.compile(opt, _dot_loss)
    reference = Reference(CAPACITY, 2, policy, BUCKETS)
    expected = _ReferenceOptimizer(optimizer, to_numpy(layer.embeddings))
    reset = to_numpy(layer.reset_rows)
    for batch, cotangent in zip(stream, cotangents):
        if optimizer == "lazy_adam":
            model.fit(batch, cotangent, batch_size=BATCH, shuffle=False,
                      verbose=0)
        else:  # The same compiled step, without fit's per-call overhead.
            model.train_on_batch(batch, cotangent)
        slots, fresh = reference.step(batch)
        expected.step(slots, fresh, reset, cotangent)
        reference.check(layer)
        assert_close(layer.embeddings, expected.table)
        index = opt._get_variable_index(layer.embeddings)
        got = ([opt._momentums[index], opt._velocities[index]]
               if optimizer == "lazy_adam" else [opt.momentums[index]])
        for slot, want in zip(got, expected.slots):
            assert_close(slot, want)
    assert reference.reclaimed > 0
    # Inference reads the map and changes nothing.
    state = [to_numpy(v) for v in layer.non_trainable_variables]
    np.testing.assert_allclose(
        model.predict(stream[-1], verbose=0),
        expected.table[reference.lookup(stream[-1])], rtol=0, atol=1e-6)
    assert_close(layer(stream[0]), expected.table[to_numpy(
        layer.slots(stream[0]))])
    for before, variable in zip(state, layer.non_trainable_variables):
        np.testing.assert_array_equal(to_numpy(variable), before)


def test_save_load_keeps_map_and_outputs(tmp_path):
    stream = _stream(3)
    layer = kel.DynamicEmbedding(CAPACITY, DIM, policy="lru", mask_zero=True,
                                 max_norm=0.05)
    for batch in stream[:4]:
        layer(batch, training=True)
    inputs = keras.Input((BAG,), dtype=ID_DTYPE)
    model = keras.Model(inputs, layer(inputs))
    path = os.path.join(tmp_path, "dynamic.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    twin = loaded.layers[-1]
    assert type(twin) is kel.DynamicEmbedding
    assert twin.get_config() == layer.get_config()
    for mine, theirs in zip(layer.weights, twin.weights):
        assert mine.path.split("/")[-1] == theirs.path.split("/")[-1]
        np.testing.assert_array_equal(to_numpy(theirs), to_numpy(mine))
    assert_close(loaded(stream[5]), model(stream[5]), atol=0)
    # The same next training step from both.
    assert_close(twin(stream[6], training=True),
                 layer(stream[6], training=True), atol=0)
    np.testing.assert_array_equal(to_numpy(twin.slot_ids),
                                  to_numpy(layer.slot_ids))


def test_mask_zero_never_admits_padding():
    # The shapes of the other eager tests (JAX compiles each op once).
    layer = kel.DynamicEmbedding(CAPACITY, DIM, mask_zero=True,
                                 count_buckets=BUCKETS)
    reference = Reference(CAPACITY, 1, "lfu", BUCKETS, mask_zero=True)
    batch = np.zeros((BATCH, BAG), np.int64)
    batch[0, 2] = batch[1, 0] = 5
    batch[1, 1] = 9
    outputs = layer(batch, training=True)
    slots, _ = reference.step(batch)
    reference.check(layer)
    assert reference.size == 2
    np.testing.assert_array_equal(to_numpy(layer.slots(batch))[batch != 0],
                                  slots[batch != 0])
    np.testing.assert_array_equal(to_numpy(layer.compute_mask(batch)),
                                  batch != 0)
    oov = to_numpy(layer.embeddings)[CAPACITY]
    np.testing.assert_array_equal(to_numpy(outputs)[batch == 0],
                                  np.broadcast_to(oov, (29, DIM)))


def test_sparse_sgd_without_momentum_resets_reclaimed_rows():
    # capacity 1: every new id takes the only slot (LRU) and restarts from
    # reset_rows[0], then moves by -lr * its cotangent.
    layer = kel.DynamicEmbedding(1, 2, policy="lru")
    inputs = keras.Input((1,), dtype=ID_DTYPE)
    model = kel.RowSparseModel(inputs, layer(inputs))
    model.compile(kel.SparseSGD(1.0), _dot_loss)
    reset = to_numpy(layer.reset_rows)[0]
    for raw_id in (11, 12):
        cotangent = np.full((1, 1, 2), raw_id, "float32")
        model.fit(np.array([[raw_id]]), cotangent, verbose=0)
        np.testing.assert_allclose(to_numpy(layer.embeddings)[0],
                                   reset - raw_id, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"capacity": 0}, "`capacity` must be a positive integer"),
    ({"min_count": 0}, "`min_count` must be a positive integer"),
    ({"policy": "fifo"}, "`policy`"),
    ({"count_buckets": -1}, "`count_buckets` must be a positive integer"),
    ({"combiner": "sum"}, "has no `combiner`"),
    ({"sparse": False}, "has no `sparse`"),
])
def test_argument_errors(kwargs, match):
    arguments = {"capacity": 4, "output_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        kel.DynamicEmbedding(**arguments)


def test_refuses_reverse_floats_and_quantization():
    layer = kel.DynamicEmbedding(4, 2)
    with pytest.raises(ValueError, match="reverse=True"):
        layer(np.ones((1, 2), "float32"), reverse=True)
    with pytest.raises(TypeError, match="integer ids"):
        layer(np.ones((1, 2), "float32"))
    with pytest.raises(TypeError, match="integer ids"):
        layer(keras.Input((2,), dtype="float32"))
    with pytest.raises(NotImplementedError):
        layer.quantize("int8")


@pytest.mark.skipif(keeps_int64(),
                    reason="only JAX without x64 narrows int64 ids")
def test_jax_without_x64_refuses_int64_ids():
    with pytest.warns(UserWarning, match="JAX_ENABLE_X64=1"):
        layer = kel.DynamicEmbedding(CAPACITY, DIM, count_buckets=BUCKETS)
        layer.build()
    big = np.zeros((BATCH, BAG), np.int64)
    big[0, 0] = 2**31 + 7
    with pytest.raises(ValueError, match=r"`inputs` \(NumPy int64"):
        layer(big)
    with pytest.raises(ValueError, match="`inputs` of dtype int64"):
        layer(keras.Input((BAG,), dtype="int64"))
    small = np.zeros((BATCH, BAG), np.int64)  # fits in int32: accepted
    small[0, :2] = INT32_MAX, -2**31
    layer(small, training=True)
    reference = Reference(CAPACITY, 1, "lfu", BUCKETS)
    slots, _ = reference.step(small)
    reference.check(layer)
    np.testing.assert_array_equal(to_numpy(layer.slots(small)), slots)
    assert reference.size == 3


def test_export_reads_the_map(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("checked on TensorFlow: Keras exports no SavedModel "
                    "from PyTorch, and from JAX through jax2tf (6 s here)")
    import tensorflow as tf
    stream = _stream(4)
    layer = kel.DynamicEmbedding(CAPACITY, DIM, count_buckets=BUCKETS)
    for batch in stream[:3]:
        layer(batch, training=True)
    inputs = keras.Input((BAG,), dtype=ID_DTYPE)
    model = keras.Model(inputs, layer(inputs))
    state = [to_numpy(v) for v in layer.non_trainable_variables]
    path = os.path.join(tmp_path, "exported")
    model.export(path, format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(path)
    served = reloaded.serve(tf.constant(stream[3].astype(ID_DTYPE)))
    np.testing.assert_array_equal(np.asarray(served),
                                  to_numpy(model(stream[3])))
    for before, variable in zip(state, layer.non_trainable_variables):
        np.testing.assert_array_equal(to_numpy(variable), before)
