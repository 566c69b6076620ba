"""`DynamicEmbedding`: raw ids -> slots of a fixed table, assigned in training.

The id -> slot map is fixed-size state in non-trainable variables, updated
with `keras.ops` inside the training step (`tf.function`, JAX `jit` through
Keras's stateless variables, PyTorch): a sorted copy of the slot owners
searched with `searchsorted`, O(batch log batch + capacity log capacity) per
step, never O(batch x capacity). See the class docstring for the policy.
"""

import warnings
from typing import Any

import keras
import numpy as np
from keras import initializers, ops
from keras.backend import standardize_dtype

from keras_embedlab import backend
from keras_embedlab.hashing.ids import hash_ids, raw_host_ids
from keras_embedlab.ids import reader
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.sparse_updates.mark import RESET_ATTRIBUTE
from keras_embedlab.table.storage import gather_valid
from keras_embedlab.utils.argument_checks import (
    check_choice,
    check_positive_int,
    received,
)

SUPPORTED_POLICIES = ("lfu", "lru")
# Count-min sketch of the sightings of ids without a slot: rows x buckets.
COUNT_HASHES = 2
COUNT_SEED = 0
MAX_COUNT_BUCKETS = 2**30 - 1
# Rows drawn once with the initializer, that reclaimed slots restart from.
MAX_RESET_ROWS = 1024
_INT32_MAX = 2**31 - 1
# `LookupEmbedding` arguments that have no meaning here.
_REFUSED = {
    "input_dim": "the table has `capacity + 1` rows",
    "invalid_ids": "every integer is a valid raw id",
    "padding_idx": "rows change owner; mask_zero=True makes raw id 0 "
                   "padding",
    "sparse": "the table is always trained row by row",
    "combiner": "bags are not supported",
    "weights": "rows are assigned during training",
    "lora_rank": "the table is trained row by row",
    "lora_alpha": "the table is trained row by row",
    "quantization_config": "the table changes during training",
    "tie_weights": "`reverse=True` is not supported",
    "reverse_dtype": "`reverse=True` is not supported",
    "logit_soft_cap": "`reverse=True` is not supported",
}
# (name, dtype kind) of the map's state, in saved order.
_STATE = (("slot_ids", "id"), ("sorted_ids", "id"), ("sorted_slots", "int32"),
          ("slot_counts", "int32"), ("slot_last_seen", "int32"),
          ("slot_admitted", "int32"), ("size", "int32"), ("step", "int32"),
          ("id_counts", "int32"))


def _saturating_add(a, b):
    """int32 `a + b` for `b >= 0`, stopping at 2**31 - 1."""
    return a + ops.minimum(b, _INT32_MAX - a)


def _segment_count(values, segments, size):
    """int32 sums of `values` per segment in `[0, size)`; segment `size`
    is dropped."""
    sums = ops.segment_sum(values, segments, num_segments=size + 1)
    return ops.cast(sums[:size], "int32")


def _serving_searchsorted(sorted_values, values, size):
    """`searchsorted(sorted_values, values, side="left")` for a sorted 1-D
    tensor of static `size`, as a fixed number of comparisons and gathers
    (a branchless binary search): the form every serving format carries
    (ONNX, LiteRT's builtin ops and OpenVINO have no `searchsorted`)."""
    count = ops.zeros_like(values, dtype="int32")  # Elements < values.
    step = 1 << (size.bit_length() - 1)
    while step:
        probe = count + step
        below = ops.less(
            gather_valid(sorted_values, ops.minimum(probe, size) - 1), values)
        count = ops.where(ops.logical_and(ops.less_equal(probe, size),
                                          below), probe, count)
        step >>= 1
    return count


def _shape_for_export(ids):
    """`ids`'s shape for a reshape: -1 for the batch axis where the other
    axes are static (exporters with a symbolic batch size refuse a shape
    read from the tensor), else the shape read from the tensor."""
    rest = tuple(ids.shape[1:])
    if len(ids.shape) and all(isinstance(d, int) for d in rest):
        return (-1, *rest)
    return ops.shape(ids)


def _lexsort(keys, size):
    """Indices sorting `arange(size)` by `keys` (first key first), then
    by index: stable sorts from the last key to the first."""
    order = ops.arange(size, dtype="int32")
    for key in reversed(keys):
        order = ops.take(order, backend.stable_argsort(ops.take(key, order)))
    return order


