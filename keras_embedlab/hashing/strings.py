"""`hash_strings`: the buckets of `keras.layers.Hashing`, without TensorFlow.

`keras.layers.Hashing(num_bins)` (no salt) hashes each value's UTF-8 bytes
with FarmHash's 64-bit fingerprint (`tf.strings.to_hash_bucket_fast`,
which is `farmhashna::Hash64`) and takes it modulo the bins; integers are
hashed as their decimal strings (`tf.as_string`), floats as the decimal
string of their int64 cast. This module computes the same fingerprint
with Python integers (64-bit arithmetic masked), one value at a time. It
imports NumPy only, so JAX and PyTorch input pipelines get Keras's
buckets without TensorFlow.
"""

from typing import Any

import numpy as np

_MASK = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_KMUL = 0x9DDFEA08EB382D69


def _fetch64(data, i):
    return int.from_bytes(data[i:i + 8], "little")


def _fetch32(data, i):
    return int.from_bytes(data[i:i + 4], "little")


def _rotate(value, shift):
    """64-bit rotation to the right."""
    return ((value >> shift) | (value << (64 - shift))) & _MASK


def _shift_mix(value):
    return value ^ (value >> 47)


def _hash_len16(u, v, mul=_KMUL):
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _hash_len0to16(data):
    length = len(data)
    if length >= 8:
        mul = _K2 + length * 2
        a = (_fetch64(data, 0) + _K2) & _MASK
        b = _fetch64(data, length - 8)
        c = (_rotate(b, 37) * mul + a) & _MASK
        d = ((_rotate(a, 25) + b) * mul) & _MASK
        return _hash_len16(c, d, mul)
    if length >= 4:
        mul = _K2 + length * 2
        a = _fetch32(data, 0)
        return _hash_len16((length + (a << 3)) & _MASK,
                           _fetch32(data, length - 4), mul)
    if length > 0:
        y = data[0] + (data[length >> 1] << 8)
        z = length + (data[length - 1] << 2)
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _MASK) * _K2) & _MASK
    return _K2


