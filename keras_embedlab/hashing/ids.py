"""`hash_ids`: raw integer ids -> bucket ids, thinc's MurmurHash3 buckets.

The same function hashes tensors with `keras.ops` (inside `jit`,
`tf.function` and `torch.compile`) and NumPy arrays with NumPy (the input
pipeline, where int64 ids are still whole on every backend). The
arithmetic is `hashing.murmur`'s, written once for both.
"""

from typing import Any

import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from keras_embedlab import backend
from keras_embedlab.hashing.murmur import MAX_HASHES, murmur_keys, split_numpy
from keras_embedlab.utils.argument_checks import received

MAX_BUCKETS = 2**31 - 1
# Tensor dtypes hashed as they are; unsigned 32/64-bit tensors are not
# (PyTorch has no arithmetic for them, JAX no uint64): pass them as NumPy.
_SIGNED = ("int8", "int16", "int32", "int64", "uint8", "uint16")


def check_hash_arguments(num_buckets: Any, seed: Any,
                         num_hashes: Any) -> None:
    """The one check of `hash_ids`'s arguments (and the layer's)."""
    if (not isinstance(num_buckets, int) or isinstance(num_buckets, bool)
            or not 1 <= num_buckets <= MAX_BUCKETS):
        raise ValueError(
            f"`num_buckets` must be an integer in [1, {MAX_BUCKETS}] (bucket "
            "ids are int32). " + received("num_buckets", num_buckets))
    if (not isinstance(num_hashes, int) or isinstance(num_hashes, bool)
            or not 1 <= num_hashes <= MAX_HASHES):
        raise ValueError(
            f"`num_hashes` must be an integer in [1, {MAX_HASHES}] "
            "(MurmurHash3 x64 128-bit gives four 32-bit keys). "
            + received("num_hashes", num_hashes))
    if (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
            or not 0 <= seed < 2**32):
        raise ValueError(
            "`seed` must be an integer in [0, 2**32) (a uint32, as thinc's "
            "and mmh3's). " + received("seed", seed))


def _check_integer_ids(dtype):
    if "int" not in dtype:
        raise TypeError(
            f"`hash_ids` hashes integer ids. Received ids of dtype {dtype}. "
            "Cast whole-number floats to int64 first; hash strings with "
            "`keras_embedlab.hash_strings` or `keras.layers.Hashing`.")


def split_ids(ids: Any) -> np.ndarray:
    """NumPy integer ids -> int32 array of shape `ids.shape + (2,)`.

    The last axis holds each id's low and high 32-bit words (of its 64-bit
    two's complement; uint64 ids: their own bits), as int32 bit patterns.
    No id loses a bit, whatever the backend: feed the result to
    `hash_ids(..., id_halves=True)` or `HashedEmbedding(id_halves=True)`,
    e.g. on JAX without x64, where Keras narrows int64 batches to int32.
    """
    ids = np.asarray(ids)
    _check_integer_ids(str(ids.dtype))
    words = np.stack(split_numpy(ids), axis=-1)
    return words.astype(np.uint32).view(np.int32)


def _numpy_const(value):
    return np.int64(value)


def _word_dtype():
    """Words are int64 where the backend keeps 64 bits, else uint32."""
    return "int64" if backend.keeps_int64() else "uint32"


def _ops_const(value):
    return ops.convert_to_tensor(value, dtype=_word_dtype())


def _constants():
    """`_ops_const`, each value made once per hash (fewer ops to trace)."""
    made = {}

    def const(value):
        if value not in made:
            made[value] = _ops_const(value)
        return made[value]

    return const


