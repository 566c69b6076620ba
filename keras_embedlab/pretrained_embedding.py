"""`PretrainedEmbedding`: a `LookupEmbedding` initialised from word vectors."""

import collections
import inspect
import json
import numbers
import os

import keras
import numpy as np

from keras_embedlab import _validation
from keras_embedlab._base_layer import _NOT_YET, SHARED_ARGUMENTS
from keras_embedlab.lookup_embedding import LookupEmbedding
from keras_embedlab.vectors import Vectors, load_vectors

OOV_MODES = ("random", "zeros", "mean")
MASK_TOKEN = ""
OOV_TOKEN = "[UNK]"
SPECIAL_TOKENS = (MASK_TOKEN, OOV_TOKEN)
ASSET_FILENAME = "vocabulary.json"

Coverage = collections.namedtuple(
    "Coverage", ["found", "total", "lowercase", "missing"]
)
Coverage.__doc__ = """How much of a vocabulary the vectors file covered.

`total` counts the vocabulary's tokens other than the mask token `""` and
the OOV token `"[UNK]"`; `found` of them have a vector in the file,
`lowercase` of those only through their lowercased form, and `missing` lists
the rest (initialised according to `oov`).
"""


def _short(value, limit=120):
    """`repr(value)`, cut to `limit` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _token_list(value, what):
    """`value` (a list or tuple of strings) as a list, else `ValueError`."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{what} must be a list of token strings. Received: "
            f"{_short(value)} (of type {type(value).__name__})."
        )
    for i, token in enumerate(value):
        if not isinstance(token, str):
            raise ValueError(
                f"{what} must contain only strings. Received: "
                f"{_short(token)} (of type {type(token).__name__}) at "
                f"row {i}."
            )
    return list(value)


_VOCABULARY_NOT_A_LIST = (
    "`vocabulary` must be a list of token strings (row i is token i). "
    "Received: vocabulary={value} (of type {type}). The constructor, and so "
    "from_config and .keras loading, never opens a path: to read a "
    "one-token-per-line file or take the vocabulary of a StringLookup or "
    "TextVectorization, use PretrainedEmbedding.from_file(vectors_path, "
    "vocabulary=...) or PretrainedEmbedding.from_vectors(vectors, "
    "vocabulary=...)."
)


def _check_list_vocabulary(vocabulary):
    """The constructor's `vocabulary`: data only, never a path or a layer."""
    if not isinstance(vocabulary, (list, tuple)):
        raise ValueError(_VOCABULARY_NOT_A_LIST.format(
            value=_short(vocabulary), type=type(vocabulary).__name__))
    return _token_list(vocabulary, "`vocabulary`")


def _resolve_vocabulary(vocabulary):
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
            f"Received: vocabulary={_short(vocabulary)}."
        )
    return _token_list(list(vocabulary), "`vocabulary`")


def _as_coverage(value, vocabulary, what="`coverage`"):
    """`value` (a `Coverage`, its dict, or None) checked against
    `vocabulary`; returns a `Coverage` or None."""
    if value is None:
        return None
    fields = Coverage._fields
    if isinstance(value, Coverage):
        value = value._asdict()
    elif not isinstance(value, dict):
        raise ValueError(
            f"{what} must be None, a Coverage (as from_file and from_vectors "
            "make it) or a dict with its fields "
            f"{', '.join(fields)}. Received: {_short(value)} (of type "
            f"{type(value).__name__})."
        )
    if sorted(map(str, value)) != sorted(fields):
        raise ValueError(
            f"{what} must have exactly the fields {', '.join(fields)}. "
            f"Received the fields {', '.join(map(_short, value))}."
        )
    for name in ("found", "total", "lowercase"):
        count = value[name]
        if (not isinstance(count, int) or isinstance(count, bool)
                or count < 0):
            raise ValueError(
                f"{what}: `{name}` must be a non-negative integer. "
                f"Received: {name}={_short(count)} (of type "
                f"{type(count).__name__})."
            )
    missing = _token_list(value["missing"], f"{what}: `missing`")
    found, total, lowercase = value["found"], value["total"], value["lowercase"]
    if not lowercase <= found <= total or found + len(missing) != total:
        raise ValueError(
            f"{what} is inconsistent: it needs lowercase <= found <= total "
            "and found + len(missing) == total. Received: "
            f"found={found}, total={total}, lowercase={lowercase}, "
            f"{len(missing)} missing."
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
                f"Received: {_short(token)}"
                f"{' twice' if token in seen else ''}."
            )
        seen.add(token)
    return Coverage(found, total, lowercase, missing)


