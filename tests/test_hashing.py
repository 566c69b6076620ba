"""`hash_ids`, `split_ids` and `hash_strings` (keras_embedlab/hashing/)."""

import os
import random
import subprocess
import sys

import keras
import mmh3
import numpy as np
import pytest
from helpers import BACKEND, to_numpy
from thinc.api import NumpyOps

import keras_embedlab as kel
from keras_embedlab.backend import keeps_int64

# The ids the issue names, and the edges of every word.
EDGE_IDS = [0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 5,
            2**63 - 1, -2**63, -2**31, -2**40 - 3]


def _ids(n=64):
    rng = np.random.default_rng(5)
    random_ids = rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64)
    return np.concatenate([np.array(EDGE_IDS, np.int64), random_ids])


def _thinc(ids, num_buckets, seed, num_hashes):
    """thinc's buckets: negative ids are their uint64 two's complement."""
    ids = np.asarray(ids, np.int64)
    keys = NumpyOps().hash(ids.reshape(-1).view(np.uint64), seed)
    buckets = keys[:, :num_hashes] % num_buckets
    return buckets.reshape(ids.shape + (num_hashes,)).astype(np.int64)


def _tensor_ids(ids):
    """Tensor ids that keep 64 bits on this backend: int64 where it has
    them, else int32 words (`id_halves=True`)."""
    if keeps_int64():
        return keras.ops.convert_to_tensor(ids, "int64"), False
    return keras.ops.convert_to_tensor(kel.split_ids(ids)), True


def test_thinc_keys_are_mmh3_words_low_word_first():
    # The definition the layer follows, checked on the two references.
    for value in EDGE_IDS:
        for seed in (0, 7, 2**32 - 1):
            digest = mmh3.hash128(value.to_bytes(8, "little", signed=True),
                                  seed, x64arch=True, signed=False)
            words = [(digest >> (32 * k)) & 0xFFFFFFFF for k in range(4)]
            keys = NumpyOps().hash(
                np.array([value], np.int64).view(np.uint64), seed)
            assert keys[0].tolist() == words


@pytest.mark.parametrize("num_buckets,seed,num_hashes", [
    pytest.param(1000, 0, 4, id="1000-seed0-4"),
    pytest.param(2**31 - 1, 2**32 - 1, 4, id="max-buckets-max-seed"),
    pytest.param(7, 12345, 2, id="7-2hashes"),
    pytest.param(2**30 + 3, 99, 1, id="large-1hash"),
])
def test_hash_ids_equals_thinc(num_buckets, seed, num_hashes):
    ids = _ids().reshape(4, -1)
    expected = _thinc(ids, num_buckets, seed, num_hashes)
    # NumPy in, NumPy out: the input pipeline's path.
    host = kel.hash_ids(ids, num_buckets, seed, num_hashes)
    assert isinstance(host, np.ndarray) and host.dtype == np.int32
    np.testing.assert_array_equal(host, expected)
    # Tensors, eager (keras.ops).
    tensor, halves = _tensor_ids(ids)
    eager = kel.hash_ids(tensor, num_buckets, seed, num_hashes,
                         id_halves=halves)
    assert keras.backend.standardize_dtype(eager.dtype) == "int32"
    np.testing.assert_array_equal(to_numpy(eager), expected)
    # Words on every backend.
    words = kel.hash_ids(keras.ops.convert_to_tensor(kel.split_ids(ids)),
                         num_buckets, seed, num_hashes, id_halves=True)
    np.testing.assert_array_equal(to_numpy(words), expected)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint8",
                                   "uint16"])