@keras.saving.register_keras_serializable(package="keras_embedlab")
class DynamicEmbedding(LookupEmbedding):
    """Raw integer ids -> rows of a fixed table whose slots training assigns.

    A table of `capacity` rows for the ids seen in training, plus one shared
    out-of-vocabulary (OOV) row, row `capacity`, for every id without a
    slot. An id gets a slot once it was seen `min_count` times; when the
    table is full, new ids take the slots of the least frequently (`"lfu"`)
    or least recently (`"lru"`) used ids. A reclaimed row restarts from an
    initial value, and so do its optimizer slots (`LazyAdam`, `SparseSGD`,
    `SparseAdagrad`): the new id inherits nothing from the old one.

    The map changes only in training calls (`training=True`, e.g.
    `model.fit`) of a trainable layer; inference, `predict`, `evaluate` and
    export read it. It lives in non-trainable variables of fixed size, saved
    with the model. The table is always row-sparse (`sparse=True`): train it
    in a `keras_embedlab.RowSparseModel` (which refuses other optimizers)
    with a row-sparse optimizer, which re-initialises reclaimed rows. A
    Keras optimizer in a `keras.Model` would train the table without that
    reset: a new id would start from the evicted id's row.

    **Policy**, for each training call, on the batch's ids (all positions;
    with `mask_zero`, id 0 is ignored and never gets a slot), with `t` the
    call's number (1, 2, ...):

    1. Each distinct id is looked up in the map as it was before the call.
       Its sightings `k` are its occurrences in the batch.
    2. Ids with a slot: the slot's count grows by `k` and its last use
       becomes `t`. These slots are *protected* for this call.
    3. Ids without a slot: their `k` is added to a count-min sketch of
       `COUNT_HASHES` (2) rows of `count_buckets` int32 counters (bucket of
       row `j`: word `j` of `hash_ids(id, count_buckets, seed=0)`); the
       id's estimate `c` is the smallest of its counters once every id of
       the call has been added.
       It is a candidate if `c >= min_count`. When each of an id's
       counters is shared with other ids, `c` exceeds its own sightings
       and it may be admitted early (never late). Counters are never
       cleared: an evicted id that returns is a candidate at once. Counts
       stop at 2**31 - 1.
    4. Candidates are ranked by `c`, largest first, then by id, smallest
       first. Target slots are ranked: free slots first (by slot index),
       then unprotected slots — `"lfu"`: by count, then last use, then
       index, smallest first; `"lru"`: by last use, then index — then
       protected slots.
    5. The `i`-th candidate takes the `i`-th target slot if the slot is
       free, or unprotected and (`"lru"`) always, (`"lfu"`) if `c` is
       larger than the slot's count (ties keep the resident). The slot's
       count becomes `c`, its last use `t`; its row is re-initialised.
    6. The batch is then looked up in the updated map: every id with a slot
       reads its row (newly admitted ids their fresh row), every other id
       the OOV row. Occupied slots are always `[0, size)`.

    A slot's count is thus its id's total sightings (as estimated when it
    was admitted, then counted exactly); it never decays, so old popular ids
    stay under `"lfu"`. A reclaimed row restarts from row
    `slot % min(capacity, 1024)` of `reset_rows`, a non-trainable table
    drawn once with `embeddings_initializer`; optimizer slots restart from
    their initial values (0; `SparseAdagrad`: `initial_accumulator_value`).
    The layer expects one call per training step (the optimizer resets the
    rows reclaimed by the step's last call); its step counter is int32
    (2**31 - 1 training calls).

    Memory besides the table: per slot, two ids (owner, sorted owner: 16
    bytes, 8 on JAX without x64) and four int32 (32 or 24 bytes in all),
    the sketch's `2 * count_buckets` int32 (16 bytes per slot by default)
    and `reset_rows`. The sketch never forgets: over a long stream of
    distinct ids its counters only grow, and once most exceed `min_count`
    nearly every id is admitted at first sight; size `count_buckets` for
    the stream, or keep `min_count=1`.

    Cost of a training call: sorts of the batch's ids and two or three
    stable sorts of `capacity` entries (the victims' ranking and the
    search index), plus passes over the slots and the sketch; never a
    `(batch, capacity)` tensor. Inference is one `searchsorted`.

    How this policy compares with torchrec's managed-collision modules:
    docs/ARCHITECTURE.md, "Dynamic slots".

    Args:
        capacity: Integer, the slots (the table has `capacity + 1` rows).
        output_dim: Integer. Dimension of each embedding vector.
        min_count: Positive integer: sightings before an id gets a slot.
        policy: `"lfu"` (default) or `"lru"`: which slots are reclaimed.
        count_buckets: Optional integer in `[1, 2**30 - 1]` (default
            `2 * capacity`): counters per row of the admission sketch.
        embeddings_initializer: Initializer of the table and of
            `reset_rows`.
        mask_zero: Boolean. If `True`, raw id 0 is padding: masked, never
            admitted, reading the OOV row.
        max_norm, norm_type: as `LookupEmbedding`.
        **kwargs: Base layer arguments such as `name`, `dtype`, `trainable`.

    Call arguments:
        inputs: Integer tensor of raw ids, any rank and value (int8 to
            int64, or NumPy arrays of any integer dtype; uint64 ids are
            their int64 bit patterns). On JAX without x64 ids are int32:
            int64 tensors and NumPy ids outside int32 are refused rather
            than narrowed; Keras's JAX trainer narrows int64 batches
            before any layer runs, so the layer warns when built there
            (set `JAX_ENABLE_X64=1` for 64-bit ids).
        training: Boolean: whether the call updates the map.

    Input shape:
        Any shape `ids_shape`.

    Output shape:
        `ids_shape + (output_dim,)`.

    Example:

    >>> layer = DynamicEmbedding(capacity=4, output_dim=2)
    >>> ids = np.array([[10**9, 7, 7]])
    >>> _ = layer(ids, training=True)  # 10**9 and 7 get slots
    >>> keras.ops.convert_to_numpy(layer.slots(ids)).tolist()
    [[1, 0, 0]]
    """

    def __init__(
        self,
        capacity: int,
        output_dim: int,
        min_count: int = 1,
        policy: str = "lfu",
        *,
        count_buckets: int | None = None,
        embeddings_initializer: Any = "uniform",
        mask_zero: bool = False,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        **kwargs: Any,
    ) -> None:
        for name, why in _REFUSED.items():
            if name in kwargs:
                raise ValueError(
                    f"`DynamicEmbedding` has no `{name}`: {why}. Received: "
                    f"{name}={kwargs[name]!r}. Remove it.")
        check_positive_int("capacity", capacity)
        if capacity > _INT32_MAX - 1:
            raise ValueError("`capacity` must be below 2**31 - 1 (slots are "
                             "int32). " + received("capacity", capacity))
        check_positive_int("min_count", min_count)
        check_choice("policy", policy, SUPPORTED_POLICIES)
        if count_buckets is not None:
            check_positive_int("count_buckets", count_buckets)
            if count_buckets > MAX_COUNT_BUCKETS:
                raise ValueError(
                    f"`count_buckets` must be at most {MAX_COUNT_BUCKETS} "
                    "(counter indices are int32). "
                    + received("count_buckets", count_buckets))
        super().__init__(
            capacity + 1, output_dim,
            embeddings_initializer=embeddings_initializer,
            mask_zero=mask_zero, sparse=True, invalid_ids="zeros",
            max_norm=max_norm, norm_type=norm_type, **kwargs)
        self.capacity = capacity
        self.min_count = min_count
        self.policy = policy
        self.count_buckets = count_buckets
        self._buckets = min(count_buckets or 2 * capacity,
                            MAX_COUNT_BUCKETS)
        self._reset_size = min(capacity, MAX_RESET_ROWS)
        self._id_dtype = "int64" if backend.keeps_int64() else "int32"

    def build(self, input_shape=None):
        if self.built:
            return
        if not backend.keeps_int64():
            # The one narrowing the layer cannot see (as HashedEmbedding).
            warnings.warn(
                f"Layer '{self.name}' (DynamicEmbedding) runs on JAX "
                "without x64: its ids are int32, and Keras narrows int64 "
                "batches given to fit/predict/evaluate to int32 before any "
                "layer runs, so ids of 2**31 or more would silently share "
                "slots. Set JAX_ENABLE_X64=1 for 64-bit ids. Ignore this "
                "warning if every id fits in int32.", stacklevel=2)
        super().build(input_shape)

    def _finish_build(self):
        capacity = self.capacity
        shapes = {"id_counts": (COUNT_HASHES, self._buckets), "size": (),
                  "step": ()}
        for name, kind in _STATE:
            dtype = self._id_dtype if kind == "id" else kind
            setattr(self, name, self.add_weight(
                shape=shapes.get(name, (capacity,)), initializer="zeros",
                dtype=dtype, trainable=False, name=name, autocast=False))
        self.reset_rows = self.add_weight(
            shape=(self._reset_size, self.output_dim),
            initializer=self.embeddings_initializer, trainable=False,
            name="reset_rows", autocast=False)
        setattr(self._embeddings, RESET_ATTRIBUTE, self._reclaimed_rows)
        super()._finish_build()

    # Ids.

    def _host_ids(self, ids):
        """NumPy raw ids: every integer is valid; never silently narrowed."""
        return raw_host_ids(ids, self.name, lambda: self._narrowed_error(
            "`inputs` (NumPy int64 ids outside int32)"))

    def _narrowed_error(self, what):
        return ValueError(
            f"Layer '{self.name}' (DynamicEmbedding) receives {what}, but "
            "JAX without x64 narrows int64 to int32 before any layer runs, "
            "and the layer keeps int32 ids there: ids of 2**31 or more "
            "would silently share a slot. Set JAX_ENABLE_X64=1 (64-bit "
            "ids), or map the ids to int32 in the input pipeline yourself, "
            "e.g. keras_embedlab.hash_ids(ids, 2**31 - 1, num_hashes=1)"
            "[..., 0] (the collisions are then your choice).")

    def _check_symbolic_ids(self, dtype):
        reader.check_id_dtype(dtype, self.name)
        if "int" not in dtype:
            raise TypeError(
                f"Layer '{self.name}' (DynamicEmbedding) takes integer ids. "
                f"Received ids of dtype {dtype}. Give the model an integer "
                "input, e.g. keras.Input(shape, dtype='int64').")
        if dtype in ("int64", "uint64", "uint32") and \
                not backend.keeps_int64():
            raise self._narrowed_error(f"`inputs` of dtype {dtype}")

    # The map.

    def _find(self, ids, sorted_ids, sorted_slots, size):
        """Slots of 1-D ids in a map; `capacity` (the OOV row) if none."""
        if backend.serving_graph(ids):
            position = _serving_searchsorted(sorted_ids, ids, self.capacity)
        else:
            position = ops.searchsorted(sorted_ids, ids, side="left")
        position = ops.minimum(position, self.capacity - 1)
        slot = gather_valid(sorted_slots, position)
        found = ops.logical_and(
            ops.equal(gather_valid(sorted_ids, position), ids),
            ops.less(slot, ops.cast(size, slot.dtype)))
        return ops.where(found, slot, ops.full_like(slot, self.capacity))

    def slots(self, ids: Any) -> Any:
        """The slot of each raw id in the current map (read-only);
        `capacity` for ids without one (the OOV row)."""
        if isinstance(ids, (np.ndarray, list, tuple)):
            ids = self._host_ids(np.asarray(ids))
        ids = ops.convert_to_tensor(ids)
        self._check_symbolic_ids(standardize_dtype(ids.dtype))
        flat = ops.reshape(ops.cast(ids, self._id_dtype), (-1,))
        found = self._find(flat, self.sorted_ids.value,
                           self.sorted_slots.value, self.size.value)
        return ops.reshape(found, _shape_for_export(ids))

    def _admit(self, ids, keep):
        """One training call's update of the map (the class docstring's
        steps 1-5); assigns the new state, returns `(sorted_ids,
        sorted_slots, size, slot_admitted, step)`."""
        capacity = self.capacity
        id_dtype = self._id_dtype
        step = self.step.value + 1
        size = self.size.value
        counts = self.slot_counts.value
        last_seen = self.slot_last_seen.value
        n = ops.shape(ids)[0]
        # 1. Distinct ids (the first of each run of the sorted batch) and
        # their sightings.
        before = self._find(ids, self.sorted_ids.value,
                            self.sorted_slots.value, size)
        order = ops.argsort(ids)
        ordered = ops.take(ids, order)
        kept = ops.take(keep, order)
        slot = ops.cast(ops.take(before, order), "int32")
        first = ops.concatenate([
            ops.ones((1,), "bool"),
            ops.not_equal(ordered[1:], ordered[:-1])])
        seen_times = ops.cast(
            ops.searchsorted(ordered, ordered, side="right")
            - ops.searchsorted(ordered, ordered, side="left"), "int32")
        seen_times = ops.where(kept, seen_times, 0)
        distinct = ops.logical_and(first, kept)
        hit = ops.logical_and(distinct, ops.less(slot, capacity))
        miss = ops.logical_and(distinct, ops.logical_not(hit))
        # 2. Residents: count and last use; protected for this call.
        where_hit = ops.where(hit, slot, capacity)
        counts = _saturating_add(counts, _segment_count(
            ops.where(hit, seen_times, 0), where_hit, capacity))
        protected = _segment_count(ops.cast(hit, "int32"), where_hit,
                                   capacity) > 0
        last_seen = ops.where(protected, step, last_seen)
        # 3. Newcomers: the count-min sketch.
        buckets = self._buckets
        cells = hash_ids(ordered, buckets, COUNT_SEED, COUNT_HASHES)
        cells = cells + ops.arange(COUNT_HASHES, dtype="int32") * buckets
        total = COUNT_HASHES * buckets
        where_miss = ops.reshape(
            ops.where(ops.expand_dims(miss, -1), cells, total), (-1,))
        sightings = ops.reshape(ops.repeat(
            ops.expand_dims(seen_times, -1), COUNT_HASHES, axis=-1), (-1,))
        id_counts = _saturating_add(
            ops.reshape(self.id_counts.value, (-1,)),
            _segment_count(sightings, where_miss, total))
        estimate = ops.min(ops.take(id_counts, cells), axis=-1)
        candidate = ops.logical_and(
            miss, ops.greater_equal(estimate, self.min_count))
        # 4. Candidates (largest estimate, then smallest id: `ordered` is
        # sorted by id) against target slots, position by position.
        ranked = backend.stable_argsort(
            ops.where(candidate, -estimate, 1))
        position = ops.arange(capacity, dtype="int32")
        pick = ops.take(ranked, ops.minimum(position, n - 1))
        in_batch = ops.less(position, n)
        pick_candidate = ops.logical_and(ops.take(candidate, pick), in_batch)
        pick_estimate = ops.take(estimate, pick)
        pick_id = ops.take(ordered, pick)
        free = ops.greater_equal(position, size)
        kind = ops.where(free, 0, ops.where(protected, 2, 1))
        # The target order, the kind folded into the keys: free slots
        # first (-1), protected ones last (the largest count and last use).
        first, last = ops.full_like(counts, -1), ops.full_like(counts,
                                                               _INT32_MAX)
        recency = ops.where(free, first, ops.where(protected, last,
                                                   last_seen))
        if self.policy == "lfu":
            keys = [ops.where(free, first, ops.where(protected, last,
                                                     counts)), recency]
            if id_dtype == "int64":  # One sort of (count, recency) pairs.
                keys = [ops.cast(keys[0], "int64") * 2**32
                        + ops.cast(recency, "int64") + 1]
        else:
            keys = [recency]
        targets = _lexsort(keys, capacity)
        target_kind = ops.take(kind, targets)
        replaces = ops.equal(target_kind, 1)
        if self.policy == "lfu":
            replaces = ops.logical_and(replaces, ops.greater(
                pick_estimate, ops.take(counts, targets)))
        admit = ops.logical_and(pick_candidate, ops.logical_or(
            ops.equal(target_kind, 0), replaces))
        # 5. The winners, slot by slot (`inverse`: a slot's rank; `targets`
        # is a permutation).
        inverse = ops.scatter_update(ops.zeros((capacity,), "int32"),
                                     ops.expand_dims(targets, -1), position)
        won = ops.take(admit, inverse)
        slot_ids = ops.where(won, ops.take(pick_id, inverse),
                             self.slot_ids.value)
        counts = ops.where(won, ops.take(pick_estimate, inverse), counts)
        last_seen = ops.where(won, step, last_seen)
        admitted = ops.where(won, step, self.slot_admitted.value)
        size = size + ops.sum(ops.cast(ops.logical_and(won, free), "int32"))
        # The search index: owners sorted, free slots last (their key is
        # the largest id; the stable sort puts a resident of that id first).
        largest = np.iinfo(id_dtype).max
        key = ops.where(ops.less(position, size), slot_ids,
                        ops.full_like(slot_ids, largest))
        sorted_slots = backend.stable_argsort(key)
        sorted_ids = ops.take(key, sorted_slots)
        sorted_slots = ops.cast(sorted_slots, "int32")
        new = {"slot_ids": slot_ids, "sorted_ids": sorted_ids,
               "sorted_slots": sorted_slots, "slot_counts": counts,
               "slot_last_seen": last_seen, "slot_admitted": admitted,
               "size": size, "step": step, "id_counts": id_counts}
        for name, _ in _STATE:
            variable = getattr(self, name)
            variable.assign(ops.cast(ops.reshape(new[name], variable.shape),
                                     variable.dtype))
        return sorted_ids, sorted_slots, size, admitted, step

    def _reclaimed_rows(self, row_ids):
        """For the optimizer (`RESET_ATTRIBUTE`): which rows were given to a
        new id in this step, and the values they restart from."""
        row_ids = ops.cast(row_ids, "int32")
        safe = ops.minimum(row_ids, self.capacity - 1)
        step = self.step.value
        fresh = ops.logical_and(
            ops.less(row_ids, self.capacity),
            ops.logical_and(
                ops.equal(ops.take(self.slot_admitted.value, safe), step),
                ops.greater(step, 0)))
        return fresh, ops.take(self.reset_rows.value,
                               ops.mod(safe, self._reset_size), axis=0)

    # Reading.

    def call(self, inputs, bag_weights=None, reverse=False, training=None):
        if reverse:
            raise ValueError(
                f"Layer '{self.name}' is a DynamicEmbedding: its rows change "
                "owner during training, so `reverse=True` (logits over the "
                "table's rows) has no meaning. Use a separate output layer.")
        ids = ops.convert_to_tensor(inputs)
        self._check_symbolic_ids(standardize_dtype(ids.dtype))
        shape = _shape_for_export(ids)
        flat = ops.reshape(ops.cast(ids, self._id_dtype), (-1,))
        keep = (ops.not_equal(flat, 0) if self.mask_zero
                else ops.ones_like(flat, dtype="bool"))
        # An empty batch (known to be empty when traced) changes nothing.
        update = (bool(training) and self.trainable
                  and flat.shape[0] != 0)
        if update:
            sorted_ids, sorted_slots, size, admitted, step = self._admit(
                flat, keep)
        else:
            sorted_ids = self.sorted_ids.value
            sorted_slots = self.sorted_slots.value
            size = self.size.value
        slots = self._find(flat, sorted_ids, sorted_slots, size)
        slots = ops.where(keep, slots, ops.full_like(slots, self.capacity))
        # Row ids in the ids' dtype: the optimizer writes rows by them.
        rows = self._gather(ops.reshape(ops.cast(slots, self._id_dtype),
                                        shape))
        if update:
            # Newly admitted ids read their restarted row; the gradient
            # still reaches the table row (`stop_gradient`), which the
            # optimizer sets to the same value before its update.
            safe = ops.cast(ops.minimum(slots, self.capacity - 1), "int32")
            fresh = ops.logical_and(
                ops.less(slots, self.capacity),
                ops.equal(ops.take(admitted, safe), step))
            initial = ops.cast(ops.take(
                self.reset_rows.value, ops.mod(safe, self._reset_size), axis=0),
                rows.dtype)
            fresh = ops.reshape(ops.cast(fresh, rows.dtype),
                                (*ops.shape(rows)[:-1], 1))
            initial = ops.reshape(initial, ops.shape(rows))
            rows = rows + ops.stop_gradient(initial - rows) * fresh
        rows = reader.clip_rows(rows, self.max_norm, self.norm_type)
        return ops.cast(rows, self.compute_dtype)

    def compute_output_shape(self, input_shape, reverse=False):
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs, bag_weights=None, reverse=False,
                            training=None):
        self._check_symbolic_ids(standardize_dtype(inputs.dtype))
        return keras.KerasTensor(self.compute_output_shape(inputs.shape),
                                 dtype=self.compute_dtype)

    # Saving.

    def _layer_variables(self):
        names = [name for name, _ in _STATE] + ["reset_rows"]
        return {name: getattr(self, name) for name in names}

    @property
    def variable_serialization_spec(self):
        extra = [name for name, _ in _STATE] + ["reset_rows"]
        return {mode: [*names, *extra] for mode, names
                in super().variable_serialization_spec.items()}

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        config.update({
            "capacity": self.capacity,
            "output_dim": self.output_dim,
            "min_count": self.min_count,
            "policy": self.policy,
            "count_buckets": self.count_buckets,
            "embeddings_initializer": initializers.serialize(
                self.embeddings_initializer),
            "mask_zero": self.mask_zero,
            "max_norm": self.max_norm,
            "norm_type": self.norm_type,
        })
        return config
