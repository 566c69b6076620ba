"""PyTorch: what `keras.ops` cannot do.

- The invalid-id check: one reduction on the device and a single scalar
  read back (Keras runs PyTorch eagerly; under `torch.compile` the check is
  a graph break, so it still raises).
- A bag sum that never holds the gathered `(batch, bag, dim)` rows:
  `embedding_bag(mode="sum", per_sample_weights=...)`.
- Row-sparse training: no sparse gradient reaches Keras's optimizers
  (its torch trainer reads `variable.value.grad`), so `RowSparseModel`'s
  eager step makes each lookup's rows a leaf of the autograd graph
  (`row_leaf`, `TRACES_ROWS`), takes their gradient with
  `torch.autograd.grad`, and updates the table's rows in place with
  `index_add_` / `index_copy_` under `torch.no_grad()`: nothing of the
  table's size is allocated or touched in the step.
"""

import contextlib
import threading
import warnings

import keras
import torch
import torch.nn.functional as F

from keras_embedlab.backend import _common
from keras_embedlab.backend._common import (  # noqa: F401
    densify_ragged_bags,
    fill_take,
    gradient_inputs,
    indexed_slices,
    int4_pair_table,
    is_ragged,
    value_and_grad,
    variable_handle,
)

SUPPORTS_JIT_WITH_CHECKS = True
TRACES_ROWS = True
# Keras's torch trainer is stateful (variables change in place), unlike
# JAX's: `RowSparseModel` runs one eager pass instead of JAX's two.
STATELESS_TRAINER = False
FILL_TAKE = False
# The `model.export` formats under which Keras's own `Embedding` exports
# and runs on this backend (Keras 3.15; LiteRT
# needs `litert-torch`, not installed), which ours cover
# (`keras_embedlab.serving.FORMATS`, tests/test_export.py).
EXPORT_FORMATS = ("onnx", "torch", "openvino")
# Calls of word2vec's steps per dispatch of `row_step` (`Word2Vec`): one;
# its steps run a few at a time anyway (`_STEPS_PER_GRAPH`).
ROW_STEP_CALLS = 1
# Whether `row_step`s of one table may run in two threads at once: yes,
# in place and without locks, as gensim's workers (Hogwild: an update
# may be lost when two add to one row at the same instant).
CONCURRENT_ROW_STEPS = True


def all_ids_valid(ids, input_dim):
    """Python bool: every (signed integer) id is in `[0, input_dim)`.

    One `aminmax` and one read of its two numbers: the fixed cost of a
    PyTorch eager call is per op, and this runs on every call. (PyTorch has
    no unsigned 64-bit max, the one reduction TensorFlow and JAX use.)
    """
    if ids.numel() == 0 or ids.device.type == "meta":
        return True  # No id, or Keras's symbolic pass (no values).
    lowest, highest = torch.aminmax(ids)
    if ids.device.type == "cpu":  # Two reads of host memory: no stack.
        return lowest.item() >= 0 and highest.item() < input_dim
    lowest, highest = torch.stack((lowest, highest)).tolist()  # One sync.
    return lowest >= 0 and highest < input_dim


INVALID_ID_NOTE = ""


def quiet_callback_errors(error_type):
    pass  # No callbacks: the check runs in Python.


def checked_on_host(ids):
    """The check runs in Python (under `torch.compile`, a graph break),
    except in a program traced for a serving format (`serving_graph`)."""
    return not serving_graph(ids)