def _check_vocabulary(tokens):
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


def align(vectors, vocabulary, oov="random", lowercase_fallback=True,
          seed=1337):
    """`(matrix, coverage)`: row `i` is the vector for `vocabulary[i]`."""
    _check_oov(oov)
    matrix = np.zeros((len(vocabulary), vectors.dim), dtype="float32")
    found, missing, lowercase, oov_rows = [], [], 0, []
    for i, token in enumerate(vocabulary):
        if token == MASK_TOKEN:
            continue
        if token == OOV_TOKEN:
            oov_rows.append(i)
        elif token in vectors:
            matrix[i] = vectors[token]
            found.append(i)
        elif lowercase_fallback and token.lower() in vectors:
            matrix[i] = vectors[token.lower()]
            found.append(i)
            lowercase += 1
        else:
            missing.append(token)
            oov_rows.append(i)
    if not found:
        raise _NoOverlapError(_no_overlap_message(
            vocabulary, "the vectors", "the vectors start with",
            vectors.words, lowercase_fallback,
        ))
    if oov_rows and oov != "zeros":
        matrix[oov_rows] = _oov_rows(matrix[found], len(oov_rows), oov, seed)
    total = len(found) + len(missing)
    return matrix, Coverage(len(found), total, lowercase, missing)


def _check_oov(oov):
    if not isinstance(oov, str) or oov not in OOV_MODES:
        raise ValueError(
            f"`oov` must be one of {', '.join(map(repr, OOV_MODES))}. "
            f"Received: oov={_short(oov)}."
        )


def _check_seed(seed):
    if seed is not None and (not isinstance(seed, numbers.Integral)
                             or isinstance(seed, (bool, np.bool_))
                             or seed < 0):
        raise ValueError(
            "`seed` must be None or a non-negative integer (it seeds "
            f"oov='random'). Received: seed={_short(seed)} (of type "
            f"{type(seed).__name__})."
        )


def _check_verbose(verbose):
    if not (isinstance(verbose, (bool, int, str))
            and verbose in ("auto", 0, 1)):
        raise ValueError(
            "`verbose` must be 'auto', 0 (or False) or 1 (or True). "
            f"Received: verbose={_short(verbose)}."
        )


# Set by from_file/from_vectors themselves, so not layer arguments there.
_SET_BY_BUILDERS = ("input_dim", "output_dim", "vocabulary", "coverage",
                    "weights")


def _check_padding_idx(value):
    # The upper bound (the vocabulary size) is checked by the constructor.
    if value is not None and (not isinstance(value, int)
                              or isinstance(value, bool) or value < 0):
        raise ValueError(
            "`padding_idx` must be None or a non-negative integer id (below "
            f"the vocabulary size). Received: padding_idx={_short(value)} "
            f"(of type {type(value).__name__})."
        )


def _check_name(value):
    if value is not None and not isinstance(value, str):
        raise ValueError(
            "`name` must be None or a string. Received: "
            f"name={_short(value)} (of type {type(value).__name__})."
        )


def _keras_getter(getter):
    def check(name, value):
        try:
            getter(value)
        except (ValueError, TypeError) as error:
            reason = str(error).rstrip(".")
            raise ValueError(
                f"`{name}` is not valid: {reason}. Received: "
                f"{name}={_short(value)}."
            ) from None
    return check


