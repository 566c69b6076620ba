"""A vectorized decimal parser for the values of text rows.

`parse_numbers` reads 8 characters of a number at once as one `uint64` and
combines the digits with a few integer operations (the "SWAR" trick),
which is several times faster than NumPy's per-value text parsers. It
gives the same float32 as `float()`: the digits form an exact integer
`m < 2**53` and the value is one correctly rounded division `m / 10**k`.
Anything else (exponents, `nan`, more than 15 digits) falls back to
`float()` one value at a time (`fallback`).
"""

import numpy as np

from keras_embedlab.vectors._rules import is_number

_U64 = np.uint64
_LO_NIBBLES = _U64(0x0F0F0F0F0F0F0F0F)
_HI_NIBBLES = _U64(0xF0F0F0F0F0F0F0F0)
_ZEROS = _U64(0x3030303030303030)
_SIXES = _U64(0x0606060606060606)
_PAIRS = _U64(0x00FF00FF00FF00FF)
_QUADS = _U64(0x0000FFFF0000FFFF)
_OCTS = _U64(0x00000000FFFFFFFF)
_TEN, _HUNDRED, _TEN_THOUSAND = _U64(10), _U64(100), _U64(10000)
_SHIFT = [_U64(8 * k) for k in range(9)]
_LOW = [_U64((1 << (8 * k)) - 1) for k in range(9)]  # k low bytes set
_FILL = [_U64(0x3030303030303030 & ((1 << (64 - 8 * k)) - 1)) for k in range(9)]
_DOT, _MINUS = 46, 45


def _digits8(x, k):
    """Values and validity of the `k` ASCII digits in the low bytes of x.

    `x` (uint64, the first character in the lowest byte) is overwritten.
    """
    if k < 8:  # Move the digits to the high bytes, pad with '0' characters.
        x &= _LOW[k]
        x <<= _SHIFT[8 - k]
        x |= _FILL[k]
    t = x + _SIXES  # Digits are the bytes 0x30-0x39, 0x36-0x3f after + 6.
    t &= _HI_NIBBLES
    ok = t == _ZEROS
    np.bitwise_and(x, _HI_NIBBLES, out=t)
    ok &= t == _ZEROS
    x &= _LO_NIBBLES
    for shift, scale, mask in _STAGES:  # pairs, then quads, then octets
        np.right_shift(x, shift, out=t)
        x *= scale
        x += t
        x &= mask
    return x, ok


_STAGES = (
    (_SHIFT[1], _TEN, _PAIRS),
    (_SHIFT[2], _HUNDRED, _QUADS),
    (_SHIFT[4], _TEN_THOUSAND, _OCTS),
)


def _parse_layout(words, s, w0, length, dot):
    """Parses unsigned numbers of one layout; returns `(values, ok)`.

    All numbers start at `s`, have `length` bytes and a '.' at index `dot`
    (or none when `dot` is None), which the caller has checked. `w0` holds
    their first 8 bytes and is overwritten.
    """
    ndigits = length - (dot is not None)
    if not 1 <= ndigits <= 15:  # 15 digits are exact in a float64.
        return np.zeros(s.size), np.zeros(s.size, bool)
    w1 = words[s + 8] if length > 8 else None
    if dot is not None and dot < 8:  # Cut the dot out of the 16 bytes.
        if dot < 7:
            high = (w0 >> _SHIFT[dot + 1]) << _SHIFT[dot]
            w0 &= _LOW[dot]
            w0 |= high
        else:
            w0 &= _LOW[dot]
        if w1 is not None:
            w0 |= w1 << _SHIFT[7]
            w1 >>= _SHIFT[1]
    elif dot is not None:
        q = dot - 8
        high = (w1 >> _SHIFT[q + 1]) << _SHIFT[q] if q < 7 else 0
        w1 &= _LOW[q]
        w1 |= high
    value, ok = _digits8(w0, min(ndigits, 8))
    if ndigits > 8:
        low, ok1 = _digits8(w1, ndigits - 8)
        value *= _U64(10 ** (ndigits - 8))
        value += low
        ok &= ok1
    value = value.astype(np.float64)
    if dot is not None and dot < length - 1:
        value /= 10.0 ** (length - 1 - dot)  # One correctly rounded step.
    return value, ok


def _dot_positions(length):
    """Where to look for the dot, most common first, then None (no dot)."""
    return (
        [d for d in (1, 2, 0) if d < length] + list(range(3, length)) + [None]
    )


def parse_numbers(a, starts, ends):
    """Parses the byte ranges `a[starts[i]:ends[i]]` as floats.

    `a` is a uint8 array with at least 16 bytes after the last range.
    Returns `(values, bad)`: float64 values and the indices of ranges the
    fast path could not parse; `fallback` handles those.
    """
    n = starts.size
    values = np.empty(n, np.float64)
    bad = []
    if not n:
        return values, np.empty(0, np.intp)
    words = np.ndarray((a.size - 7,), "<u8", buffer=a, strides=(1,))
    neg = a[starts] == _MINUS
    s = starts + neg
    lengths = ends - s
    groups = np.flatnonzero(np.bincount(lengths)).tolist()
    for length in groups:
        # `rows` (None: all) indexes `values`; `s_`, `w0` are for those rows.
        rows = None if len(groups) == 1 else np.flatnonzero(lengths == length)
        s_ = s if rows is None else s[rows]
        if not 1 <= length <= 16:
            bad.append(np.arange(n) if rows is None else rows)
            continue
        w0 = words[s_]
        for dot in _dot_positions(length):
            if dot is None:
                hit = None
            elif dot < 8:
                hit = ((w0 >> _SHIFT[dot]) & _U64(0xFF)) == _U64(_DOT)
            else:
                hit = a[s_ + dot] == _DOT
            if hit is not None and not hit.all():
                if not hit.any():
                    continue
                miss = ~hit
                rows = np.arange(s_.size) if rows is None else rows
                part = (rows[hit], s_[hit], w0[hit])
                rows, s_, w0 = rows[miss], s_[miss], w0[miss]
            else:
                part, s_ = (rows, s_, w0), None
            value, ok = _parse_layout(words, part[1], part[2], length, dot)
            if part[0] is None:
                values[:] = value
            else:
                values[part[0]] = value
            if not ok.all():
                where = np.flatnonzero(~ok)
                bad.append(where if part[0] is None else part[0][where])
            if s_ is None:
                break
    # Set the sign bit of negative numbers (also gives -0.0 for "-0").
    sign = neg.view(np.uint8).astype(np.uint64)
    sign <<= _U64(63)
    values.view(np.uint64)[...] |= sign
    bad = np.concatenate(bad) if bad else np.empty(0, np.intp)
    return values, bad


def fallback(a, starts, ends, bad, values):
    """Parses `bad` ranges with float(); returns the first unparsable one."""
    for i in np.sort(bad).tolist():
        field = a[starts[i] : ends[i]].tobytes()
        if not is_number(field):
            return i
        values[i] = float(field)
    return None
