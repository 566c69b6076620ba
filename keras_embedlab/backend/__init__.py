"""Backend-specific code, one module per backend, chosen once at import.

`keras.ops` has no assertion op, no row-sparse gradient, no fill-value
gather, no ragged tensors and no fused bag sum. Each of `tensorflow.py`,
`jax.py` and `torch.py` implements the same small set of functions for
what the layers need beyond it; the rest of the package calls them through
this module and never compares backend names. Only the active backend's
module is imported.

Functions: `checked_on_host`, `ids_for_host_check`, `refuse_in_graph`,
`serving_graph`, `quiet_callback_errors`, `all_ids_valid` (None: the
rule's own reduction) (refusing invalid ids); `gather_rows`, `fill_take`
(with `FILL_TAKE`),
`variable_handle`, `dense_gradient`, `fused_bag_sum`, `int4_rows`
(lookups); `bag_sum` (a fused weighted sum of rows for ids in range, or
None: word2vec's CBOW input); `adopt_host_array` (a variable's value
without a copy);
`is_ragged`, `densify_ragged_bags`, `map_ragged_values` (ragged ids);
`is_sparse`, `densify_sparse` (sparse id tensors); `indexed_slices`,
`combine_rows`, `read_rows`, `write_rows`, `add_rows`, `adam_rows`
(`LazyAdam`'s rule on gathered rows), `row_step`
(a compiled step adding rows, word2vec), `value_and_grad`
(JAX), `row_leaf`, `gradients`, `no_grad` (PyTorch) (row-sparse
training); `layer_gradients` (see `keras_embedlab.testing`);
`keeps_int64` (whether int64 tensors keep 64 bits: not on JAX without
x64); `stable_argsort` (`DynamicEmbedding`'s map: `keras.ops.argsort`
is not stable on TensorFlow); `nonnegative_divide` (flooring division
of non-negative integers that JAX's ONNX export carries),
`exporting_to_openvino` (no 64-bit integer arithmetic there). Backends
never apply the invalid-id rule themselves: `keras_embedlab.ids.reader`
hands them a `Refusal` (which ids are invalid, what to say). Constants:
`SUPPORTS_JIT_WITH_CHECKS`, `TRACES_ROWS`, `STATELESS_TRAINER`,
`FILL_TAKE`, `INVALID_ID_NOTE` (added to the invalid-id message),
`EXPORT_FORMATS` (the `model.export` formats tested on this backend),
`ROW_STEP_CALLS` (word2vec calls of steps per `row_step` dispatch),
`CONCURRENT_ROW_STEPS` (whether two threads may step one table at once).
"""

import importlib

import keras

from keras_embedlab.backend import _common

NAME = keras.backend.backend()
if NAME not in ("tensorflow", "jax", "torch"):
    raise ImportError(
        f"keras_embedlab supports the tensorflow, jax and torch backends. "
        f"Received: KERAS_BACKEND={NAME!r}."
    )
_impl = importlib.import_module(f"keras_embedlab.backend.{NAME}")

SUPPORTS_JIT_WITH_CHECKS = _impl.SUPPORTS_JIT_WITH_CHECKS
TRACES_ROWS = _impl.TRACES_ROWS
STATELESS_TRAINER = _impl.STATELESS_TRAINER
FILL_TAKE = _impl.FILL_TAKE
INVALID_ID_NOTE = _impl.INVALID_ID_NOTE
EXPORT_FORMATS = _impl.EXPORT_FORMATS
ROW_STEP_CALLS = _impl.ROW_STEP_CALLS
CONCURRENT_ROW_STEPS = _impl.CONCURRENT_ROW_STEPS

all_ids_valid = _impl.all_ids_valid
checked_on_host = _impl.checked_on_host
ids_for_host_check = _impl.ids_for_host_check
refuse_in_graph = _impl.refuse_in_graph
serving_graph = _impl.serving_graph
quiet_callback_errors = _impl.quiet_callback_errors
gather_rows = _impl.gather_rows
adopt_host_array = _impl.adopt_host_array
int4_rows = getattr(_impl, "int4_rows", _common.int4_rows)
fill_take = _impl.fill_take
variable_handle = _impl.variable_handle
dense_gradient = _impl.dense_gradient
fused_bag_sum = _impl.fused_bag_sum
bag_sum = getattr(_impl, "bag_sum", _common.bag_sum)
is_ragged = _impl.is_ragged
densify_ragged_bags = _impl.densify_ragged_bags
indexed_slices = _impl.indexed_slices
combine_rows = _impl.combine_rows
read_rows = _impl.read_rows
write_rows = _impl.write_rows
add_rows = _impl.add_rows
adam_rows = getattr(_impl, "adam_rows", _common.adam_rows)
row_step = _impl.row_step
layer_gradients = _impl.layer_gradients
value_and_grad = _impl.value_and_grad
# Sparse and ragged ids: `_common`'s answers where a backend has none
# (PyTorch has neither).
is_sparse = getattr(_impl, "is_sparse", _common.is_sparse)
densify_sparse = getattr(_impl, "densify_sparse", _common.densify_sparse)
map_ragged_values = getattr(_impl, "map_ragged_values",
                            _common.map_ragged_values)
keeps_int64 = getattr(_impl, "keeps_int64", _common.keeps_int64)
row_leaf = _impl.row_leaf
gradients = _impl.gradients
no_grad = _impl.no_grad
stable_argsort = _impl.stable_argsort
exporting_to_openvino = _common.exporting_to_openvino
nonnegative_divide = getattr(_impl, "nonnegative_divide",
                             _common.nonnegative_divide)
