"""What `PretrainedEmbedding` checks before it reads or builds anything.

`from_file` and `from_vectors` check every argument, the layer's keyword
arguments included, before a file is opened; `load_assets` checks the
`vocabulary.json` asset of a `.keras` archive and names it in each error.
The shared layer arguments are checked by their own validators
(`layers.base.SHARED_ARGUMENTS`); the vocabulary size, which bounds
`padding_idx`, is only known after reading, when the layer checks it again.
"""

import inspect
import json
import numbers
import os

import keras
import numpy as np

from keras_embedlab.layers.base import _TABLE_ARGUMENTS, SHARED_ARGUMENTS
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.layers.pretrained.vocabulary import (
    check_vocabulary,
)
from keras_embedlab.utils import argument_checks
from keras_embedlab.vectors.align import (
    MASK_TOKEN,
    SPECIAL_TOKENS,
    check_oov,
    short_repr,
    token_list,
)

ASSET_FILENAME = "vocabulary.json"


def check_seed(seed):
    if seed is not None and (not isinstance(seed, numbers.Integral)
                             or isinstance(seed, (bool, np.bool_))
                             or seed < 0):
        raise ValueError(
            "`seed` must be None or a non-negative integer (it seeds "
            f"oov='random'). Received: seed={short_repr(seed)} (of type "
            f"{type(seed).__name__})."
        )


def check_verbose(verbose):
    if not (isinstance(verbose, (bool, int, str))
            and verbose in ("auto", 0, 1)):
        raise ValueError(
            "`verbose` must be 'auto', 0 (or False) or 1 (or True). "
            f"Received: verbose={short_repr(verbose)}."
        )


# Set by from_file/from_vectors themselves, so not layer arguments there.
SET_BY_BUILDERS = ("input_dim", "output_dim", "vocabulary", "coverage",
                    "weights")


def _check_name(value):
    if value is not None and not isinstance(value, str):
        raise ValueError(
            "`name` must be None or a string. Received: "
            f"name={short_repr(value)} (of type {type(value).__name__})."
        )


def _keras_getter(getter):
    def check(name, value):
        try:
            getter(value)
        except (ValueError, TypeError) as error:
            reason = str(error).rstrip(".")
            raise ValueError(
                f"`{name}` is not valid: {reason}. Received: "
                f"{name}={short_repr(value)}."
            ) from None
    return check


def _shared(name):
    # Before reading, the vocabulary size is unknown: `padding_idx` is
    # checked without its upper bound here, and with it by the layer.
    check = SHARED_ARGUMENTS[name][1]
    return lambda _, value: check(value, None)


_LAYER_ARGUMENT_CHECKS = {
    **{name: _shared(name) for name in SHARED_ARGUMENTS},
    "sparse": argument_checks.check_bool,
    "autocast": argument_checks.check_bool,
    "name": lambda name, value: _check_name(value),
    "embeddings_initializer": _keras_getter(keras.initializers.get),
    "embeddings_regularizer": _keras_getter(keras.regularizers.get),
    "activity_regularizer": _keras_getter(keras.regularizers.get),
    "embeddings_constraint": _keras_getter(keras.constraints.get),
    "dtype": _keras_getter(keras.dtype_policies.get),
}


def layer_arguments():
    """The keyword arguments from_file/from_vectors pass to the layer."""
    names = set(inspect.signature(LookupEmbedding.__init__).parameters)
    names |= set(inspect.signature(keras.layers.Layer.__init__).parameters)
    # Keras-only arguments the layer accepts (warned about or at defaults).
    names |= {"input_length", "input_shape", *_TABLE_ARGUMENTS,
              *SHARED_ARGUMENTS}
    return sorted(names - {"self", "kwargs", "trainable",
                           *SET_BY_BUILDERS})


def check_layer_kwargs(method, layer_kwargs):
    accepted = layer_arguments()
    for name, value in layer_kwargs.items():
        if name in SET_BY_BUILDERS:
            raise ValueError(
                f"`{name}` is set by {method} (from the vectors and the "
                f"vocabulary); remove it. Received: {name}={short_repr(value)}."
            )
        if name not in accepted:
            raise ValueError(
                f"{method} got an unexpected keyword argument `{name}` "
                f"(Received: {name}={short_repr(value)}). Besides its own "
                "arguments it takes the layer's: "
                f"{', '.join(accepted)}."
            )
        if name in _LAYER_ARGUMENT_CHECKS:
            _LAYER_ARGUMENT_CHECKS[name](name, value)