def _hash_len17to32(data):
    length = len(data)
    mul = _K2 + length * 2
    a = (_fetch64(data, 0) * _K1) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, length - 8) * mul) & _MASK
    d = (_fetch64(data, length - 16) * _K2) & _MASK
    return _hash_len16(
        (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK,
        (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK, mul)


def _hash_len33to64(data):
    length = len(data)
    mul = _K2 + length * 2
    a = (_fetch64(data, 0) * _K2) & _MASK
    b = _fetch64(data, 8)
    c = (_fetch64(data, length - 8) * mul) & _MASK
    d = (_fetch64(data, length - 16) * _K2) & _MASK
    y = (_rotate((a + b) & _MASK, 43) + _rotate(c, 30) + d) & _MASK
    z = _hash_len16(y, (a + _rotate((b + _K2) & _MASK, 18) + c) & _MASK, mul)
    e = (_fetch64(data, 16) * mul) & _MASK
    f = _fetch64(data, 24)
    g = ((y + _fetch64(data, length - 32)) * mul) & _MASK
    h = ((z + _fetch64(data, length - 24)) * mul) & _MASK
    return _hash_len16(
        (_rotate((e + f) & _MASK, 43) + _rotate(g, 30) + h) & _MASK,
        (e + _rotate((f + a) & _MASK, 18) + g) & _MASK, mul)


def _weak_hash_len32_with_seeds(data, i, a, b):
    w, x = _fetch64(data, i), _fetch64(data, i + 8)
    y, z = _fetch64(data, i + 16), _fetch64(data, i + 24)
    a = (a + w) & _MASK
    b = _rotate((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rotate(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def fingerprint64(data: bytes) -> int:
    """FarmHash's `Fingerprint64` (`farmhashna::Hash64`) of `data`."""
    length = len(data)
    if length <= 16:
        return _hash_len0to16(data)
    if length <= 32:
        return _hash_len17to32(data)
    if length <= 64:
        return _hash_len33to64(data)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _MASK
    z = (_shift_mix((y * _K2 + 113) & _MASK) * _K2) & _MASK
    v = (0, 0)
    w = (0, 0)
    x = (x * _K2 + _fetch64(data, 0)) & _MASK
    end = ((length - 1) // 64) * 64
    last64 = length - 64
    s = 0
    while True:
        x = (_rotate((x + y + v[0] + _fetch64(data, s + 8)) & _MASK, 37)
             * _K1) & _MASK
        y = (_rotate((y + v[1] + _fetch64(data, s + 48)) & _MASK, 42)
             * _K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _fetch64(data, s + 40)) & _MASK
        z = (_rotate((z + w[0]) & _MASK, 33) * _K1) & _MASK
        v = _weak_hash_len32_with_seeds(data, s, (v[1] * _K1) & _MASK,
                                        (x + w[0]) & _MASK)
        w = _weak_hash_len32_with_seeds(
            data, s + 32, (z + w[1]) & _MASK,
            (y + _fetch64(data, s + 16)) & _MASK)
        z, x = x, z
        s += 64
        if s == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    s = last64
    w = ((w[0] + ((length - 1) & 63)) & _MASK, w[1])
    v = ((v[0] + w[0]) & _MASK, v[1])
    w = ((w[0] + v[0]) & _MASK, w[1])
    x = (_rotate((x + y + v[0] + _fetch64(data, s + 8)) & _MASK, 37)
         * mul) & _MASK
    y = (_rotate((y + v[1] + _fetch64(data, s + 48)) & _MASK, 42)
         * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _fetch64(data, s + 40)) & _MASK
    z = (_rotate((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak_hash_len32_with_seeds(data, s, (v[1] * mul) & _MASK,
                                    (x + w[0]) & _MASK)
    w = _weak_hash_len32_with_seeds(data, s + 32, (z + w[1]) & _MASK,
                                    (y + _fetch64(data, s + 16)) & _MASK)
    z, x = x, z
    return _hash_len16(
        (_hash_len16(v[0], w[0], mul) + _shift_mix(y) * _K0 + z) & _MASK,
        (_hash_len16(v[1], w[1], mul) + x) & _MASK, mul)


def _as_bytes(value):
    """A value's bytes as `keras.layers.Hashing` hashes them."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(
            "`hash_strings` takes strings, bytes or integers (hashed as "
            f"their decimal strings, as keras.layers.Hashing). Received a "
            f"value of type {type(value).__name__}: {value!r}.")
    if isinstance(value, (int, np.integer)):
        return str(int(value)).encode("ascii")
    if isinstance(value, (float, np.floating)):
        # Keras casts floats to int64 first (truncating toward zero).
        return str(int(value)).encode("ascii")
    raise TypeError(
        "`hash_strings` takes strings, bytes or integers. Received a value "
        f"of type {type(value).__name__}: {value!r}.")


def hash_strings(values: Any, num_bins: int,
                 mask_value: Any = None) -> np.ndarray:
    """The bins `keras.layers.Hashing(num_bins, mask_value)` gives `values`.

    NumPy only: no TensorFlow. Each value's UTF-8 bytes (integers: their
    decimal string; floats: that of their int64 cast, as Keras) are hashed
    with FarmHash64's fingerprint, modulo `num_bins`. With `mask_value`,
    bin 0 is kept for values equal to it and the others go to
    `1 + fingerprint % (num_bins - 1)`, as in Keras. Keras's `salt`
    (SipHash) is not supported.

    Args:
        values: A string, bytes, integer, or an array-like of them, of any
            shape.
        num_bins: Positive integer: bins are in `[0, num_bins)`.
        mask_value: Optional value mapped to bin 0.

    Returns:
        int64 NumPy array of `values`' shape.
    """
    if (not isinstance(num_bins, int) or isinstance(num_bins, bool)
            or num_bins <= 0):
        raise ValueError(
            "`num_bins` must be a positive integer. Received: num_bins="
            f"{num_bins!r} (of type {type(num_bins).__name__}).")
    array = np.asarray(values, dtype=object)
    bins = num_bins
    if mask_value is not None and num_bins > 1:
        bins -= 1
    flat = [_as_bytes(v) for v in array.reshape(-1)]
    out = np.array([fingerprint64(b) % bins for b in flat],
                   dtype=np.int64).reshape(array.shape)
    if mask_value is not None and num_bins > 1:
        masked = np.array([v == mask_value for v in array.reshape(-1)],
                          dtype=bool).reshape(array.shape)
        out = np.where(masked, 0, out + 1)
    return out