def serving_graph(ids):
    """`torch.export` (formats "torch" and ONNX with static shapes) or
    TorchScript's tracer (ONNX with a dynamic batch): a Python check would
    be baked into the program as the traced batch's answer."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def ids_for_host_check(ids, input_dim, valid=None):
    """Only a bad batch is copied to the host, to name its first invalid
    id."""
    ok = all_ids_valid(ids, input_dim) if valid is None else bool(
        keras.ops.all(valid))
    return None if ok else keras.ops.convert_to_numpy(ids)


def refuse_in_graph(ids, refusal):
    """Exported programs have no assertion on data: the lookup's gather
    refuses invalid ids (`ids.reader.serving_rows`)."""
    if torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
        # TorchScript traces bake shapes in, so no check on data survives,
        # and OpenVINO (Keras's only other traced format) gathers zeros.
        raise refusal.cannot_export(
            "a TorchScript trace other than ONNX's (format='openvino' on "
            "PyTorch): the trace keeps no check on data and OpenVINO's "
            "gather reads zeros for invalid ids")
    return ids


def dense_gradient(table):
    return table  # PyTorch gradients of a lookup are dense already.


def fused_bag_sum(table, ids, weights):
    """`sum(weights[..., None] * table[ids], axis=-2)` in one kernel.

    Ids out of range must have weight 0: they are read as row 0. Not in
    a program traced for serving: there the gather must see invalid ids,
    to refuse them (`ids.reader.serving_rows`).
    """
    if ids.shape[-1] == 0 or serving_graph(ids):
        return None
    table = keras.ops.convert_to_tensor(table)
    bag = ids.shape[-1]
    valid = (ids >= 0) & (ids < table.shape[0])
    flat_ids = torch.where(valid, ids, 0).reshape(-1, bag)
    flat_weights = weights.to(table.dtype).reshape(-1, bag)
    sums = F.embedding_bag(flat_ids, table, mode="sum",
                           per_sample_weights=flat_weights)
    return sums.reshape(*ids.shape[:-1], table.shape[-1])


# Row-sparse training.


def row_leaf(rows):
    """The looked-up rows as a leaf of the autograd graph.

    Detached from the table, so that backward never builds the table's
    dense `(input_dim, dim)` gradient; `gradients` then returns the rows'
    own gradient.
    """
    return rows.detach().requires_grad_()


def gradients(loss, tensors):
    """`d loss / d tensors`, `None` for a tensor the loss does not use.

    `torch.autograd.grad` rather than `loss.backward()`: nothing is left in
    `.grad`, so no step has to clear it.
    """
    return list(torch.autograd.grad(loss, tensors, allow_unused=True))


def no_grad():
    """The optimizer's updates are in place on leaves that need grad."""
    return torch.no_grad()


def combine_rows(ids, values, input_dim):
    """One `(row_id, summed gradient)` per distinct row to update.

    Duplicates are summed; ids outside the table (invalid ids in `"zeros"`
    mode) and all-zero sums (padding, masked positions) are removed. The
    row ids are int64, sorted, as `index_add_` and `index_copy_` take them.
    `coalesce` sorts and sums in one kernel (what `nn.Embedding(sparse=True)`
    gradients go through), faster than `unique` then `index_add_`; invalid
    ids are first moved to one extra row, `input_dim`, dropped below.
    """
    values = values.reshape(-1, values.shape[-1])
    flat = ids.reshape(-1).long()
    flat = torch.where((flat >= 0) & (flat < input_dim), flat, input_dim)
    summed = torch.sparse_coo_tensor(
        flat[None], values, (input_dim + 1, values.shape[-1]),
        check_invariants=False).coalesce()
    row_ids, summed = summed.indices()[0], summed.values()
    # `amax(abs) != 0` rather than `any(!= 0)`: the same rows kept (NaN
    # included), about 6x faster on CPU.
    keep = summed.abs().amax(-1).ne(0) & (row_ids < input_dim)
    if bool(keep.all()):
        return row_ids, summed
    return row_ids[keep], summed[keep]


def adam_rows(m_rows, v_rows, grads, beta_1, beta_2, alpha, epsilon):
    """`_common.adam_rows`, the same operations in the same order, updating
    the gathered `m_rows` and `v_rows` in place: 7 passes over the rows and
    3 new tensors instead of 11 of each (eager PyTorch runs one kernel per
    operation, and each new tensor of this size is fresh memory to fault
    in: 2-3x faster on CPU). `lerp_(end, w)` is `self + w * (end - self)`.
    """
    m_rows.lerp_(grads, 1 - beta_1)
    v_rows.lerp_(grads * grads, 1 - beta_2)
    return m_rows, v_rows, m_rows.mul(-alpha).div_(v_rows.sqrt().add_(
        epsilon))


def gather_rows(table, ids):
    """`F.embedding`, for ids in range (checked, or replaced by 0): Keras's
    `take` would add its negative-id rewrite (a comparison, an add and a
    `where`, each a pass and an allocation in eager PyTorch) and an int64
    copy of the ids."""
    if not isinstance(ids, torch.Tensor):
        ids = keras.ops.convert_to_tensor(ids)
    if ids.dtype not in (torch.int32, torch.int64):
        ids = ids.long()
    return F.embedding(ids, _tensor(table))


def bag_sum(table, ids, weights):
    """`sum(weights[..., None] * table[ids], axis=-2)` for 2-D ids in
    range, in one kernel (`embedding_bag`): no `(batch, bag, dim)` rows,
    products or sum of them in memory. Not `fused_bag_sum`: no check for
    a serving trace (word2vec's steps are traced to run, not to export).
    Rounds differently from that sum (the last float bit). `None` for
    bags of one id (skip-gram), where a gather is faster."""
    if ids.shape[-1] == 1:
        return None
    return F.embedding_bag(ids, _tensor(table), mode="sum",
                           per_sample_weights=weights)