def _tensor_words(ids, id_halves):
    """The (low, high) words of integer tensor ids, in `_word_dtype()`."""
    dtype = standardize_dtype(ids.dtype)
    _check_integer_ids(dtype)
    if id_halves:
        if dtype != "int32" or (ids.shape and ids.shape[-1] not in (2, None)):
            raise ValueError(
                "With `id_halves=True`, ids are int32 with a last axis of "
                "size 2 (low word, high word), as `keras_embedlab.split_ids` "
                f"makes them. Received ids of dtype {dtype} and shape "
                f"{tuple(ids.shape)}.")
        return _word(ids[..., 0]), _word(ids[..., 1])
    if dtype not in _SIGNED:
        raise TypeError(
            f"`hash_ids` cannot hash {dtype} tensors on every backend. "
            f"Received ids of dtype {dtype}. Hash NumPy arrays of them (in "
            "the input pipeline), or pass `split_ids(ids)` with "
            "id_halves=True.")
    if _word_dtype() == "int64":
        ids = ops.cast(ids, "int64")
        low = ops.bitwise_and(ids, 0xFFFFFFFF)
        if not backend.serving_graph(ids):
            return low, ops.bitwise_and(ops.right_shift(ids, 32),
                                        0xFFFFFFFF)
        # No signed shift (exporters lack it): `ids - low` is a multiple
        # of 2**32, so any division by 2**32 is exact.
        high = backend.nonnegative_divide(ops.subtract(ids, low), 2**32)
        return low, ops.where(ops.less(high, 0), ops.add(high, 2**32), high)
    # uint32 words (JAX without x64): ids are at most 32 bits here; the
    # high word of a negative id's 64-bit two's complement is all ones.
    ids = ops.cast(ids, "int32")
    high = ops.where(ops.less(ids, 0), _ops_const(0xFFFFFFFF),
                     _ops_const(0))
    return _word(ids), high


def _word(int32_ids):
    """An int32 tensor's bits as a word."""
    if _word_dtype() == "int64":
        return ops.bitwise_and(ops.cast(int32_ids, "int64"), 0xFFFFFFFF)
    return ops.cast(int32_ids, "uint32")  # Bit-preserving (modular).