def test_hash_ids_small_dtypes_hash_their_int64_value(dtype):
    info = np.iinfo(dtype)
    ids = np.array([info.min, info.max, 0, 1, info.max // 3], dtype)
    expected = _thinc(ids.astype(np.int64), 97, 3, 4)
    got = kel.hash_ids(keras.ops.convert_to_tensor(ids), 97, 3)
    np.testing.assert_array_equal(to_numpy(got), expected)
    np.testing.assert_array_equal(kel.hash_ids(ids, 97, 3), expected)


def test_hash_ids_numpy_uint64_hashes_its_bits():
    ids = np.array([0, 2**63, 2**64 - 1, 2**32 + 5], np.uint64)
    expected = NumpyOps().hash(ids, 11) % 50
    np.testing.assert_array_equal(kel.hash_ids(ids, 50, 11), expected)


def _compile(fn):
    """`fn` under the backend's compiler: XLA, `jax.jit`, `torch.compile`."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    import torch

    return torch.compile(fn, fullgraph=True)


def test_hash_ids_compiled():
    # The backend's widest ids, and (except on PyTorch, where each
    # torch.compile of the hash costs about 20 s; the words path differs
    # only in how the words are read, tested eagerly above) int32 words of
    # int64 ids, in one compiled function.
    ids = _ids(60).reshape(8, 9)
    wide = ids if keeps_int64() else ids.astype(np.int32)
    with_words = BACKEND != "torch"

    def hashes(plain, words):
        outputs = [kel.hash_ids(plain, 1009, 42, 4)]
        if with_words:
            outputs.append(kel.hash_ids(words, 1009, 42, 4, id_halves=True))
        return outputs

    outputs = _compile(hashes)(
        keras.ops.convert_to_tensor(wide),
        keras.ops.convert_to_tensor(kel.split_ids(ids)))
    np.testing.assert_array_equal(to_numpy(outputs[0]),
                                  _thinc(wide.astype(np.int64), 1009, 42, 4))
    if with_words:
        np.testing.assert_array_equal(to_numpy(outputs[1]),
                                      _thinc(ids, 1009, 42, 4))


@pytest.mark.parametrize("kwargs,match", [
    pytest.param({"num_buckets": 0}, "num_buckets", id="buckets-0"),
    pytest.param({"num_buckets": 2**31}, "num_buckets", id="buckets-2**31"),
    pytest.param({"num_buckets": 10.0}, "num_buckets", id="buckets-float"),
    pytest.param({"num_buckets": True}, "num_buckets", id="buckets-bool"),
    pytest.param({"num_hashes": 0}, "num_hashes", id="hashes-0"),
    pytest.param({"num_hashes": 5}, "num_hashes", id="hashes-5"),
    pytest.param({"seed": -1}, "seed", id="seed-negative"),
    pytest.param({"seed": 2**32}, "seed", id="seed-2**32"),
    pytest.param({"seed": 1.5}, "seed", id="seed-float"),
])
def test_hash_ids_argument_errors(kwargs, match):
    arguments = {"num_buckets": 10, "seed": 0, "num_hashes": 4, **kwargs}
    with pytest.raises(ValueError, match=f"`{match}` must be .* Received: "
                                         f"{match}="):
        kel.hash_ids(np.array([1, 2]), **arguments)


def test_hash_ids_id_errors():
    with pytest.raises(TypeError, match="integer ids. Received ids of dtype "
                                        "float32"):
        kel.hash_ids(keras.ops.ones((2,)), 10)
    with pytest.raises(TypeError, match="float64"):
        kel.hash_ids(np.array([1.0]), 10)
    with pytest.raises(ValueError, match=r"last axis of size 2.*\(3, 3\)"):
        kel.hash_ids(keras.ops.zeros((3, 3), "int32"), 10, id_halves=True)


def test_split_ids_words():
    ids = np.array([[0, -1], [2**32 + 5, -2**63]], np.int64)
    words = kel.split_ids(ids)
    assert words.shape == (2, 2, 2) and words.dtype == np.int32
    unsigned = words.view(np.uint32).astype(np.uint64)
    rebuilt = (unsigned[..., 0] | (unsigned[..., 1] << np.uint64(32)))
    np.testing.assert_array_equal(rebuilt.view(np.int64), ids)


# hash_strings: keras.layers.Hashing's bins in NumPy.


def _strings():
    rng = random.Random(3)
    values = ["", "a", "ab", "abc", "abcd", "hello", "12345678",
              "é", "ñandú", "😀🎉", "日本語のテキスト", "e\u0301\u0327",
              "\x00", "tab\tand\nnewline"]
    # Every FarmHash length branch: 0-16, 17-32, 33-64, over 64 (one and
    # several 64-byte blocks), at and around each bound.
    values += ["x" * n for n in (15, 16, 17, 31, 32, 33, 63, 64, 65, 127,
                                 128, 129, 300)]
    values += ["😀" * 20, "漢" * 40]  # multi-byte, over 64 bytes
    values += ["".join(chr(rng.randint(32, 126))
                       for _ in range(rng.randint(0, 150)))
               for _ in range(40)]
    return values


def test_hash_strings_imports_numpy_only():
    code = ("import sys; import keras_embedlab.hashing.strings; "
            "bad = [m for m in ('keras', 'tensorflow', 'jax', 'torch') "
            "if m in sys.modules]; assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="keras.layers.Hashing "
                    "runs only on TensorFlow (the reference is TF's op)")
@pytest.mark.parametrize("num_bins", [1, 7, 1000, 2**40 + 11])
def test_hash_strings_equals_keras_hashing(num_bins):
    values = _strings()
    expected = to_numpy(keras.layers.Hashing(num_bins)(
        np.array(values, dtype=object)))
    np.testing.assert_array_equal(kel.hash_strings(values, num_bins),
                                  expected)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="keras.layers.Hashing "
                    "runs only on TensorFlow (the reference is TF's op)")
def test_hash_strings_integers_and_mask_equal_keras_hashing():
    ints = np.array([[0, 1, -5], [2**40, -2**63, 2**63 - 1]], np.int64)
    np.testing.assert_array_equal(
        kel.hash_strings(ints, 97), to_numpy(keras.layers.Hashing(97)(ints)))
    values = np.array(["", "a", "b", "", "long" * 20], dtype=object)
    np.testing.assert_array_equal(
        kel.hash_strings(values, 10, mask_value=""),
        to_numpy(keras.layers.Hashing(10, mask_value="")(values)))


def test_hash_strings_shape_and_errors():
    got = kel.hash_strings([["a", "b"], ["c", "d"]], 5)
    assert got.shape == (2, 2) and got.dtype == np.int64
    assert ((got >= 0) & (got < 5)).all()
    with pytest.raises(ValueError, match="`num_bins` must be a positive "
                                         "integer. Received: num_bins=0"):
        kel.hash_strings(["a"], 0)
    with pytest.raises(TypeError, match="strings, bytes or integers"):
        kel.hash_strings([object()], 5)
