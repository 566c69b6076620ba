"""Benchmark: `keras_embedlab.Word2Vec` against gensim's `Word2Vec`.

Same corpus, same settings (gensim's defaults: vector_size 100, window 5,
min_count 5, sample 1e-3, negative 5, alpha 0.025, 5 epochs), gensim with
`workers=2` (`--workers`) and ours with the same where the backend steps
one table in several threads (PyTorch and TensorFlow; JAX one call at a
time), 3 seeds, CBOW and skip-gram. Corpora: gensim's shipped Lee
background corpus (`lee_background.cor`, about 60,000 words), `text8` if
a file named by `--text8` exists, and a synthetic corpus with planted
structure (2,000 sentences of 10 words, each drawn from one of 50 groups of
10 words, half of its words fillers shared by all groups: little data per
word, so that recovery is not saturated). These two are small (60,000 and
20,000 words a pass), so the one-off compilation of our step (about 1 s
on JAX and TensorFlow) weighs on their words/s; `--words N` (default
1,000,000) adds a planted corpus of N words built the same way, with
`N // 400` groups (as much data per group word as the small one, and a
vocabulary of about 25,000 words at 1,000,000), where compiling is
amortised as in real use (text8, 17 million words, is not shipped).

Scores: Spearman of `evaluate_word_pairs` on gensim's `wordsim353.tsv`,
`evaluate_word_analogies` on `questions-words.txt` (Lee corpus), and the
share of group words whose nearest neighbour is in their group (planted;
chance is 9/499; on the large one, for the words of its first 200 groups,
against its whole vocabulary). Speed: corpus words x epochs / training
seconds (the vocabulary pass excluded for both; our time includes
compiling the step).

Each backend runs in its own process; gensim is measured in that same
process, interleaved with ours, so each ratio compares one run.

Usage:
    python benchmarks/bench_word2vec.py                 # 3 backends
    python benchmarks/bench_word2vec.py --backends jax --seeds 1 --quick
    python benchmarks/bench_word2vec.py --words 0     # small corpora only
    KERAS_BACKEND=jax python benchmarks/bench_word2vec.py \
        --planted-cbow-seeds 10 --batch-sizes 32,128,256  # scores only
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS, PER_GROUP, FILLERS = 50, 10, 20


def planted(n_sentences=2000, length=10, seed=0, groups=GROUPS):
    rng = np.random.default_rng(seed)
    corpus = []
    for _ in range(n_sentences):
        g = rng.integers(groups)
        sentence = []
        for _ in range(length):
            if rng.random() < 0.5:
                sentence.append(f"filler{rng.integers(FILLERS)}")
            else:
                sentence.append(f"g{g}w{rng.integers(PER_GROUP)}")
        corpus.append(sentence)
    return corpus


def planted_rate(vectors, query_groups=None):
    """Share of group words whose nearest group word is in their group;
    `query_groups`: only the words of groups `0..query_groups - 1` are
    asked (against all group words)."""
    words = [w for w in vectors.words if w.startswith("g")]
    matrix = np.stack([vectors[w] for w in words])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    group = np.array([w.split("w")[0] for w in words])
    asked = np.arange(len(words))
    if query_groups is not None:
        asked = asked[np.isin(group, [f"g{g}" for g in range(
            query_groups)])]
    similarity = matrix[asked] @ matrix.T
    similarity[np.arange(len(asked)), asked] = -np.inf
    return float(np.mean(group[similarity.argmax(1)] == group[asked]))


def scores(vectors, corpus_name, pairs, analogies):
    from keras_embedlab.vectors import Vectors
    if not isinstance(vectors, Vectors):  # gensim's KeyedVectors
        vectors = Vectors(list(vectors.index_to_key), vectors.vectors)
    if corpus_name == "planted":
        return {"planted": planted_rate(vectors)}
    if corpus_name.startswith("planted-"):
        return {"planted": planted_rate(vectors, query_groups=200)}
    pair = vectors.evaluate_word_pairs(pairs)
    analogy = vectors.evaluate_word_analogies(analogies)
    return {"wordsim353": float(pair[1][0]), "analogies": float(analogy[0])}


def planted_cbow_scores(args):
    """Planted-corpus CBOW scores only (no timing), over more seeds than
    the timed runs: ours at each `--batch-sizes`, gensim with 1 and 2
    workers."""
    from gensim.models import Word2Vec as GensimWord2Vec

    import keras_embedlab

    corpus = planted(2000)
    settings = dict(vector_size=100, window=5, min_count=5, sg=0,
                    negative=5, sample=1e-3, alpha=0.025, epochs=5)
    rows = {}
    for seed in range(1, args.planted_cbow_seeds + 1):
        for batch in args.batch_sizes.split(","):
            model = keras_embedlab.Word2Vec(
                corpus, seed=seed, verbose=0, batch_size=int(batch),
                **settings)
            rows.setdefault(f"ours, batch_size={batch}", []).append(
                planted_rate(model.wv))
        for workers in (1, 2):
            model = GensimWord2Vec(corpus, seed=seed, workers=workers,
                                   **settings)
            rows.setdefault(f"gensim, workers={workers}", []).append(
                scores(model.wv, "planted", None, None)["planted"])
    print("| model | planted CBOW score, seeds 1 to "
          f"{args.planted_cbow_seeds} |\n|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {_mean_std(values)} |")


def worker(args):
    from gensim.models import Word2Vec as GensimWord2Vec
    from gensim.test.utils import datapath

    import keras_embedlab
    from keras_embedlab import backend

    # Ours steps one table in several threads where the backend can
    # (`backend.CONCURRENT_ROW_STEPS`): not JAX, whose steps then run one
    # call at a time.
    ours_workers = args.workers if backend.CONCURRENT_ROW_STEPS else 1
    pairs = datapath("wordsim353.tsv")
    analogies = datapath("questions-words.txt")
    corpora = {"lee": [line.split() for line in open(
        datapath("lee_background.cor"), encoding="utf-8")]}
    if args.text8 and os.path.exists(args.text8):
        words = open(args.text8, encoding="utf-8").read().split()
        corpora["text8"] = [words[i:i + 1000]
                            for i in range(0, len(words), 1000)]
    corpora["planted"] = planted(1000 if args.quick else 2000)
    words = args.words // 10 if args.quick else args.words
    if words:
        corpora[f"planted-{words:,}"] = planted(
            words // 10, seed=1, groups=max(GROUPS, words // 400))
    epochs = 1 if args.quick else 5
    rows = []
    for name, corpus in corpora.items():
        for sg in (0, 1):
            for seed in range(1, args.seeds + 1):
                settings = dict(vector_size=100, window=5, min_count=5,
                                sg=sg, negative=5, sample=1e-3,
                                alpha=0.025, epochs=epochs, seed=seed)
                ours = keras_embedlab.Word2Vec(
                    verbose=0, workers=ours_workers, **settings)
                ours.build_vocab(corpus)
                start = time.perf_counter()
                ours.train(corpus)
                ours_s = time.perf_counter() - start
                theirs = GensimWord2Vec(workers=args.workers, **settings)
                theirs.build_vocab(corpus)
                start = time.perf_counter()
                theirs.train(corpus, total_examples=theirs.corpus_count,
                             epochs=epochs)
                theirs_s = time.perf_counter() - start
                words = ours.corpus_total_words * epochs
                rows.append({
                    "corpus": name, "sg": sg, "seed": seed,
                    "ours_workers": ours_workers,
                    "gensim_workers": args.workers,
                    "ours": scores(ours.wv, name, pairs, analogies),
                    "gensim": scores(theirs.wv, name, pairs, analogies),
                    "ours_wps": words / ours_s,
                    "gensim_wps": words / theirs_s,
                })
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps(rows))


def _mean_std(values):
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(results):
    lines = ["| backend | corpus | model | score | ours | gensim | "
             "ours words/s | gensim words/s | ratio | ratio, seeds 2+ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, rows in results.items():
        keys = sorted({(r["corpus"], r["sg"]) for r in rows},
                      key=lambda k: (k[0] != "lee", len(k[0]), k))
        for corpus, sg in keys:
            group = [r for r in rows if (r["corpus"], r["sg"]) == (corpus,
                                                                   sg)]
            ours_wps = [r["ours_wps"] for r in group]
            gensim_wps = [r["gensim_wps"] for r in group]
            ratio = [o / g for o, g in zip(ours_wps, gensim_wps)]
            # Seed 1 includes compiling (tracing) the step; later seeds of
            # the same shapes reuse it.
            later = _mean_std(ratio[1:]) if len(ratio) > 1 else ""
            for i, score in enumerate(group[0]["ours"]):
                speed = (f"{statistics.mean(ours_wps):,.0f} | "
                         f"{statistics.mean(gensim_wps):,.0f} | "
                         f"{_mean_std(ratio)} | {later}") if i == 0 else (
                    " | | | ")
                lines.append(
                    f"| {backend} | {corpus} | "
                    f"{'skip-gram' if sg else 'CBOW'} | {score} | "
                    f"{_mean_std([r['ours'][score] for r in group])} | "
                    f"{_mean_std([r['gensim'][score] for r in group])} | "
                    f"{speed} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch, smaller planted corpora")
    parser.add_argument("--text8", default=os.path.join(REPO, "text8"))
    parser.add_argument("--words", type=int, default=1_000_000,
                        help="words of the large planted corpus (0: none)")
    parser.add_argument("--out", help="also write the JSON rows here")
    parser.add_argument("--workers", type=int, default=2,
                        help="gensim's workers, and ours where the backend "
                        "steps one table in several threads (not JAX)")
    parser.add_argument("--planted-cbow-seeds", type=int, default=0,
                        help="only the planted CBOW scores over this many "
                        "seeds (no timing; backend: KERAS_BACKEND)")
    parser.add_argument("--batch-sizes", default="128,256",
                        help="ours' batch sizes for --planted-cbow-seeds")
    parser.add_argument("--worker", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.planted_cbow_seeds:
        return planted_cbow_scores(args)
    if args.worker:
        return worker(args)
    results = {}
    for backend in args.backends.split(","):
        command = [sys.executable, os.path.abspath(__file__), "--worker",
                   "--seeds", str(args.seeds), "--text8", args.text8,
                   "--words", str(args.words), "--workers", str(args.workers)]
        if args.quick:
            command.append("--quick")
        env = dict(os.environ, KERAS_BACKEND=backend,
                   PYTHONPATH=REPO + os.pathsep + os.environ.get(
                       "PYTHONPATH", ""))
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                              text=True, check=True)
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
