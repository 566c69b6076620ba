"""Aligning vectors to a vocabulary: `align` and `Coverage`.

NumPy only, like the rest of `keras_embedlab.vectors`. Row `i` of the
aligned matrix is the vector of `vocabulary[i]`, as Keras's lookup layers
number their tokens: `""` is the mask (zero) row, `"[UNK]"` and tokens
without a vector get OOV rows (`oov=`).
"""

import collections
import os
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


VOCABULARY_NOT_A_LIST = (
    "`vocabulary` must be a list of token strings (row i is token i). "
    "Received: vocabulary={value} (of type {type}). The constructor, and so "
    "from_config and .keras loading, never opens a path: to read a "
    "one-token-per-line file or take the vocabulary of a StringLookup or "
    "TextVectorization, use PretrainedEmbedding.from_file(vectors_path, "
    "vocabulary=...) or PretrainedEmbedding.from_vectors(vectors, "
    "vocabulary=...)."
)


def check_list_vocabulary(vocabulary):
    """The constructor's `vocabulary`: data only, never a path or a layer."""
    if not isinstance(vocabulary, (list, tuple)):
        raise ValueError(VOCABULARY_NOT_A_LIST.format(
            value=short_repr(vocabulary), type=type(vocabulary).__name__))
    return token_list(vocabulary, "`vocabulary`")


def resolve_vocabulary(vocabulary):
    """A list of tokens from a list, a file path, or a Keras lookup layer.

    Only `from_file` and `from_vectors` (called by the user) use it: the
    constructor, and so `from_config`, takes a list of strings only.
    """
    if hasattr(vocabulary, "get_vocabulary"):
        return [str(token) for token in vocabulary.get_vocabulary()]
    if isinstance(vocabulary, (str, os.PathLike)):
        with open(vocabulary, encoding="utf-8") as f:
            return [line.rstrip("\r\n") for line in f]
    if (isinstance(vocabulary, (bytes, dict))
            or not hasattr(vocabulary, "__iter__")):
        raise ValueError(
            "`vocabulary` must be a list of tokens, a path to a file with one "
            "token per line, or a StringLookup/TextVectorization layer. "
            f"Received: vocabulary={short_repr(vocabulary)}."
        )
    return token_list(list(vocabulary), "`vocabulary`")


def as_coverage(value, vocabulary, what="`coverage`"):
    """`value` (a `Coverage`, its dict, or None) checked against
    `vocabulary`; returns a `Coverage` or None."""
    if value is None:
        return None
    fields = (*Coverage._fields, "subwords")
    if isinstance(value, Coverage):
        value = value._asdict()
    elif not isinstance(value, dict):
        raise ValueError(
            f"{what} must be None, a Coverage (as from_file and from_vectors "
            "make it) or a dict with its fields "
            f"{', '.join(fields)}. Received: {short_repr(value)} (of type "
            f"{type(value).__name__})."
        )
    # Files saved before fastText models were read have no "subwords".
    value = {"subwords": 0, **value}
    if sorted(map(str, value)) != sorted(fields):
        raise ValueError(
            f"{what} must have exactly the fields {', '.join(fields)}. "
            f"Received the fields {', '.join(map(short_repr, value))}."
        )
    for name in ("found", "total", "lowercase", "subwords"):
        count = value[name]
        if (not isinstance(count, int) or isinstance(count, bool)
                or count < 0):
            raise ValueError(
                f"{what}: `{name}` must be a non-negative integer. "
                f"Received: {name}={short_repr(count)} (of type "
                f"{type(count).__name__})."
            )
    missing = token_list(value["missing"], f"{what}: `missing`")
    found, total, lowercase = value["found"], value["total"], value["lowercase"]
    subwords = value["subwords"]
    if (not lowercase + subwords <= found <= total
            or found + len(missing) != total):
        raise ValueError(
            f"{what} is inconsistent: it needs lowercase + subwords <= found "
            "<= total and found + len(missing) == total. Received: "
            f"found={found}, total={total}, lowercase={lowercase}, "
            f"subwords={subwords}, {len(missing)} missing."
        )
    if vocabulary is None:
        raise ValueError(
            f"{what} describes how a vectors file covered a vocabulary, but "
            "the layer has none: pass `vocabulary=` too (from_file and "
            "from_vectors do)."
        )
    counted = sum(token not in SPECIAL_TOKENS for token in vocabulary)
    if total != counted:
        raise ValueError(
            f"{what} has total={total}, but the vocabulary has {counted} "
            f"tokens other than {MASK_TOKEN!r} and {OOV_TOKEN!r}: they must "
            "be equal."
        )
    known = set(vocabulary) - set(SPECIAL_TOKENS)
    seen = set()
    for token in missing:
        if token not in known or token in seen:
            raise ValueError(
                f"{what}: `missing` must list distinct tokens of the "
                f"vocabulary other than {MASK_TOKEN!r} and {OOV_TOKEN!r}. "
                f"Received: {short_repr(token)}"
                f"{' twice' if token in seen else ''}."
            )
        seen.add(token)
    return Coverage(found, total, lowercase, missing, subwords)


def check_vocabulary(tokens):
    seen = set()
    for i, token in enumerate(tokens):
        if token in seen:
            raise ValueError(
                f"`vocabulary` has the token {token!r} twice (again at "
                f"row {i}); each row must be a different token."
            )
        seen.add(token)
    if not tokens:
        raise ValueError("`vocabulary` is empty: it needs at least a token.")


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


def first_words(path, format, encoding, unicode_errors, loader):
    """The first few words of a vectors file, for an error message."""
    try:
        from keras_embedlab.vectors import load_vectors

        return load_vectors(path, format=format, limit=EXAMPLES + 1,
                            encoding=encoding, unicode_errors=unicode_errors,
                            verbose=0, **loader).words
    except Exception:  # Only an example: the error being raised matters.
        return []


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