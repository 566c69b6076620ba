"""Aligning vectors to a vocabulary: `align` and `Coverage`.

NumPy only, like the rest of `keras_embedlab.vectors`. Row `i` of the
aligned matrix is the vector of `vocabulary[i]`, as Keras's lookup layers
number their tokens: `""` is the mask (zero) row, `"[UNK]"` and tokens
without a vector get OOV rows (`oov=`).
"""

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np

OOV_MODES = ("random", "zeros", "mean")
MASK_TOKEN = ""
OOV_TOKEN = "[UNK]"
SPECIAL_TOKENS = (MASK_TOKEN, OOV_TOKEN)

_CoverageTuple = collections.namedtuple(
    "Coverage", ["found", "total", "lowercase", "missing"]
)


class Coverage(_CoverageTuple):
    """How much of a vocabulary the vectors file covered.

    `total` counts the vocabulary's tokens other than the mask token `""`
    and the OOV token `"[UNK]"`; `found` of them have a vector in the file,
    `lowercase` of those only through their lowercased form, and `missing`
    lists the rest (initialised according to `oov`). For a fastText model,
    the attribute `subwords` counts the found tokens whose vector came from
    their character n-grams alone (they are not words of the model), and
    `missing` holds the tokens without any n-gram; `found - subwords` came
    from whole words. It is 0 for other files, and not part of the tuple:
    a `Coverage` still unpacks as `found, total, lowercase, missing`.
    """

    subwords = 0  # also for the copies `_make` and `_replace` make

    def __new__(cls, found, total, lowercase, missing, subwords=0):
        coverage = super().__new__(cls, found, total, lowercase, missing)
        coverage.subwords = subwords
        return coverage

    def __eq__(self, other):
        return (tuple.__eq__(self, other) is True
                and self.subwords == getattr(other, "subwords", 0))

    def __ne__(self, other):
        return not self == other

    __hash__ = _CoverageTuple.__hash__

    def __repr__(self):
        text = super().__repr__()
        if self.subwords:
            text = f"{text[:-1]}, subwords={self.subwords})"
        return text

    def _asdict(self):
        """The fields, and `subwords` when it is not 0."""
        fields = super()._asdict()
        if self.subwords:
            fields["subwords"] = self.subwords
        return fields


def short_repr(value, limit=120):
    """`repr(value)`, cut to `limit` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def token_list(value, what):
    """`value` (a list or tuple of strings) as a list, else `ValueError`."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{what} must be a list of token strings. Received: "
            f"{short_repr(value)} (of type {type(value).__name__})."
        )
    for i, token in enumerate(value):
        if not isinstance(token, str):
            raise ValueError(
                f"{what} must contain only strings. Received: "
                f"{short_repr(token)} (of type {type(token).__name__}) at "
                f"row {i}."
            )
    return list(value)


def align(vectors: Any, vocabulary: Sequence[str], oov: str = "random",
          lowercase_fallback: bool = True,
          seed: int | None = 1337) -> tuple[np.ndarray, Coverage]:
    """`(matrix, coverage)`: row `i` is the vector for `vocabulary[i]`.

    A token takes its own vector, else (with `lowercase_fallback`) its
    lowercased form's; with a fastText model (`FastTextVectors`), a token
    that is not a word of the model (nor in lowercase) takes its subword
    vector. A word without a vector (a row left out by
    `nonfinite="skip"`) counts as absent: the token falls back to its
    lowercased form, then (fastText) to its own subword vector when it is
    not a word of the model, else it is missing.
    """
    check_oov(oov)
    matrix = np.zeros((len(vocabulary), vectors.dim), dtype="float32")
    rows, words = _fasttext_rows(vectors, vocabulary, lowercase_fallback)
    if rows is None:  # Every word of `Vectors` has its vector.
        rows = words = vectors
    found, missing, lowercase, subwords, oov_ids = [], [], 0, 0, []
    for i, token in enumerate(vocabulary):
        if token == MASK_TOKEN:
            continue
        lower = token.lower() if lowercase_fallback else None
        if token == OOV_TOKEN:
            oov_ids.append(i)
        elif token in words and token in rows:
            matrix[i] = rows[token]
            found.append(i)
        elif lower is not None and lower in words and lower in rows:
            matrix[i] = rows[lower]
            found.append(i)
            lowercase += 1
        elif token not in words and token in rows:  # fastText n-grams
            matrix[i] = rows[token]
            found.append(i)
            subwords += 1
        else:
            missing.append(token)
            oov_ids.append(i)
    if not found:
        raise NoOverlapError(no_overlap_message(
            vocabulary, "the vectors", "the vectors start with",
            vectors.words, lowercase_fallback,
        ))
    if oov_ids and oov != "zeros":
        matrix[oov_ids] = oov_rows(matrix[found], len(oov_ids), oov, seed)
    total = len(found) + len(missing)
    return matrix, Coverage(len(found), total, lowercase, missing, subwords)


