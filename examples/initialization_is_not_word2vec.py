"""Claim: "an Embedding layer is word2vec" (or holds meaningful vectors).

A fresh Embedding holds uniform random numbers in [-0.05, 0.05] (Keras's
default "uniform" initializer): no structure, near-zero cosine similarity
between rows. Pretrained vectors are a separate, explicit choice
(`PretrainedEmbedding`). Exits non-zero if the evidence says
otherwise.

    python examples/initialization_is_not_word2vec.py
"""

import argparse
import sys

import keras
import numpy as np

import keras_embedlab as kel


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocabulary", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=50)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    layer = kel.LookupEmbedding(args.vocabulary, args.dim)
    layer.build()
    w = keras.ops.convert_to_numpy(layer.embeddings)
    counts, edges = np.histogram(w, bins=10, range=(-0.05, 0.05))
    print(f"backend {keras.backend.backend()}: fresh {args.vocabulary} x "
          f"{args.dim} table, min {w.min():.4f}, max {w.max():.4f}, mean "
          f"{w.mean():.5f}, std {w.std():.4f} (uniform: "
          f"{0.1 / np.sqrt(12):.4f})")
    for count, left in zip(counts, edges):
        bar = "#" * int(60 * count // counts.max())
        print(f"  [{left:+.3f}, {left + 0.01:+.3f}) {bar}")
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    sample = unit[:500]
    cosines = (sample @ sample.T)[np.triu_indices(len(sample), 1)]
    print(f"cosine similarity between distinct rows: mean {cosines.mean():+.4f}"
          f", 99th percentile of |cos| {np.percentile(abs(cosines), 99):.3f}")
    flatness = counts.min() / counts.max()
    ok = (w.min() >= -0.05 and w.max() <= 0.05 and flatness > 0.9
          and abs(cosines.mean()) < 0.01)
    # Pretrained vectors are an explicit choice: load them on purpose.
    king, queen = np.array([0.9, 0.1, 0.3]), np.array([0.8, 0.2, 0.35])
    vectors = kel.Vectors(["king", "queen", "carrot"],
                          [king, queen, [-0.2, 0.9, -0.4]])
    pretrained = kel.PretrainedEmbedding.from_vectors(
        vectors, vocabulary=["", "king", "queen", "carrot"], verbose=0
    )
    (word, cosine), = pretrained.most_similar("king", k=1)
    print(f"PretrainedEmbedding.from_vectors(...): nearest to 'king' is "
          f"{word!r} (cosine {cosine:.2f}); a fresh table has no such "
          "structure")
    ok &= word == "queen" and not pretrained.trainable
    print("evidence agrees with the README" if ok else "CONTRADICTION")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
