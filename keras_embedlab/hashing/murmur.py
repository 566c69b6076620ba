"""MurmurHash3 x64 128-bit of one 64-bit id, in 32-bit words.

Written once for two array namespaces (`xp`): NumPy (the input pipeline,
`hash_ids` on NumPy arrays) and `keras.ops` (inside compiled graphs). Every
64-bit quantity is a pair `(low, high)` of 32-bit words: JAX without x64
has no 64-bit integers. A word is a value in `[0, 2**32)` held in uint32
(JAX without x64) or in int64 (everywhere else: PyTorch has no uint32
addition or shifts). Every operation keeps its result in `[0, 2**32)`
without overflowing either dtype (products are taken on 16-bit limbs), so
no step relies on signed wrap-around, which compilers may treat as
undefined (torch.compile's C++ code did).

The id is hashed as its 8 little-endian bytes, as
`mmh3.hash128(id.to_bytes(8, "little"), seed, x64arch=True)` and thinc's
`NumpyOps().hash` do; the four keys are that hash's 32-bit words, low word
first. NumPy only: no Keras import.
"""

_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F
_F1 = 0xFF51AFD7ED558CCD
_F2 = 0xC4CEB9FE1A85EC53
_WORD = 0xFFFFFFFF
_LIMB = 0xFFFF
MAX_HASHES = 4


class _Words:
    """Word arithmetic on arrays of one namespace; `const(value)` makes a
    scalar array of the words' dtype from a Python int in `[0, 2**32)`."""

    def __init__(self, xp, const, wide, divide=None):
        self.xp = xp
        self.const = const
        # int64 words: a word times a 16-bit limb fits, so products need
        # half the operations of uint32 words' 16 x 16-bit limbs.
        self.wide = wide
        # With `divide(x, power_of_two)` (flooring, `x >= 0`), the serving
        # form: shifts and masks by constants are divisions and
        # multiplications, OR of disjoint bits an addition and XOR
        # `a + b - 2 * (a & b)`, so that the only bit operation left is
        # AND (exporters lack OR, XOR and signed shifts).
        self.divide = divide

    def mask(self, x, bits=_WORD):
        if self.divide is None:
            return self.xp.bitwise_and(x, self.const(bits))
        if bits == _WORD and not self.wide:
            return x  # uint32 words wrap by themselves.
        return self.xp.subtract(x, self.xp.multiply(
            self.divide(x, bits + 1), self.const(bits + 1)))

    def srl(self, x, n):
        if self.divide is None:
            return self.xp.right_shift(x, n)  # Words are never negative.
        return self.divide(x, 1 << n)

    def shl(self, x, n):
        if self.divide is None:
            return self.mask(self.xp.left_shift(x, n))
        return self.mask(self.xp.multiply(x, self.const(1 << n)))

    def join(self, x, y):
        """`x | y` for words without common bits."""
        if self.divide is None:
            return self.xp.bitwise_or(x, y)
        return self.xp.add(x, y)

    def xor(self, x, y):
        if self.divide is None:
            return self.xp.bitwise_xor(x, y)
        both = self.xp.bitwise_and(x, y)
        return self.mask(self.xp.subtract(self.xp.add(x, y),
                                          self.xp.add(both, both)))

    def add32(self, *terms):
        total = terms[0]
        for term in terms[1:]:
            total = self.xp.add(total, term)
        return self.mask(total)

    def low_product(self, a, b):
        """`(a * b) mod 2**32`, `b` a Python int below `2**32`."""
        xp, c = self.xp, self.const
        if self.wide:
            low = xp.multiply(a, c(b & _LIMB))  # < 2**48
            high = self.mask(xp.multiply(a, c(b >> 16)), _LIMB)
            return self.mask(xp.add(low, self.shl(high, 16)))
        low = xp.multiply(self.mask(a, _LIMB), c(b))  # < 2**48
        high = self.mask(xp.multiply(self.srl(a, 16), c(b & _LIMB)), _LIMB)
        return self.add32(low, self.shl(high, 16))

    def wide_product(self, a, b):
        """The 64-bit product of word `a` and `b` (a Python int below
        `2**32`), as (low, high) words, from 16-bit limbs."""
        xp, c = self.xp, self.const
        if self.wide:
            p0 = xp.multiply(a, c(b & _LIMB))  # < 2**48
            p1 = xp.multiply(a, c(b >> 16))  # < 2**48
            total = xp.add(p0, xp.multiply(self.mask(p1, _LIMB),
                                           c(1 << 16)))
            return self.mask(total), self.add32(self.srl(total, 32),
                                                self.srl(p1, 16))
        a0, a1 = self.mask(a, _LIMB), self.srl(a, 16)
        b0, b1 = c(b & _LIMB), c(b >> 16)
        p00, p01 = xp.multiply(a0, b0), xp.multiply(a0, b1)
        p10, p11 = xp.multiply(a1, b0), xp.multiply(a1, b1)
        middle = self.add32(self.srl(p00, 16), self.mask(p01, _LIMB),
                            self.mask(p10, _LIMB))
        low = self.join(self.shl(middle, 16), self.mask(p00, _LIMB))
        high = self.add32(p11, self.srl(p01, 16), self.srl(p10, 16),
                          self.srl(middle, 16))
        return low, high

    def multiply(self, x, constant):
        """`(x * constant) mod 2**64`, `constant` a Python int."""
        low, high = x
        product_low, carry = self.wide_product(low, constant & _WORD)
        return product_low, self.add32(
            carry, self.low_product(low, constant >> 32),
            self.low_product(high, constant & _WORD))

    def add(self, x, y):
        """`(x + y) mod 2**64`."""
        xp, c = self.xp, self.const
        low = self.add32(x[0], y[0])
        carry = xp.where(xp.less(low, x[0]), c(1), c(0))
        return low, self.add32(x[1], y[1], carry)

    def rotate_left_31(self, x):
        low, high = x
        return (self.join(self.shl(low, 31), self.srl(high, 1)),
                self.join(self.shl(high, 31), self.srl(low, 1)))

    def xor_shift_33(self, x):
        """`x ^ (x >> 33)`."""
        return self.xor(x[0], self.srl(x[1], 1)), x[1]

    def fmix(self, x):
        x = self.multiply(self.xor_shift_33(x), _F1)
        x = self.multiply(self.xor_shift_33(x), _F2)
        return self.xor_shift_33(x)