_LAYER_ARGUMENT_CHECKS = {
    "mask_zero": _validation.check_bool,
    "sparse": _validation.check_bool,
    "autocast": _validation.check_bool,
    "invalid_ids": lambda name, value: _validation.check_invalid_ids(value),
    "padding_idx": lambda name, value: _check_padding_idx(value),
    "max_norm": lambda name, value: _validation.check_max_norm(value),
    "norm_type": lambda name, value: _validation.check_norm_type(value),
    "combiner": lambda name, value: _validation.check_combiner(value),
    "name": lambda name, value: _check_name(value),
    "embeddings_initializer": _keras_getter(keras.initializers.get),
    "embeddings_regularizer": _keras_getter(keras.regularizers.get),
    "activity_regularizer": _keras_getter(keras.regularizers.get),
    "embeddings_constraint": _keras_getter(keras.constraints.get),
    "dtype": _keras_getter(keras.dtype_policies.get),
}


def _layer_arguments():
    """The keyword arguments from_file/from_vectors pass to the layer."""
    names = set(inspect.signature(LookupEmbedding.__init__).parameters)
    names |= set(inspect.signature(keras.layers.Layer.__init__).parameters)
    # Keras-only arguments the layer accepts (warned about or at defaults).
    names |= {"input_length", "input_shape", *_NOT_YET, *SHARED_ARGUMENTS}
    return sorted(names - {"self", "kwargs", "trainable",
                           *_SET_BY_BUILDERS})


def _check_layer_kwargs(method, layer_kwargs):
    accepted = _layer_arguments()
    for name, value in layer_kwargs.items():
        if name in _SET_BY_BUILDERS:
            raise ValueError(
                f"`{name}` is set by {method} (from the vectors and the "
                f"vocabulary); remove it. Received: {name}={_short(value)}."
            )
        if name not in accepted:
            raise ValueError(
                f"{method} got an unexpected keyword argument `{name}` "
                f"(Received: {name}={_short(value)}). Besides its own "
                "arguments it takes the layer's: "
                f"{', '.join(accepted)}."
            )
        if name in _LAYER_ARGUMENT_CHECKS:
            _LAYER_ARGUMENT_CHECKS[name](name, value)


def _check_build_arguments(method, oov, lowercase_fallback, trainable, seed,
                           verbose, layer_kwargs):
    """What from_file and from_vectors check before reading anything."""
    _check_oov(oov)
    _validation.check_bool("lowercase_fallback", lowercase_fallback)
    _validation.check_bool("trainable", trainable)
    _check_seed(seed)
    _check_verbose(verbose)
    _check_layer_kwargs(method, layer_kwargs)


def _check_vocabulary_of(tokens, input_dim):
    _check_vocabulary(tokens)
    if len(tokens) != input_dim:
        raise ValueError(
            f"`vocabulary` has {len(tokens)} tokens but input_dim="
            f"{input_dim}: they must be equal (row i is token i)."
        )


class _NoOverlapError(ValueError):
    """No vocabulary token has a vector (`from_file` adds the file name)."""


_EXAMPLES = 5


def _examples(tokens):
    if not tokens:
        return "no words"
    shown = ", ".join(_short(t, 40) for t in tokens[:_EXAMPLES])
    return shown + (", ..." if len(tokens) > _EXAMPLES else "")


def _no_overlap_message(vocabulary, where, starts, words, lowercase_fallback):
    tokens = [t for t in vocabulary if t not in SPECIAL_TOKENS]
    return (
        f"None of the {len(vocabulary)} vocabulary tokens has a vector in "
        f"{where}{' (nor in lowercase)' if lowercase_fallback else ''}: "
        "check that the vocabulary and the vectors use the same tokens "
        f"(case, tokenisation). The vocabulary has {_examples(tokens)}; "
        f"{starts} {_examples(list(words))}."
    )


def _first_words(path, format, encoding, unicode_errors, loader):
    """The first few words of a vectors file, for an error message."""
    try:
        return load_vectors(path, format=format, limit=_EXAMPLES + 1,
                            encoding=encoding, unicode_errors=unicode_errors,
                            verbose=0, **loader).words
    except Exception:  # Only an example: the error being raised matters.
        return []


def _oov_rows(found_rows, count, oov, seed):
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