def _fasttext_rows(vectors, vocabulary, lowercase_fallback):
    """For a fastText model, `(rows, words)`: the vector of every token
    needed that has one (a dict), read in one pass over the file, and
    which of those tokens are words of the model; `(None, None)` for
    other vectors."""
    if not hasattr(vectors, "lookup"):
        return None, None
    tokens = [t for t in dict.fromkeys(vocabulary) if t not in SPECIAL_TOKENS]
    lower = [t.lower() for t in tokens] if lowercase_fallback else []
    wanted = list(dict.fromkeys(tokens + lower))
    matrix, whole, has = vectors.lookup(wanted)
    rows = {t: matrix[i] for i, t in enumerate(wanted) if has[i]}
    words = {t for t, w in zip(wanted, whole.tolist()) if w}
    return rows, words


def check_oov(oov):
    if not isinstance(oov, str) or oov not in OOV_MODES:
        raise ValueError(
            f"`oov` must be one of {', '.join(map(repr, OOV_MODES))}. "
            f"Received: oov={short_repr(oov)}."
        )

class NoOverlapError(ValueError):
    """No vocabulary token has a vector (`from_file` adds the file name)."""


EXAMPLES = 5


def examples(tokens):
    if not tokens:
        return "no words"
    shown = ", ".join(short_repr(t, 40) for t in tokens[:EXAMPLES])
    return shown + (", ..." if len(tokens) > EXAMPLES else "")


def not_counted(vocabulary):
    """`" (not counting '' and '[UNK]')"`, naming the special tokens that
    `vocabulary` has (they are never looked up), or `""` if none."""
    present = [t for t in SPECIAL_TOKENS if t in vocabulary]
    if not present:
        return ""
    return f" (not counting {' and '.join(map(repr, present))})"


def no_overlap_message(vocabulary, where, starts, words, lowercase_fallback):
    tokens = [t for t in vocabulary if t not in SPECIAL_TOKENS]
    return (
        f"None of the {len(tokens)} vocabulary tokens"
        f"{not_counted(vocabulary)} has a vector in {where}"
        f"{' (nor in lowercase)' if lowercase_fallback else ''}: "
        "check that the vocabulary and the vectors use the same tokens "
        f"(case, tokenisation). The vocabulary has {examples(tokens)}; "
        f"{starts} {examples(list(words))}."
    )


def oov_rows(found_rows, count, oov, seed):
    """`count` rows for `oov="mean"` or `"random"` from the found rows.

    The statistics are taken in float64 over the finite values (a float32
    sum of values near 3e38 overflows), and the rows are clipped to the
    float32 range, so they are always finite.
    """
    values = found_rows.astype(np.float64)
    finite = np.isfinite(values)
    if oov == "mean":
        counts = finite.sum(axis=0)
        sums = np.where(finite, values, 0.0).sum(axis=0)
        mean = np.divide(sums, counts, out=np.zeros_like(sums),
                         where=counts > 0)
        rows = np.broadcast_to(mean, (count, values.shape[1]))
    else:
        pool = values[finite]
        mean, std = (pool.mean(), pool.std()) if pool.size else (0.0, 0.0)
        rng = np.random.default_rng(seed)
        rows = rng.normal(mean, std, (count, values.shape[1]))
    limit = float(np.finfo(np.float32).max)
    return np.clip(rows, -limit, limit).astype(np.float32)