def int4_rows(packed, channels, dtype, scale=None, portable=False):
    """`_common.int4_rows` in three full passes (eager PyTorch pays one
    per op): the packed bytes read two at a time as int32 indices into
    `int4_pair_table`, one `embedding` gather of four values each, and an
    in-place divide. An odd number of packed bytes takes the shifts."""
    if portable:  # ONNX has no uint16 view: `_common`'s byte table.
        return _common.int4_rows(packed, channels, dtype, scale, True)
    dtype = getattr(torch, keras.backend.standardize_dtype(dtype))
    if packed.shape[-1] % 2:
        out = torch.empty(tuple(packed.shape) + (2,), dtype=dtype,
                          device=packed.device)
        out[..., 0] = torch.bitwise_right_shift(packed << 4, 4)
        out[..., 1] = torch.bitwise_right_shift(packed, 4)
    else:
        pairs = packed.contiguous().view(torch.uint16).to(torch.int32)
        out = F.embedding(pairs, _pair_table(dtype, packed.device))
    out = out.reshape(tuple(packed.shape[:-1]) + (-1,))
    if scale is not None:
        out.div_(scale.to(dtype).unsqueeze(-1))
    if out.shape[-1] != channels:
        out = out[..., :channels]
    return out


def adopt_host_array(array):
    """A tensor over `array`'s own memory (`torch.from_numpy`, no copy)
    when it is writable; else `array` unchanged. Keras's variable keeps a
    tensor as it is (on the CPU), where a NumPy array goes through its
    `convert_to_tensor`, whose `np.array(x)` copies it. The caller must not
    write to `array` afterwards."""
    if not array.flags.writeable:
        return array
    return torch.from_numpy(array)


# Built at import, outside any tracing: a table first made under
# `torch.export`'s fake tensors and then cached would be fake in eager calls.
_PAIRS = {(torch.float32, torch.device("cpu")):
          torch.from_numpy(int4_pair_table())}


def _pair_table(dtype, device):
    key = (dtype, torch.device(device))
    table = _PAIRS.get(key)
    if table is None:
        table = _PAIRS[(torch.float32, torch.device("cpu"))].to(
            device=device, dtype=dtype)
        if not (torch.compiler.is_compiling()
                or torch.compiler.is_exporting()):
            _PAIRS[key] = table
    return table


