"""`PretrainedEmbedding.from_file(..., quantize="int8")`: the layer built
directly in int8 from `vectors._quantized.load_int8`'s table, so that no
float table variable (nor the float32 matrix) ever exists."""

import os

import keras

from keras_embedlab import backend
from keras_embedlab.layers.pretrained.vocabulary import (
    first_words,
)
from keras_embedlab.vectors._fasttext import HEAD_BYTES, is_fasttext
from keras_embedlab.vectors._quantized import load_int8
from keras_embedlab.vectors.align import (
    MASK_TOKEN,
    NoOverlapError,
    no_overlap_message,
)


def _refuse_fasttext(path, format):
    """fastText models compute subword vectors in float: not streamed."""
    head = b""
    if format == "auto":
        try:
            with open(path, "rb") as stream:  # The file the user named.
                head = stream.read(HEAD_BYTES)
        except OSError:
            pass  # `load_int8` reports it, as the float path does.
    if format == "fasttext-binary" or (format == "auto"
                                       and is_fasttext(head)):
        raise ValueError(
            f"from_file(quantize='int8') reads text and word2vec binary "
            f"files; {os.fsdecode(path)!r} is a fastText model, whose "
            "subword vectors are computed in float. Load it with "
            "quantize=None (memory follows the vocabulary) and call "
            "layer.quantize('int8')."
        )


def int8_from_file(cls, path, tokens, format, oov, lowercase_fallback,
                   trainable, limit, encoding, unicode_errors, verbose,
                   seed, nonfinite, layer_kwargs):
    _refuse_fasttext(path, format)
    # The layer's token -> row dictionary, built once (`tokens` are
    # checked: no duplicates) and read by the loader too.
    index = {token: i for i, token in enumerate(tokens)}
    try:
        q, scale, coverage = load_int8(
            path, tokens, keras.backend.epsilon(), format=format, oov=oov,
            lowercase_fallback=lowercase_fallback, limit=limit,
            encoding=encoding, unicode_errors=unicode_errors,
            verbose=verbose, seed=seed, nonfinite=nonfinite, index=index)
    except NoOverlapError:
        words = first_words(path, format, encoding, unicode_errors,
                            {"nonfinite": nonfinite})
        raise ValueError(no_overlap_message(
            tokens, f"the file {os.fsdecode(path)!r}",
            "the file starts with", words, lowercase_fallback,
        )) from None
    if verbose:
        print(cls._coverage_line(coverage, tokens))
    layer_kwargs.setdefault("mask_zero", tokens[0] == MASK_TOKEN)
    dtype = layer_kwargs.pop("dtype", None)
    policy = (keras.config.dtype_policy() if dtype is None
              else keras.dtype_policies.get(dtype))
    layer = cls(len(tokens), q.shape[1], trainable=trainable,
                dtype=f"int8_from_{policy.name}", **layer_kwargs)
    layer._set_vocabulary(tokens, index)
    layer.coverage = coverage
    # `build` creates the int8 variables from these arrays (no zeros
    # first): see `PretrainedEmbedding.add_weight`.
    # The variable adopts the aligned NumPy table's memory on every
    # backend: no second copy of the table is made
    # (`backend.adopt_host_array`).
    object.__setattr__(layer, "_initial_values",
                       {"embeddings": backend.adopt_host_array(q),
                        "embeddings_scale": scale})
    del q, scale
    try:
        layer.build()
    finally:
        object.__setattr__(layer, "_initial_values", None)
    return layer
