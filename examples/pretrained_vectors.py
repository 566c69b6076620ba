"""Pretrained vectors in a Keras text classifier, fully offline.

Writes a small word2vec-format vectors file whose geometry carries sentiment
(positive words near one direction, negative words near the opposite), aligns
it to a `TextVectorization` vocabulary with `PretrainedEmbedding`, prints the
coverage and nearest neighbours, and trains the same classifier with frozen
and with fine-tuned vectors.

    KERAS_BACKEND=jax python examples/pretrained_vectors.py
"""

import argparse
import os
import sys
import tempfile

import keras
import numpy as np

import keras_embedlab as kel

POSITIVE = ["good", "great", "excellent", "lovely", "superb", "happy",
            "wonderful", "fine", "pleasant", "brilliant"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "horrible", "sad", "dreadful",
            "nasty", "boring", "broken"]
NEUTRAL = [f"word{i}" for i in range(80)]
NOT_IN_FILE = ["zorp", "blick", "quux"]  # in the corpus, not in the file


def write_vectors(path, dim, rng):
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    words, rows = [], []
    for sign, group in ((1.0, POSITIVE), (-1.0, NEGATIVE), (0.0, NEUTRAL)):
        for word in group:
            words.append(word)
            rows.append(3.0 * sign * direction + 0.3 * rng.normal(size=dim))
    kel.Vectors(words, np.array(rows)).save(path, format="word2vec-text")


def corpus(n, rng):
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        group = POSITIVE if label else NEGATIVE
        words = list(rng.choice(NEUTRAL + NOT_IN_FILE, size=6))
        words += list(rng.choice(group, size=2))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize())
        labels.append(label)
    return np.array(texts), np.array(labels, "float32")


def classifier(embedding):
    inputs = keras.Input((8,), dtype="int32")
    x = embedding(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    texts, labels = corpus(args.samples, rng)
    split = int(0.8 * len(texts))

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "sentiment.vec")
        write_vectors(path, args.dim, np.random.default_rng(1))
        vectorizer = keras.layers.TextVectorization(
            output_sequence_length=8
        )
        vectorizer.adapt(texts[:split])
        print(f"backend {keras.backend.backend()}; vocabulary of "
              f"{vectorizer.vocabulary_size()} tokens from the corpus")
        frozen = kel.PretrainedEmbedding.from_file(path, vectorizer)
        tuned = kel.PretrainedEmbedding.from_file(path, vectorizer,
                                                  trainable=True, verbose=0)
    # Text to ids outside the model (string tensors exist only in
    # TensorFlow), as a tf.data pipeline would do it.
    ids = keras.ops.convert_to_numpy(vectorizer(texts)).astype("int32")
    print(f"missing from the file: {frozen.coverage.missing}")
    ok = set(frozen.coverage.missing) == set(NOT_IN_FILE)
    for word in ("good", "awful"):
        neighbours = frozen.most_similar(word, k=5)
        print(f"nearest to {word!r}: "
              + ", ".join(f"{w} ({c:.2f})" for w, c in neighbours))
        group = POSITIVE if word in POSITIVE else NEGATIVE
        ok &= all(w in group for w, _ in neighbours)

    for name, embedding in (("frozen", frozen), ("fine-tuned", tuned)):
        model = classifier(embedding)
        trainable = sum(int(np.prod(w.shape))
                        for w in model.trainable_weights)
        model.fit(ids[:split], labels[:split], epochs=args.epochs,
                  batch_size=32, verbose=0)
        _, accuracy = model.evaluate(ids[split:], labels[split:], verbose=0)
        print(f"{name:10s} vectors: {trainable:5d} trainable parameters, "
              f"validation accuracy {accuracy:.3f}")
        ok &= accuracy > 0.8
    print("as expected" if ok else "UNEXPECTED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