def _tensor(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def read_rows(variable, row_ids):
    return _tensor(variable).index_select(0, row_ids)


def write_rows(optimizer, variable, row_ids, rows, add=False):
    """`variable[row_ids] = rows` (or `+= rows`), in place, rows only.

    `optimizer.assign` would copy the whole table (`copy_`); the row ids are
    distinct (`combine_rows`), so `index_copy_` is well defined.
    """
    value = _tensor(variable)
    with torch.no_grad():
        rows = rows.to(value.dtype)
        if add:
            value.index_add_(0, row_ids, rows)
        else:
            value.index_copy_(0, row_ids, rows)


def add_rows(optimizer, variable, ids, rows):
    """`variable[ids] += rows` for every valid id, duplicates accumulating
    (`index_add_`); invalid ids are dropped."""
    ids = ids.reshape(-1).long()
    rows = rows.reshape(-1, rows.shape[-1])
    valid = (ids >= 0) & (ids < variable.shape[0])
    if not bool(valid.all()):
        ids, rows = ids[valid], rows[valid]
    write_rows(optimizer, variable, ids, rows, add=True)


def layer_gradients(layer, ids, cotangent, compiled=False, **call_kwargs):
    # Eager, as Keras runs PyTorch (`compiled` changes nothing here).
    ids, cotangent = gradient_inputs(layer, ids, cotangent)
    for v in layer.trainable_weights:
        v.value.grad = None
    torch.sum(layer(ids, **call_kwargs) * cotangent).backward()
    return [v.value.grad.detach().cpu().numpy()
            for v in layer.trainable_weights]


# Steps per traced graph in `row_step`: 4 runs as fast as 8 or 32 (a
# graph per step was 10% to 20% slower) and traces in a quarter of 16's
# time.
_STEPS_PER_GRAPH = 4
# `row_step`'s traced graphs, shared by every model (a new seed, a second
# model): the key is the `compute` function and the shapes and dtypes of
# the tables and of the batch arguments. Traced under `_TRACE_LOCK`:
# `Word2Vec(workers=n)` steps in several threads, and
# `warnings.catch_warnings` is not thread-safe (two at once can leave the
# "ignore" filter in place for the whole process).
_TRACED_STEPS = {}
_TRACE_LOCK = threading.Lock()


def _traced_steps(compute, values, batches):
    """A TorchScript graph of `len(batches[0])` steps, unrolled: each
    step's `compute` and its in-place `index_add_`s, then the stacked
    losses. Tracing runs the steps: it runs them on one-row stand-ins of
    the tables with ids 0, so that it neither changes nor copies them
    (the graph keeps no table size)."""
    key = (compute, *((tuple(v.shape[1:]), v.dtype) for v in values),
           *((tuple(b.shape), b.dtype) for b in batches))
    if key in _TRACED_STEPS:
        return _TRACED_STEPS[key]
    with _TRACE_LOCK:
        if key not in _TRACED_STEPS:
            _TRACED_STEPS[key] = _trace_steps(compute, values, batches)
    return _TRACED_STEPS[key]


def _trace_steps(compute, values, batches):
    count = len(values)

    def steps(*tensors):
        values, batches = tensors[:count], tensors[count:]
        losses = []
        for i in range(batches[0].shape[0]):
            updates, loss = compute(list(values), *[b[i] for b in batches])
            for value, (ids, rows) in zip(values, updates):
                value.index_add_(0, ids.reshape(-1).long(),
                                 rows.to(value.dtype))
            losses.append(loss)
        return torch.stack(losses)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(steps, (
            *[torch.zeros_like(v[:1]) for v in values],
            *[b if b.is_floating_point() else torch.zeros_like(b)
              for b in batches]), check_trace=False)


# Threads inside `_one_intra_op_thread`, and PyTorch's intra-op threads
# before the first entered.
_ONE_THREAD_LOCK = threading.Lock()
_ONE_THREAD_USERS = {"count": 0, "threads": None}


@contextlib.contextmanager
def _one_intra_op_thread():
    """One intra-op thread for the calling thread while inside;
    PyTorch's count (a process-wide setting) is put back when the last
    thread inside leaves: `Word2Vec(workers=n)` steps in several threads,
    and each saving and restoring the count on its own could leave it at
    one."""
    with _ONE_THREAD_LOCK:
        if _ONE_THREAD_USERS["count"] == 0:
            _ONE_THREAD_USERS["threads"] = torch.get_num_threads()
        _ONE_THREAD_USERS["count"] += 1
        torch.set_num_threads(1)
    try:
        yield
    finally:
        with _ONE_THREAD_LOCK:
            _ONE_THREAD_USERS["count"] -= 1
            if _ONE_THREAD_USERS["count"] == 0:
                torch.set_num_threads(_ONE_THREAD_USERS["threads"])


def row_step(compute, variables):
    """Training steps that add rows into `variables` in place
    (`index_add_`, duplicates accumulating); no autograd graph is built.

    `compute(values, *batch)` returns `(updates, loss)`, one `(ids, rows)`
    per variable; `step(*batches)` takes each batch argument stacked along
    a leading steps axis, runs the steps in order and returns their losses.
    The steps run `_STEPS_PER_GRAPH` at a time as one TorchScript graph
    (`torch.jit.trace` of the unrolled steps, their `index_add_`s
    included), traced once per shapes and shared by models: eager Keras
    operations cost more in dispatch than in arithmetic at these sizes,
    and a graph of one step left a Python loop with three calls per step
    (measured on the Lee corpus: 10% to 20% slower per step).
    """

    def step(*batches):
        # One intra-op thread during the steps: their tensors are small,
        # and on a busy CPU two OpenMP threads made a step ~100x slower
        # (measured on 2 cores: 2.4 ms against 360 ms per 512 examples).
        with _one_intra_op_thread(), torch.no_grad():
            values = [_tensor(v) for v in variables]
            batches = [torch.as_tensor(b) for b in batches]
            losses = []
            for i in range(0, batches[0].shape[0], _STEPS_PER_GRAPH):
                chunk = [b[i:i + _STEPS_PER_GRAPH] for b in batches]
                losses.append(_traced_steps(compute, values, chunk)(
                    *values, *chunk))
            return torch.cat(losses)

    return step


def stable_argsort(x):
    """Indices sorting 1-D `x`, equal values in their original order."""
    return torch.argsort(x, stable=True)


def nonnegative_divide(x, divisor):
    """`torch.div`, truncating (flooring for `x >= 0`): Keras's
    `floor_divide` casts int64 results to int32 on PyTorch."""
    return torch.div(x, divisor, rounding_mode="trunc")