def hash_ids(ids: Any, num_buckets: int, seed: int = 0, num_hashes: int = 4,
             *, id_halves: bool = False) -> Any:
    """Bucket ids of raw integer ids: thinc's `HashEmbed` buckets.

    Each id is hashed with MurmurHash3 x64 128-bit of its 8 little-endian
    bytes (negative ids: their 64-bit two's complement, as a uint64 view of
    them gives thinc) with `seed`; the hash's four 32-bit words, low word
    first, are the keys (thinc's `NumpyOps().hash(ids, seed)`), and the
    first `num_hashes` keys modulo `num_buckets` are the buckets. Equal to
    `thinc.api.NumpyOps().hash(ids.astype("uint64"), seed)[..., :num_hashes]
    % num_buckets`, on every backend.

    Args:
        ids: Integer ids of any shape and any value: a NumPy array (hashed
            with NumPy, all 64 bits on every backend; returns NumPy) or a
            tensor (hashed with `keras.ops`, inside compiled functions too;
            int8 to int64 and uint8/uint16). On JAX without x64 a tensor
            holds int32 ids only: hash int64 ids as NumPy, or pass
            `split_ids(ids)` with `id_halves=True`.
        num_buckets: Integer in `[1, 2**31 - 1]`: buckets are in
            `[0, num_buckets)`.
        seed: Integer in `[0, 2**32)`, MurmurHash3's seed.
        num_hashes: Integer in `[1, 4]`: how many buckets per id.
        id_halves: If `True`, `ids` are int32 of shape `(..., 2)`: each
            id's low and high 32-bit words (`split_ids`).

    Returns:
        int32 bucket ids of shape `ids.shape + (num_hashes,)` (without the
        last axis of size 2 with `id_halves=True`).
    """
    check_hash_arguments(num_buckets, seed, num_hashes)
    if not isinstance(id_halves, bool):
        raise ValueError("`id_halves` must be True or False. "
                         + received("id_halves", id_halves))
    seed = int(seed)
    if isinstance(ids, (np.ndarray, np.generic, list, tuple, int)):
        ids = np.asarray(ids)
        _check_integer_ids(str(ids.dtype))
        if id_halves:
            words = ids.astype(np.int32).view(np.uint32).astype(np.int64)
            low, high = words[..., 0], words[..., 1]
        else:
            low, high = split_numpy(ids)
        shape = low.shape
        low, high = low.reshape(-1), high.reshape(-1)  # 0-d ids too
        keys = murmur_keys(low, high, seed, num_hashes, np, _numpy_const,
                           wide=True)
        buckets = [np.mod(k, num_buckets) for k in keys]
        return np.stack(buckets, axis=-1).astype(np.int32).reshape(
            shape + (num_hashes,))
    ids = ops.convert_to_tensor(ids)
    low, high = _tensor_words(ids, id_halves)
    if not backend.serving_graph(ids):
        keys = murmur_keys(low, high, seed, num_hashes, ops, _constants(),
                           wide=_word_dtype() == "int64")
        buckets = [ops.mod(k, _ops_const(num_buckets)) for k in keys]
        return ops.cast(ops.stack(buckets, axis=-1), "int32")
    # Programs traced for export: the arithmetic that every format carries
    # (no OR, XOR, shifts or `mod`; `murmur._Words`), the same buckets.
    if backend.exporting_to_openvino():
        raise ValueError(
            "`hash_ids` (HashedEmbedding) cannot be exported with "
            "format='openvino': OpenVINO's CPU runtime computes int64 "
            "arithmetic in 32 bits, which would silently give other "
            "buckets. Export with format='onnx' (or 'tf_saved_model', "
            "'torch'), or hash the ids in the input pipeline with "
            "`keras_embedlab.hash_ids` on NumPy ids and look the buckets "
            "up with a LookupEmbedding.")
    divide = backend.nonnegative_divide
    keys = murmur_keys(low, high, seed, num_hashes, ops, _constants(),
                       wide=_word_dtype() == "int64", divide=divide)
    buckets = [ops.subtract(k, ops.multiply(divide(k, num_buckets),
                                            _ops_const(num_buckets)))
               for k in keys]
    return ops.cast(ops.stack(buckets, axis=-1), "int32")


def raw_host_ids(ids: np.ndarray, layer_name: str, narrowed_error,
                 halves: bool = False) -> np.ndarray:
    """NumPy raw ids for a layer without a vocabulary (every integer is
    an id), never silently narrowed: uint64 ids are read as their int64
    bytes (as thinc reads them), uint32 widened, and where int64 does not
    keep 64 bits (JAX without x64) int64 ids become int32 only if they fit,
    else `narrowed_error()` is raised. `halves`: ids already split into
    int32 words (`split_ids`)."""
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"Layer '{layer_name}' takes integer ids. Received ids of "
            f"dtype {ids.dtype}. Cast whole-number floats to int64, map "
            "strings with keras_embedlab.hash_strings.")
    if halves:
        return ids.astype(np.int32)
    if ids.dtype == np.uint64:
        ids = ids.view(np.int64)
    elif ids.dtype == np.uint32:
        ids = ids.astype(np.int64)
    if ids.dtype.itemsize == 8 and not backend.keeps_int64():
        if ids.size and (ids.min() < -2**31 or ids.max() >= 2**31):
            raise narrowed_error()
        ids = ids.astype(np.int32)  # Lossless: no JAX warning.
    return ids


def narrowed_int64_error(where: str) -> ValueError:
    """The error for int64 ids that JAX without x64 would narrow."""
    return ValueError(
        f"{where} receives int64 ids, but JAX without x64 narrows int64 to "
        "int32 before any layer runs: ids of 2**31 or more would silently "
        "share buckets. Pass `keras_embedlab.split_ids(ids)` (int32 words, "
        "shape (..., 2)) with id_halves=True, hash in the input pipeline "
        "with `keras_embedlab.hash_ids` on NumPy ids, or set "
        "JAX_ENABLE_X64=1.")
