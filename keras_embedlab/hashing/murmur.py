"""MurmurHash3 x64 128-bit of one 64-bit id, in 32-bit words.

Written once for two array namespaces (`xp`): NumPy (the input pipeline,
`hash_ids` on NumPy arrays) and `keras.ops` (inside compiled graphs). Every
64-bit quantity is a pair `(low, high)` of 32-bit words held in int32
arrays: JAX without x64 has no 64-bit integers, and PyTorch has no uint32
addition or shifts. int32 multiplication, addition, xor, and, or and left
shift give the same bits as uint32 arithmetic (two's complement wraps);
right shifts are masked to make them logical. Keys are unsigned 32-bit
values stored in int32 bit patterns; `bucket` reduces them as unsigned.

The id is hashed as its 8 little-endian bytes, as
`mmh3.hash128(id.to_bytes(8, "little"), seed, x64arch=True)` and thinc's
`NumpyOps().hash` do; the four keys are that hash's 32-bit words, low word
first. NumPy only: no Keras import.
"""

_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F
_F1 = 0xFF51AFD7ED558CCD
_F2 = 0xC4CEB9FE1A85EC53
MAX_HASHES = 4


def signed32(value):
    """The int32 with the bits of the uint32 `value`."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


class _Words:
    """32-bit word arithmetic on int32 arrays of one namespace."""

    def __init__(self, xp, const):
        self.xp = xp
        self.const = const  # Python int (uint32 bits) -> int32 scalar array

    def srl(self, x, n):
        """Logical right shift of uint32 bits held in int32."""
        xp = self.xp
        return xp.bitwise_and(xp.right_shift(x, n),
                              self.const((1 << (32 - n)) - 1))

    def shl(self, x, n):
        return self.xp.left_shift(x, n)

    def wide_multiply(self, a, b):
        """The 64-bit product of uint32 `a` (array) and `b` (a Python int),
        as (low, high) words: 16-bit limbs keep each partial product in 32
        bits."""
        xp, c = self.xp, self.const
        mask = c(0xFFFF)
        a0, a1 = xp.bitwise_and(a, mask), self.srl(a, 16)
        b0, b1 = c(b & 0xFFFF), c(b >> 16)
        p00, p01 = xp.multiply(a0, b0), xp.multiply(a0, b1)
        p10, p11 = xp.multiply(a1, b0), xp.multiply(a1, b1)
        middle = xp.add(xp.add(self.srl(p00, 16), xp.bitwise_and(p01, mask)),
                        xp.bitwise_and(p10, mask))
        low = xp.bitwise_or(self.shl(middle, 16), xp.bitwise_and(p00, mask))
        high = xp.add(xp.add(p11, self.srl(p01, 16)),
                      xp.add(self.srl(p10, 16), self.srl(middle, 16)))
        return low, high

    def multiply(self, x, constant):
        """(x * constant) mod 2**64, `constant` a Python int."""
        xp, c = self.xp, self.const
        low, high = x
        product_low, carry = self.wide_multiply(low, constant & 0xFFFFFFFF)
        high = xp.add(carry, xp.add(
            xp.multiply(low, c(constant >> 32)),
            xp.multiply(high, c(constant & 0xFFFFFFFF))))
        return product_low, high

    def add(self, x, y):
        """(x + y) mod 2**64."""
        xp, c = self.xp, self.const
        low = xp.add(x[0], y[0])
        # Unsigned low < x_low: compare with the sign bits flipped.
        sign = c(0x80000000)
        carry = xp.less(xp.bitwise_xor(low, sign), xp.bitwise_xor(x[0], sign))
        carry = xp.where(carry, c(1), c(0))
        return low, xp.add(xp.add(x[1], y[1]), carry)

    def rotate_left_31(self, x):
        xp = self.xp
        low, high = x
        return (xp.bitwise_or(self.shl(low, 31), self.srl(high, 1)),
                xp.bitwise_or(self.shl(high, 31), self.srl(low, 1)))

    def xor_shift_33(self, x):
        """x ^ (x >> 33)."""
        return self.xp.bitwise_xor(x[0], self.srl(x[1], 1)), x[1]

    def fmix(self, x):
        x = self.multiply(self.xor_shift_33(x), _F1)
        x = self.multiply(self.xor_shift_33(x), _F2)
        return self.xor_shift_33(x)


def murmur_keys(low, high, seed, num_hashes, xp, const):
    """The first `num_hashes` 32-bit keys of the ids `(low, high)`.

    `low`, `high`: int32 arrays, the words of each id's 64-bit two's
    complement. `seed`: a Python int in `[0, 2**32)`. `const(value)` makes
    an int32 scalar array of `xp` from the uint32 bits `value`.
    """
    words = _Words(xp, const)
    k1 = words.multiply((low, high), _C1)
    k1 = words.multiply(words.rotate_left_31(k1), _C2)
    # h1 = h2 = seed; h1 ^= k1; both ^= length (8 bytes).
    h1 = (xp.bitwise_xor(k1[0], const(seed ^ 8)), k1[1])
    h2 = (xp.add(xp.zeros_like(low), const(seed ^ 8)), xp.zeros_like(low))
    h1 = words.add(h1, h2)
    h2 = words.add(h2, h1)
    h1, h2 = words.fmix(h1), words.fmix(h2)
    h1 = words.add(h1, h2)
    h2 = words.add(h2, h1)
    return [h1[0], h1[1], h2[0], h2[1]][:num_hashes]


def bucket(key, num_buckets, xp, const):
    """`key % num_buckets` with `key` the uint32 bits held in int32.

    `num_buckets` is at most `2**31 - 1`. A negative int32 key stands for
    `key + 2**32`; its remainder is `key % n + 2**32 % n`, reduced once more
    without overflowing int32.
    """
    remainder = xp.mod(key, const(num_buckets))
    wrap = (1 << 32) % num_buckets
    rest = const(num_buckets - wrap)  # in (0, num_buckets]
    wrapped = xp.where(xp.greater_equal(remainder, rest),
                       xp.subtract(remainder, rest),
                       xp.add(remainder, const(wrap)))
    return xp.where(xp.less(key, const(0)), wrapped, remainder)


def split_numpy(ids):
    """The (low, high) int32 words of NumPy integer ids' 64-bit two's
    complement (uint64 ids: their own bits)."""
    import numpy as np

    ids = np.asarray(ids)
    if ids.dtype.kind == "u":
        ids = ids.astype(np.uint64).view(np.int64)
    else:
        ids = ids.astype(np.int64)
    low = np.bitwise_and(ids, 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    high = np.right_shift(ids, 32).astype(np.int32)
    return low, high
