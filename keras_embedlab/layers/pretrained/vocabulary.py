"""What `PretrainedEmbedding` takes as a vocabulary and a coverage.

The layer's concerns, kept out of `keras_embedlab.vectors` (NumPy only, no
layer): the constructor's list-only `vocabulary` (`from_config` and `.keras`
loading never open a path), the vocabulary of `from_file`/`from_vectors`
(a list, a one-token-per-line file or a Keras `StringLookup`/
`TextVectorization` layer), the saved `coverage` checked against the
vocabulary, and the first words of a file for an error message.
"""

import os

from keras_embedlab.vectors.align import (
    EXAMPLES,
    MASK_TOKEN,
    OOV_TOKEN,
    SPECIAL_TOKENS,
    Coverage,
    short_repr,
    token_list,
)

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


def first_words(path, format, encoding, unicode_errors, loader):
    """The first few words of a vectors file, for an error message."""
    try:
        from keras_embedlab.vectors import load_vectors

        return load_vectors(path, format=format, limit=EXAMPLES + 1,
                            encoding=encoding, unicode_errors=unicode_errors,
                            verbose=0, **loader).words
    except Exception:  # Only an example: the error being raised matters.
        return []