def murmur_keys(low, high, seed, num_hashes, xp, const, wide, divide=None):
    """The first `num_hashes` 32-bit keys of the ids `(low, high)`.

    `low`, `high`: word arrays (values in `[0, 2**32)`) of each id's 64-bit
    two's complement, int64 (`wide=True`) or uint32. `seed`: a Python int
    in `[0, 2**32)`. `const(value)` makes a scalar of the words' dtype.
    `divide(x, n)`: flooring division of words by a power of two; given,
    the same keys with AND as the only bit operation (`_Words`).
    """
    words = _Words(xp, const, wide, divide)
    k1 = words.multiply((low, high), _C1)
    k1 = words.multiply(words.rotate_left_31(k1), _C2)
    # h1 = h2 = seed; h1 ^= k1; both ^= length (8 bytes).
    zeros = xp.zeros_like(low)
    h1 = (words.xor(k1[0], const(seed ^ 8)), k1[1])
    h2 = (xp.add(zeros, const(seed ^ 8)), zeros)
    h1 = words.add(h1, h2)
    h2 = words.add(h2, h1)
    h1, h2 = words.fmix(h1), words.fmix(h2)
    h1 = words.add(h1, h2)
    h2 = words.add(h2, h1)
    return [h1[0], h1[1], h2[0], h2[1]][:num_hashes]


def split_numpy(ids):
    """The (low, high) int64 words of NumPy integer ids' 64-bit two's
    complement (uint64 ids: their own bits)."""
    import numpy as np

    ids = np.asarray(ids)
    if ids.dtype.kind == "u":
        ids = ids.astype(np.uint64).view(np.int64)
    else:
        ids = ids.astype(np.int64)
    return (np.bitwise_and(ids, _WORD),
            np.bitwise_and(np.right_shift(ids, 32), _WORD))
