"""fastText subwords: vectors for words the model never saw, fully offline.

Trains a tiny fastText model (with gensim, written as a fastText `.bin` by
`save_facebook_model`), then builds a `PretrainedEmbedding` for a
vocabulary that holds words the model never saw. Those get their vector
from their character n-grams, as fastText's `get_word_vector` computes it,
instead of a random OOV row; the coverage line counts them, and their
nearest neighbours share their stem.

    pip install gensim   # or: pip install ".[examples]" in a checkout
    KERAS_BACKEND=jax python examples/fasttext_subwords.py
"""

import argparse
import os
import sys
import tempfile

import numpy as np

import keras_embedlab as kel

STEMS = ["walk", "talk", "play", "jump", "paint", "cook", "clean", "climb"]
ENDINGS = ["", "s", "ed", "ing", "er"]
UNSEEN = ["walkway", "repainted", "cookings", "jumpy"]


def corpus(sentences, rng):
    words = [stem + end for stem in STEMS for end in ENDINGS]
    others = ["the", "a", "we", "they", "often", "never", "today", "then"]
    return [list(rng.choice(words, 3)) + list(rng.choice(others, 3))
            for _ in range(sentences)]


def train(path, sentences, dim):
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    model = FastText(corpus(sentences, np.random.default_rng(0)),
                     vector_size=dim, min_count=1, min_n=3, max_n=5,
                     bucket=20_000, epochs=5, alpha=0.005, seed=1, workers=1)
    save_facebook_model(model, path)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args(argv)
    try:
        import gensim  # noqa: F401  (checked before any work)
    except ImportError:
        sys.exit("examples/fasttext_subwords.py trains its model with "
                 "gensim, which is not installed: pip install gensim (or "
                 "the package's extra: pip install "
                 "'keras_embedlab[examples]')")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tiny.bin")
        train(path, args.sentences, args.dim)
        vectors = kel.load_vectors(path)
        print(f"model: {vectors!r}")
        vocabulary = ["", "[UNK]", "walk", "painted", "cooking", "jumped",
                      "talked", "Player", "cleaner", "climbs", *UNSEEN]
        layer = kel.PretrainedEmbedding.from_file(path, vocabulary)
    # The layer holds its table: the .bin file is gone now.
    coverage = layer.coverage
    print(f"whole words: {coverage.found - coverage.subwords}, from "
          f"subwords: {coverage.subwords}, without a vector: "
          f"{coverage.missing}")
    for word in UNSEEN:
        neighbours = layer.most_similar(word, k=3)
        shown = ", ".join(f"{w} ({score:.2f})" for w, score in neighbours)
        print(f"{word!r} is not in the model; nearest: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
