"""Claim: an embedding of 13 ids in 3 dimensions has 13 x 3 = 39 parameters.

The month example: ids 1..12 for the months and 0 for padding. The lookup
table has 39 parameters whatever the sequence length; `OneHotDense` with a
bias adds one bias per output dimension (42). Exits non-zero if
`model.summary()` says otherwise.

    python examples/parameter_count.py
"""

import argparse
import io
import re
import sys
from contextlib import redirect_stdout

import keras

import keras_embedlab as kel


def summary_total(model):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        model.summary()
    text = buffer.getvalue()
    print(text)
    return int(re.search(r"Total params: ([\d,]+)", text).group(1)
               .replace(",", ""))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=1000,
                        help="sequence length (does not change the count)")
    args = parser.parse_args(argv)
    ok = True
    # Each layer labelled by the call that builds it (`LookupEmbedding` has
    # no `use_bias`: its table is all it has).
    for label, layer, expected in [
        ("LookupEmbedding(13, 3)", kel.LookupEmbedding(13, 3), 39),
        ("OneHotDense(13, 3)", kel.OneHotDense(13, 3), 39),
        ("OneHotDense(13, 3, use_bias=True)",
         kel.OneHotDense(13, 3, use_bias=True), 42),
    ]:
        model = keras.Sequential(
            [keras.Input((args.length,), dtype="int32"), layer]
        )
        total = summary_total(model)
        print(f"{label}: {total} parameters, expected {expected}\n")
        ok &= total == expected == layer.count_params()
    print("evidence agrees with the README" if ok else "CONTRADICTION")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