def check_path(path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ValueError(
            "`path` must be the path of a vectors file (a str or "
            f"os.PathLike). Received: path={short_repr(path)} (of type "
            f"{type(path).__name__})."
        )


def check_query_token(token, row, coverage):
    """Refuses neighbours of a row that is only an initialisation (noise),
    rather than warning: a warning is missed, and the answer looks real."""
    fix = ("Ask about a word of the vectors file, or pass the row itself "
           "if you fine-tuned it: layer.most_similar(vector) with "
           f"vector = layer.embeddings[{row}].")
    if token in SPECIAL_TOKENS:
        kind = ("mask token (an all-zero padding row)"
                if token == MASK_TOKEN else
                "OOV token (its row is only an OOV initialisation)")
        raise ValueError(f"{token!r} is the {kind}: it has no "
                         f"neighbours to name. {fix}")
    if coverage is not None and token in set(coverage.missing):
        raise ValueError(
            f"{token!r} had no vector in the vectors file: its row is "
            "only the OOV initialisation chosen by `oov`, so its "
            f"neighbours would be noise. {fix}"
        )


def check_build_arguments(method, oov, lowercase_fallback, trainable, seed,
                           verbose, layer_kwargs):
    """What from_file and from_vectors check before reading anything."""
    check_oov(oov)
    argument_checks.check_bool("lowercase_fallback", lowercase_fallback)
    argument_checks.check_bool("trainable", trainable)
    check_seed(seed)
    check_verbose(verbose)
    check_layer_kwargs(method, layer_kwargs)


QUANTIZE_MODES = (None, "int8")


def check_quantize(quantize, vocabulary, nonfinite, layer_kwargs):
    """`from_file`'s `quantize`, and what it cannot be combined with."""
    if not (quantize is None or isinstance(quantize, str)) \
            or quantize not in QUANTIZE_MODES:
        raise ValueError(
            "`quantize` must be None (a float table) or 'int8' (the table "
            "built directly in int8, never holding the float32 matrix). "
            f"Received: quantize={short_repr(quantize)}. For 'int4', load "
            "with quantize=None (or 'int8' from a float copy) and call "
            "layer.quantize('int4')."
        )
    if quantize is None:
        return
    problem = None
    if vocabulary is None:
        problem = ("needs a `vocabulary` (the int8 table is aligned to it "
                   "as rows are read)")
    elif nonfinite == "keep":
        problem = ("cannot keep NaN or infinite rows (nonfinite='keep'): "
                   "int8 has no such values; use nonfinite='error' or "
                   "'skip'")
    elif layer_kwargs.get("quantization_config") is not None:
        problem = ("uses Keras's default int8 quantizer: remove "
                   "`quantization_config`, or load with quantize=None and "
                   "call layer.quantize('int8', config=...)")
    elif layer_kwargs.get("tie_weights", True) is not True:
        problem = ("builds a tied table only: with tie_weights=False load "
                   "with quantize=None and call layer.quantize('int8')")
    else:
        dtype = layer_kwargs.get("dtype")
        policy = (keras.config.dtype_policy() if dtype is None
                  else keras.dtype_policies.get(dtype))
        if policy.quantization_mode is not None:
            problem = (f"quantizes the table itself: pass a float dtype "
                       f"policy, not dtype={short_repr(dtype)}")
        elif policy.variable_dtype != "float32":
            problem = ("quantizes float32 rows: use a dtype policy whose "
                       "variables are float32 (e.g. 'float32' or "
                       f"'mixed_bfloat16'), not dtype={short_repr(dtype)}")
    if problem:
        raise ValueError(f"from_file(quantize='int8') {problem}.")


def check_vocabulary_of(tokens, input_dim):
    check_vocabulary(tokens)
    if len(tokens) != input_dim:
        raise ValueError(
            f"`vocabulary` has {len(tokens)} tokens but input_dim="
            f"{input_dim}: they must be equal (row i is token i)."
        )

def asset_name(dir_path):
    """`assets/<layer path>/vocabulary.json`: the asset's name in the
    archive, from the folder Keras extracted it to."""
    if dir_path is None:
        return f"assets/.../{ASSET_FILENAME}"
    parts = os.path.normpath(dir_path).split(os.sep)
    for i, part in enumerate(parts):
        if part == "assets" and parts[i + 1:i + 2] in ([], ["layers"]):
            return "/".join(parts[i:] + [ASSET_FILENAME])
    return os.path.join(dir_path, ASSET_FILENAME)


def read_asset(path, name):
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
            f"{name} has the unexpected key {short_repr(extra[0])}: it holds "
            "only 'vocabulary' and 'coverage'."
        )
    vocabulary = assets["vocabulary"]
    if vocabulary is not None:
        vocabulary = token_list(vocabulary, f"{name}: 'vocabulary'")
    return vocabulary, assets["coverage"]


def same_as_config(key, from_asset, from_config):
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
            detail = (f" (row {row} is {short_repr(from_asset[row])} in the "
                      f"asset, {short_repr(from_config[row])} in the config)")
    raise ValueError(
        f"its {key!r} disagrees with the layer config{detail}: the archive "
        "was altered. Save the model again."
    )