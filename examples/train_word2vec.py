"""Train word2vec with our layers, then look at and score the vectors.

An Embedding layer becomes word2vec once it is trained with word2vec's
objective: `keras_embedlab.Word2Vec` trains two `LookupEmbedding` tables
(skip-gram or CBOW, negative sampling). By default the corpus is generated
with planted structure: 12 groups of 8 words, each sentence drawn within
one group plus filler words shared by all, so a word's nearest neighbours
should be its group mates. The corpus is written to a file and streamed
line by line, as a corpus too large for memory would be. The vectors are
saved in word2vec format, read back, and put into a `PretrainedEmbedding`.

    KERAS_BACKEND=jax python examples/train_word2vec.py
    python examples/train_word2vec.py --corpus my_corpus.txt --sg 1 \\
        --pairs wordsim353.tsv --analogies questions-words.txt
"""

import argparse
import os
import sys
import tempfile

import keras
import numpy as np

import keras_embedlab as kel

GROUPS, PER_GROUP, FILLERS = 12, 8, 10


def write_planted(path, n_sentences, seed):
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_sentences):
            group = rng.integers(GROUPS)
            words = [f"filler{rng.integers(FILLERS)}" if rng.random() < 0.3
                     else f"g{group}w{rng.integers(PER_GROUP)}"
                     for _ in range(10)]
            f.write(" ".join(words) + "\n")


def planted_rate(vectors):
    """Share of group words whose nearest neighbour is in their group."""
    words = [w for w in vectors.words if w.startswith("g")]
    hits = [vectors.most_similar(w, topn=1)[0][0].split("w")[0]
            == w.split("w")[0] for w in words]
    return float(np.mean(hits))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", help="text file, one sentence a line "
                        "(default: a generated planted corpus)")
    parser.add_argument("--sentences", type=int, default=4000,
                        help="sentences of the generated corpus")
    parser.add_argument("--sg", type=int, default=1)
    parser.add_argument("--vector-size", type=int, default=50)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pairs", help="word-pair file (wordsim353.tsv)")
    parser.add_argument("--analogies", help="analogy file "
                        "(questions-words.txt)")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        corpus = args.corpus
        if corpus is None:
            corpus = os.path.join(folder, "planted.txt")
            write_planted(corpus, args.sentences, seed=0)
        model = kel.Word2Vec(vector_size=args.vector_size, sg=args.sg,
                             min_count=args.min_count, epochs=args.epochs,
                             verbose=args.verbose)
        model.build_vocab(corpus)
        model.train(corpus)
        wv = model.wv
        print(f"{len(wv)} words, {model.trained_words:,} corpus words "
              f"trained at {model.words_per_second:,.0f} words/s; "
              f"summed loss {model.running_training_loss:,.1f}")
        for word in wv.words[:3] + [w for w in wv.words
                                    if w.startswith("g0")][:2]:
            neighbours = ", ".join(f"{w} {s:.2f}"
                                   for w, s in wv.most_similar(word, topn=4))
            print(f"nearest to {word!r}: {neighbours}")
        if args.corpus is None:
            rate = planted_rate(wv)
            chance = (PER_GROUP - 1) / (GROUPS * PER_GROUP - 1)
            print(f"planted groups: nearest neighbour in its group for "
                  f"{rate:.0%} of group words (chance {chance:.0%})")
        if args.pairs:
            pearson, spearman, oov = wv.evaluate_word_pairs(args.pairs)
            print(f"word pairs: Spearman {spearman[0]:.3f} "
                  f"({oov:.1f}% pairs out of vocabulary)")
        if args.analogies:
            score, _ = wv.evaluate_word_analogies(args.analogies)
            print(f"analogies: accuracy {score:.3f}")

        path = os.path.join(folder, "vectors.bin")
        model.save_word2vec_format(path, binary=True)
        layer = kel.PretrainedEmbedding.from_file(path, verbose=0)
        same = np.array_equal(keras.ops.convert_to_numpy(layer.embeddings),
                              wv.matrix)
        print(f"saved as word2vec binary, read back into "
              f"PretrainedEmbedding({layer.input_dim}, {layer.output_dim}): "
              f"same vectors: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