@keras.saving.register_keras_serializable(package="keras_embedlab")
class PretrainedEmbedding(LookupEmbedding):
    """A `LookupEmbedding` whose rows are pretrained word vectors.

    Build one with `from_file` (GloVe, word2vec or fastText files) or
    `from_vectors`. Row `i` is the vector of `vocabulary[i]`, so ids from a
    `StringLookup` or `TextVectorization` with the same vocabulary index it
    directly. Following Keras, `""` is the mask token (a zero row;
    `mask_zero` defaults to True when the vocabulary starts with it) and
    `"[UNK]"` the OOV token (initialised like a missing word). The layer is
    frozen by default. Saving to `.keras` stores the vocabulary (and
    coverage) in the layer config, as `StringLookup` does with a list
    vocabulary, so `get_config`/`from_config`, `keras.models.clone_model`
    and `keras.layers.serialize` keep them; a `.keras` file also holds them
    as the asset `vocabulary.json`, and loads without the vectors file.
    A config is data: its vocabulary is a list of strings, never a path.

    Args:
        input_dim: Number of tokens in `vocabulary`.
        output_dim: Dimension of the vectors.
        vocabulary: List of `input_dim` token strings; row `i` is token
            `i`. Only a list: to read a vocabulary file or take a lookup
            layer's vocabulary, use `from_file` or `from_vectors`.
        coverage: Optional `Coverage` of the vocabulary by the file (or its
            dict, as `get_config` writes it).
        trainable: Whether the vectors are fine-tuned. Default False.
        **kwargs: `LookupEmbedding` arguments (`weights`, `mask_zero`,
            `invalid_ids`, ...).

    Example:

    >>> layer = PretrainedEmbedding.from_file(
    ...     "glove.6B.100d.txt", vocabulary=text_vectorization)
    found 18,234 of 20,000 tokens (91.2%), 312 via lowercase
    >>> layer.most_similar("king", k=3)
    """

    def __init__(self, input_dim, output_dim, vocabulary=None, coverage=None,
                 trainable=False, **kwargs):
        super().__init__(input_dim, output_dim, trainable=trainable, **kwargs)
        self._vocabulary = None
        self._index = {}
        # True for a config without a "vocabulary" key (files saved by
        # keras_embedlab 0.1.0): the vocabulary is only in the asset.
        self._asset_expected = False
        if vocabulary is not None:
            self._set_vocabulary(_check_list_vocabulary(vocabulary))
        self.coverage = _as_coverage(coverage, self._vocabulary)

    def _set_vocabulary(self, tokens):
        _check_vocabulary_of(tokens, self.input_dim)
        self._vocabulary = list(tokens)
        self._index = {token: i for i, token in enumerate(tokens)}

    def get_config(self):
        config = super().get_config()
        config["vocabulary"] = (None if self._vocabulary is None
                                else list(self._vocabulary))
        config["coverage"] = None
        if self.coverage is not None:
            config["coverage"] = {**self.coverage._asdict(),
                                  "missing": list(self.coverage.missing)}
        return config

    @classmethod
    def from_config(cls, config):
        """The layer of `get_config()`; a config is data, never a path.

        `vocabulary` must be None or a list of strings (a `.keras` file
        cannot point the loader at a file outside the archive) and
        `coverage` None or the dict `get_config` writes. Both are checked
        before the layer is made.
        """
        config = dict(config)
        legacy = "vocabulary" not in config
        vocabulary = config.pop("vocabulary", None)
        coverage = config.pop("coverage", None)
        if vocabulary is not None:
            vocabulary = _check_list_vocabulary(vocabulary)
            input_dim = config.get("input_dim")
            if isinstance(input_dim, int) and not isinstance(input_dim, bool):
                _check_vocabulary_of(vocabulary, input_dim)
            else:  # The constructor names the bad input_dim.
                _check_vocabulary(vocabulary)
        coverage = _as_coverage(coverage, vocabulary)
        # Without the (possibly large) vocabulary, so that an error Keras
        # raises about another argument prints a short config.
        layer = super().from_config(config)
        if vocabulary is not None:
            layer._set_vocabulary(vocabulary)
        layer.coverage = coverage
        layer._asset_expected = legacy
        return layer

    @property
    def vocabulary(self):
        """`list[str]`: row `i` of the table is the vector of token `i`."""
        return list(self._vocabulary) if self._vocabulary is not None else []

    @classmethod
    def from_vectors(cls, vectors, vocabulary=None, oov="random",
                     lowercase_fallback=True, trainable=False, seed=1337,
                     verbose=1, **layer_kwargs):
        """Builds the layer from a `Vectors`, aligned to `vocabulary`.

        `vocabulary`: a list of tokens, a path to a one-token-per-line file,
        or a `StringLookup`/`TextVectorization` layer; `None` takes every
        word of `vectors`. Missing words get `oov="random"` (normal with the
        mean and standard deviation of the found vectors' values, seeded by
        `seed`), `"zeros"` or `"mean"` (the mean found vector); statistics
        are taken in float64 over the finite values, and rows are clipped
        to the float32 range, so they are always finite. With
        `lowercase_fallback`, `"Paris"` takes `"paris"`'s vector. Prints one
        coverage line unless `verbose=0`. Every argument, `layer_kwargs`
        included, is checked before any work.
        """
        if not isinstance(vectors, Vectors):
            raise ValueError(
                "`vectors` must be a keras_embedlab.Vectors (from "
                f"load_vectors or Vectors(words, matrix)). Received: "
                f"{type(vectors).__name__}."
            )
        _check_build_arguments("from_vectors", oov, lowercase_fallback,
                               trainable, seed, verbose, layer_kwargs)
        tokens = (vectors.words if vocabulary is None
                  else _resolve_vocabulary(vocabulary))
        _check_vocabulary(tokens)
        return cls._aligned(vectors, tokens, oov, lowercase_fallback,
                            trainable, seed, verbose, layer_kwargs)

    @classmethod
    def from_file(cls, path, vocabulary=None, format="auto", oov="random",
                  lowercase_fallback=True, trainable=False, limit=None,
                  encoding="utf-8", unicode_errors="strict", verbose="auto",
                  seed=1337, nonfinite=None, **layer_kwargs):
        """Loads a vectors file (see `load_vectors`) aligned to `vocabulary`.

        With a vocabulary, only the rows it needs are parsed (plus lowercased
        forms when `lowercase_fallback`), so memory follows the vocabulary,
        not the file. `format`, `limit`, `encoding`, `unicode_errors`,
        `verbose` and `nonfinite` (None: `load_vectors`' default) go to
        `load_vectors`. Every argument, `layer_kwargs` included, is checked
        before the file is opened.
        """
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise ValueError(
                "`path` must be the path of a vectors file (a str or "
                f"os.PathLike). Received: path={_short(path)} (of type "
                f"{type(path).__name__})."
            )
        _check_build_arguments("from_file", oov, lowercase_fallback,
                               trainable, seed, verbose, layer_kwargs)
        tokens = None
        wanted = None
        if vocabulary is not None:
            tokens = _resolve_vocabulary(vocabulary)
            _check_vocabulary(tokens)
            wanted = set(tokens)
            if lowercase_fallback:
                wanted.update(t.lower() for t in tokens)
        # Only when given, so that a load_vectors without it still works.
        loader = {} if nonfinite is None else {"nonfinite": nonfinite}
        vectors = load_vectors(path, format=format, vocabulary=wanted,
                               limit=limit, encoding=encoding,
                               unicode_errors=unicode_errors, verbose=verbose,
                               **loader)
        if tokens is None:
            tokens = vectors.words
            _check_vocabulary(tokens)
        try:
            return cls._aligned(vectors, tokens, oov, lowercase_fallback,
                                trainable, seed, verbose, layer_kwargs)
        except _NoOverlapError:
            # `vectors` holds only the vocabulary's rows: show the file's.
            words = _first_words(path, format, encoding, unicode_errors,
                                 loader)
            raise ValueError(_no_overlap_message(
                tokens, f"the file {os.fsdecode(path)!r}",
                "the file starts with", words, lowercase_fallback,
            )) from None

    @classmethod
    def _aligned(cls, vectors, tokens, oov, lowercase_fallback, trainable,
                 seed, verbose, layer_kwargs):
        matrix, coverage = align(vectors, tokens, oov, lowercase_fallback,
                                 seed)
        if verbose:
            print(cls._coverage_line(coverage))
        layer_kwargs.setdefault("mask_zero", tokens[0] == MASK_TOKEN)
        return cls(len(tokens), vectors.dim, vocabulary=tokens,
                   coverage=coverage, trainable=trainable, weights=matrix,
                   **layer_kwargs)

    @staticmethod
    def _coverage_line(coverage):
        share = coverage.found / coverage.total if coverage.total else 1.0
        return (f"found {coverage.found:,} of {coverage.total:,} tokens "
                f"({share:.1%}), {coverage.lowercase:,} via lowercase")

    def most_similar(self, query, k=10):
        """The `k` tokens whose vectors have the highest cosine with `query`.

        `query` is a token of the vocabulary (excluded from the answer) or a
        vector of length `output_dim`. Uses the current (possibly fine-tuned)
        table. Never returned: the mask and OOV tokens, words missing from
        the vectors file (their rows are only an OOV initialisation), and
        all-zero rows. Asking about one of those tokens raises `ValueError`
        (its neighbours would be noise); pass its row as a vector to ask
        anyway, e.g. after fine-tuning.
        """
        _validation.check_positive_int("k", k)
        if self._vocabulary is None and self._asset_expected:
            raise ValueError(
                f"Layer '{self.name}' has no vocabulary: its config has none "
                "(keras_embedlab 0.1.0 kept it only in the .keras asset "
                f"{ASSET_FILENAME}) and no such asset was loaded. Load the "
                "complete .keras file, or build the layer with from_file or "
                "from_vectors."
            )
        if self._vocabulary is None:
            raise ValueError(
                f"Layer '{self.name}' has no vocabulary, so it cannot name "
                "neighbours: build it with from_file or from_vectors, or "
                "pass vocabulary=."
            )
        table = keras.ops.convert_to_numpy(self.embeddings)
        exclude = set()
        if isinstance(query, str):
            if query not in self._index:
                raise KeyError(
                    f"{query!r} is not in this layer's vocabulary of "
                    f"{self.input_dim} tokens."
                )
            self._check_query_token(query)
            exclude.add(self._index[query])
            query = table[self._index[query]]
        query = np.asarray(query, dtype="float32")
        if query.shape != (self.output_dim,):
            raise ValueError(
                f"`query` must be a token or a vector of shape "
                f"({self.output_dim},). Received shape {query.shape}."
            )
        norms = np.linalg.norm(table, axis=1) * np.linalg.norm(query)
        scores = np.divide(table @ query, norms, out=np.full(len(table),
                           -np.inf, dtype="float32"), where=norms > 0)
        special = {MASK_TOKEN, OOV_TOKEN}
        if self.coverage is not None:
            special.update(self.coverage.missing)
        exclude.update(self._index[t] for t in special if t in self._index)
        scores[list(exclude)] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self._vocabulary[i], float(scores[i])) for i in top
                if np.isfinite(scores[i])]

    def _check_query_token(self, token):
        """Neighbours of a row that is only an initialisation are noise:
        refuse, rather than warn, since a warning is easily missed and the
        answer would look like a real one."""
        fix = ("Ask about a word of the vectors file, or pass the row itself "
               "if you fine-tuned it: layer.most_similar(vector) with "
               f"vector = layer.embeddings[{self._index[token]}].")
        if token in SPECIAL_TOKENS:
            kind = ("mask token (an all-zero padding row)"
                    if token == MASK_TOKEN else
                    "OOV token (its row is only an OOV initialisation)")
            raise ValueError(f"{token!r} is the {kind}: it has no "
                             f"neighbours to name. {fix}")
        if self.coverage is not None and token in set(self.coverage.missing):
            raise ValueError(
                f"{token!r} had no vector in the vectors file: its row is "
                "only the OOV initialisation chosen by `oov`, so its "
                f"neighbours would be noise. {fix}"
            )

    def save_assets(self, dir_path):
        coverage = self.coverage._asdict() if self.coverage else None
        with open(os.path.join(dir_path, ASSET_FILENAME), "w",
                  encoding="utf-8") as f:
            json.dump({"vocabulary": self._vocabulary, "coverage": coverage},
                      f, ensure_ascii=False)

    def load_assets(self, dir_path):
        """Reads `vocabulary.json` from the archive, and checks it.

        Files written by this version hold the vocabulary in the config
        too: the asset must then agree with it. Older files hold it only
        here. Anything else (another type, a missing key, a length other
        than `input_dim`) raises `ValueError` naming the file.
        """
        name = _asset_name(dir_path)
        path = None if dir_path is None else os.path.join(dir_path,
                                                          ASSET_FILENAME)
        if path is None or not os.path.isfile(path):
            if self._asset_expected:
                raise ValueError(
                    f"The archive has no {name} for layer '{self.name}', "
                    "whose config has no vocabulary either: the archive is "
                    "incomplete. Save the model again."
                )
            return  # The config holds the vocabulary.
        vocabulary, coverage = _read_asset(path, name)
        try:
            if vocabulary is not None:
                _check_vocabulary_of(vocabulary, self.input_dim)
            coverage = _as_coverage(coverage, vocabulary)
            if not self._asset_expected:
                _same_as_config("vocabulary", vocabulary, self._vocabulary)
                _same_as_config("coverage", coverage, self.coverage)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        if self._asset_expected:
            if vocabulary is not None:
                self._set_vocabulary(vocabulary)
            self.coverage = coverage
            self._asset_expected = False


