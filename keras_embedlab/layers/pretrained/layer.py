"""`PretrainedEmbedding`: a `LookupEmbedding` initialised from word vectors.

Reading files is `keras_embedlab.vectors`; aligning them to a vocabulary is
`keras_embedlab.vectors.align`; the checks of every argument, config and
asset are in `checks` and `vocabulary`. This module is the layer.
"""

import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.layers.pretrained.checks import (
    ASSET_FILENAME,
    asset_name,
    check_build_arguments,
    check_path,
    check_quantize,
    check_query_token,
    check_vocabulary_of,
    read_asset,
    same_as_config,
)
from keras_embedlab.layers.pretrained.int8 import int8_from_file
from keras_embedlab.layers.pretrained.vocabulary import (
    as_coverage,
    check_list_vocabulary,
    check_vocabulary,
    first_words,
    resolve_vocabulary,
)
from keras_embedlab.table.layer import check_quantizable
from keras_embedlab.utils import argument_checks
from keras_embedlab.vectors import FastTextVectors, Vectors, load_vectors
from keras_embedlab.vectors.align import (
    MASK_TOKEN,
    OOV_TOKEN,
    Coverage,
    NoOverlapError,
    align,
    no_overlap_message,
    not_counted,
)

__all__ = ["Coverage", "PretrainedEmbedding", "align"]


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
    found 18,234 of 20,000 tokens (91.2%), 312 via lowercase (not counting
    '' and '[UNK]')
    >>> layer.most_similar("king", k=3)
    """


    def __init__(self, input_dim: int, output_dim: int,
                 vocabulary: Sequence[str] | None = None,
                 coverage: Coverage | dict | None = None,
                 trainable: bool = False, **kwargs: Any) -> None:
        super().__init__(input_dim, output_dim, trainable=trainable, **kwargs)
        self._vocabulary = None
        self._index = {}
        # True for a config without a "vocabulary" key (files saved by
        # keras_embedlab 0.1.0): the vocabulary is only in the asset.
        self._asset_expected = False
        if vocabulary is not None:
            self._set_vocabulary(check_list_vocabulary(vocabulary))
        self.coverage = as_coverage(coverage, self._vocabulary)

    def _set_vocabulary(self, tokens, index=None):
        """`index`: `{token: row}` of `tokens`, checked tokens (no
        duplicates) whose index the caller built (`from_file(...,
        quantize="int8")` shares it with the loader)."""
        if index is None:
            check_vocabulary_of(tokens, self.input_dim)
            index = {token: i for i, token in enumerate(tokens)}
        elif len(index) != len(tokens) or len(tokens) != self.input_dim:
            raise ValueError(f"`index` must be the index of the "
                             f"{self.input_dim} tokens. Received: "
                             f"{len(index)} entries, {len(tokens)} tokens.")
        self._vocabulary = list(tokens)
        self._index = index

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
            vocabulary = check_list_vocabulary(vocabulary)
            input_dim = config.get("input_dim")
            if isinstance(input_dim, int) and not isinstance(input_dim, bool):
                check_vocabulary_of(vocabulary, input_dim)
            else:  # The constructor names the bad input_dim.
                check_vocabulary(vocabulary)
        coverage = as_coverage(coverage, vocabulary)
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
    def from_vectors(cls, vectors: Vectors, vocabulary: Any = None,
                     oov: str = "random", lowercase_fallback: bool = True,
                     trainable: bool = False, seed: int | None = 1337,
                     verbose: Any = 1,
                     **layer_kwargs: Any) -> "PretrainedEmbedding":
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
        if not isinstance(vectors, (Vectors, FastTextVectors)):
            raise ValueError(
                "`vectors` must be a keras_embedlab.Vectors or "
                "FastTextVectors (from load_vectors or Vectors(words, "
                f"matrix)). Received: "
                f"{type(vectors).__name__}."
            )
        check_build_arguments("from_vectors", oov, lowercase_fallback,
                               trainable, seed, verbose, layer_kwargs)
        tokens = (vectors.words if vocabulary is None
                  else resolve_vocabulary(vocabulary))
        check_vocabulary(tokens)
        return cls._aligned(vectors, tokens, oov, lowercase_fallback,
                            trainable, seed, verbose, layer_kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike, vocabulary: Any = None,
                  format: str = "auto", oov: str = "random",
                  lowercase_fallback: bool = True, trainable: bool = False,
                  limit: int | None = None, encoding: str = "utf-8",
                  unicode_errors: str = "strict", verbose: Any = "auto",
                  seed: int | None = 1337, nonfinite: str | None = None,
                  quantize: str | None = None,
                  **layer_kwargs: Any) -> "PretrainedEmbedding":
        """Loads a vectors file (see `load_vectors`) aligned to `vocabulary`.

        With a vocabulary, only the rows it needs are parsed (plus lowercased
        forms when `lowercase_fallback`), so memory follows the vocabulary,
        not the file. A fastText model (`.bin`) gives every token its
        whole-word vector, else its lowercased form's, else its subword
        vector; `coverage.subwords` counts the last (a token without a
        vector, such as a word whose vector `nonfinite="skip"` left out,
        is missing). `format`, `limit`, `encoding`, `unicode_errors`,
        `verbose` and `nonfinite` (None: `load_vectors`' default) go to
        `load_vectors`. Every argument, `layer_kwargs` included, is checked
        before the file is opened.

        `quantize="int8"` (with a `vocabulary`, text and word2vec binary
        files) quantizes rows as they are parsed into an int8 table, never
        holding a float32 matrix; it equals `from_file(...)` then
        `layer.quantize("int8")` bit for bit. For int4, quantize after
        loading.
        """
        check_path(path)
        check_build_arguments("from_file", oov, lowercase_fallback,
                               trainable, seed, verbose, layer_kwargs)
        check_quantize(quantize, vocabulary, nonfinite, layer_kwargs)
        tokens = None
        wanted = None
        if vocabulary is not None:
            tokens = resolve_vocabulary(vocabulary)
            check_vocabulary(tokens)
        if quantize is not None:
            return int8_from_file(cls, path, tokens, format, oov,
                                  lowercase_fallback, trainable, limit,
                                  encoding, unicode_errors, verbose, seed,
                                  nonfinite or "error", layer_kwargs)
        if tokens is not None:
            # The int8 loader has its own (`_quantized._Wanted`): this set
            # would be one more copy of the vocabulary while it reads.
            wanted = set(tokens)
            if lowercase_fallback:
                wanted.update(t.lower() for t in tokens)
        # Only when given: a load_vectors without it still works.
        loader = {} if nonfinite is None else {"nonfinite": nonfinite}
        vectors = load_vectors(path, format=format, vocabulary=wanted,
                               limit=limit, encoding=encoding,
                               unicode_errors=unicode_errors, verbose=verbose,
                               **loader)
        if tokens is None:
            tokens = vectors.words
            check_vocabulary(tokens)
        try:
            return cls._aligned(vectors, tokens, oov, lowercase_fallback,
                                trainable, seed, verbose, layer_kwargs)
        except NoOverlapError:
            # Show the file's words (`vectors` has the vocabulary's only,
            # unless it is a fastText model with its whole dictionary).
            words = (vectors.words if isinstance(vectors, FastTextVectors)
                     else first_words(path, format, encoding, unicode_errors,
                                      loader))
            raise ValueError(no_overlap_message(
                tokens, f"the file {os.fsdecode(path)!r}",
                "the file starts with", words, lowercase_fallback,
            )) from None

    def quantize(self, mode=None, type_check=True, config=None):
        # `layer.quantize(mode)`, `model.quantize(mode)`; not subclasses.
        check_quantizable(self, PretrainedEmbedding, type_check)
        super().quantize(mode, type_check=False, config=config)

    def add_weight(self, *args, **kwargs):
        # from_file(quantize="int8") hands its int8 table to `build` (once).
        values = getattr(self, "_initial_values", None)
        if values and kwargs.get("name") in values:
            held = [values.pop(kwargs["name"])]
            kwargs["initializer"] = lambda shape, dtype=None: held.pop()
        return super().add_weight(*args, **kwargs)

    @classmethod
    def _aligned(cls, vectors, tokens, oov, lowercase_fallback, trainable,
                 seed, verbose, layer_kwargs):
        matrix, coverage = align(vectors, tokens, oov, lowercase_fallback,
                                 seed)
        if verbose:
            print(cls._coverage_line(coverage, tokens))
        layer_kwargs.setdefault("mask_zero", tokens[0] == MASK_TOKEN)
        return cls(len(tokens), vectors.dim, vocabulary=tokens,
                   coverage=coverage, trainable=trainable, weights=matrix,
                   **layer_kwargs)

    @staticmethod
    def _coverage_line(coverage, vocabulary=()):
        """The line `from_file` prints: the tokens the no-overlap error
        counts (not the mask and OOV tokens, named when present)."""
        share = coverage.found / coverage.total if coverage.total else 1.0
        subwords = (f", {coverage.subwords:,} from subword n-grams"
                    if coverage.subwords else "")
        return (f"found {coverage.found:,} of {coverage.total:,} tokens "
                f"({share:.1%}), {coverage.lowercase:,} via lowercase"
                + subwords + not_counted(vocabulary))

    def most_similar(self, query: str | Any,
                     k: int = 10) -> list[tuple[str, float]]:
        """The `k` tokens whose vectors have the highest cosine with `query`.

        `query` is a token of the vocabulary (excluded from the answer) or a
        vector of length `output_dim`. Uses the current (possibly fine-tuned)
        table. Never returned: the mask and OOV tokens, words missing from
        the vectors file (their rows are only an OOV initialisation), and
        all-zero rows. Asking about one of those tokens raises `ValueError`
        (its neighbours would be noise); pass its row as a vector to ask
        anyway, e.g. after fine-tuning.
        """
        argument_checks.check_positive_int("k", k)
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
        # Dequantized, LoRA merged (`embeddings` is the int8 integers).
        table = keras.ops.convert_to_numpy(self._dense_table("float32"))
        exclude = set()
        if isinstance(query, str):
            if query not in self._index:
                raise KeyError(
                    f"{query!r} is not in this layer's vocabulary of "
                    f"{self.input_dim} tokens."
                )
            check_query_token(query, self._index[query], self.coverage)
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

    def save_assets(self, dir_path):
        coverage = self.coverage._asdict() if self.coverage else None
        with open(os.path.join(dir_path, ASSET_FILENAME), "w",
                  encoding="utf-8") as f:
            # ASCII escapes: a fastText word that is not UTF-8 is kept as
            # lone surrogates, which only escaped JSON can hold.
            json.dump({"vocabulary": self._vocabulary, "coverage": coverage},
                      f)

    def load_assets(self, dir_path):
        """Reads `vocabulary.json` from the archive, and checks it.

        Files written by this version hold the vocabulary in the config
        too: the asset must then agree with it. Older files hold it only
        here. Anything else (another type, a missing key, a length other
        than `input_dim`) raises `ValueError` naming the file.
        """
        name = asset_name(dir_path)
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
        vocabulary, coverage = read_asset(path, name)
        try:
            if vocabulary is not None:
                check_vocabulary_of(vocabulary, self.input_dim)
            coverage = as_coverage(coverage, vocabulary)
            if not self._asset_expected:
                same_as_config("vocabulary", vocabulary, self._vocabulary)
                same_as_config("coverage", coverage, self.coverage)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        if self._asset_expected:
            if vocabulary is not None:
                self._set_vocabulary(vocabulary)
            self.coverage = coverage
            self._asset_expected = False