def _asset_name(dir_path):
    """`assets/<layer path>/vocabulary.json`: the asset's name in the
    archive, from the folder Keras extracted it to."""
    if dir_path is None:
        return f"assets/.../{ASSET_FILENAME}"
    parts = os.path.normpath(dir_path).split(os.sep)
    for i, part in enumerate(parts):
        if part == "assets" and parts[i + 1:i + 2] in ([], ["layers"]):
            return "/".join(parts[i:] + [ASSET_FILENAME])
    return os.path.join(dir_path, ASSET_FILENAME)


def _read_asset(path, name):
    """`(vocabulary, coverage)` of a `vocabulary.json`, types checked."""
    try:
        with open(path, encoding="utf-8") as f:
            assets = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{name} is not valid JSON in UTF-8 ({error}): the archive is "
            "damaged. Save the model again."
        ) from None
    if not isinstance(assets, dict):
        raise ValueError(
            f"{name} must hold a JSON object with the keys 'vocabulary' and "
            f"'coverage'. Received a {type(assets).__name__}."
        )
    for key in ("vocabulary", "coverage"):
        if key not in assets:
            raise ValueError(
                f"{name} has no key {key!r}: it needs 'vocabulary' and "
                "'coverage' (each may be null)."
            )
    extra = sorted(set(assets) - {"vocabulary", "coverage"})
    if extra:
        raise ValueError(
            f"{name} has the unexpected key {_short(extra[0])}: it holds "
            "only 'vocabulary' and 'coverage'."
        )
    vocabulary = assets["vocabulary"]
    if vocabulary is not None:
        vocabulary = _token_list(vocabulary, f"{name}: 'vocabulary'")
    return vocabulary, assets["coverage"]


def _same_as_config(key, from_asset, from_config):
    if from_asset == from_config:
        return
    detail = ""
    if isinstance(from_asset, list) and isinstance(from_config, list):
        if len(from_asset) != len(from_config):
            detail = (f" ({len(from_asset)} tokens in the asset, "
                      f"{len(from_config)} in the config)")
        else:
            row = next(i for i, (a, b) in enumerate(zip(from_asset,
                                                        from_config))
                       if a != b)
            detail = (f" (row {row} is {_short(from_asset[row])} in the "
                      f"asset, {_short(from_config[row])} in the config)")
    raise ValueError(
        f"its {key!r} disagrees with the layer config{detail}: the archive "
        "was altered. Save the model again."
    )
