"""Nearest neighbours, word-pair similarity and analogies, as gensim
computes them (`KeyedVectors.most_similar`, `most_similar_cosmul`,
`evaluate_word_pairs`, `evaluate_word_analogies`), in NumPy.

The table is scored `NEIGHBOUR_CHUNK_ROWS` rows at a time against at most
`QUERY_BATCH` queries, keeping each query's best rows as chunks pass: no
`(queries, rows)` matrix of the whole table is ever built, and no
normalized copy of the table either (scores are `rows @ query / norms`, as
gensim computes them). Ties in a score go to the lower row.

The p-values of the correlations come from the Student t distribution
(Pearson's exact null distribution is the same), through the regularized
incomplete beta function evaluated by its continued fraction: no SciPy.
"""

import contextlib
import math
import warnings
from typing import NamedTuple

import numpy as np

from keras_embedlab.utils.argument_checks import check_bool, check_choice

# Rows of the table scored at once, and queries scored together: at most
# NEIGHBOUR_CHUNK_ROWS * QUERY_BATCH float32 scores (16 MiB) at a time.
NEIGHBOUR_CHUNK_ROWS = 16384
QUERY_BATCH = 256
SIMILARITY_FUNCTIONS = ("most_similar", "most_similar_cosmul")
# gensim's analogy answer: the best of the 5 nearest rows that is not a
# question word; 3CosMul's denominator guard.
ANALOGY_TOPN = 5
COSMUL_EPSILON = 1e-6


class Correlation(NamedTuple):
    """A correlation coefficient and its two-sided p-value, unpacked as
    `statistic, pvalue = ...` like SciPy's results."""

    statistic: float
    pvalue: float


# --- The table's rows ------------------------------------------------------

def row_norms(matrix: np.ndarray, stop: int) -> np.ndarray:
    """The float32 L2 norms of `matrix[:stop]`, computed chunk by chunk."""
    norms = np.empty(stop, np.float32)
    for start in range(0, stop, NEIGHBOUR_CHUNK_ROWS):
        end = min(start + NEIGHBOUR_CHUNK_ROWS, stop)
        norms[start:end] = np.linalg.norm(matrix[start:end], axis=1)
    return norms


def unit_rows(matrix: np.ndarray, indices) -> np.ndarray:
    """`matrix[indices]` scaled to unit length (float64 math, float32
    result, as gensim's `unitvec`); a zero row stays zero."""
    rows = matrix[np.asarray(indices, np.intp)].astype(np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.where(norms > 0, rows / np.where(norms > 0, norms, 1),
                    rows).astype(np.float32)


def _stop(count: int, restrict_vocab: int | None) -> int:
    """The rows searched: the first `restrict_vocab` (all if None or 0, as
    gensim's `most_similar`)."""
    return min(restrict_vocab, count) if restrict_vocab else count


def _check_restrict_vocab(restrict_vocab):
    if restrict_vocab is not None and (
            not isinstance(restrict_vocab, (int, np.integer))
            or isinstance(restrict_vocab, bool) or restrict_vocab < 0):
        raise ValueError(
            "`restrict_vocab` must be None or a non-negative integer (the "
            "number of rows, from the first, to use). Received: "
            f"restrict_vocab={restrict_vocab!r}.")


# --- Scoring in chunks -----------------------------------------------------

def _cosine_scores(means):
    """3CosAdd: the cosine of each row with each (unit) query."""
    def score(block, norms):
        return (means @ block.T) / norms
    return score


def _cosmul_scores(positive, negative):
    """3CosMul (Levy and Goldberg's equation 4, cosines shifted to [0, 1]):
    product of `(1 + cos) / 2` over the positive terms, divided by the same
    product over the negative ones plus `COSMUL_EPSILON`. `positive` and
    `negative`: `(queries, terms, dim)` unit vectors."""
    def shifted(block, norms, terms):
        product = None
        for j in range(terms.shape[1]):
            term = (1 + (terms[:, j] @ block.T) / norms) / 2
            product = term if product is None else product * term
        return product

    def score(block, norms):
        numerator = shifted(block, norms, positive)
        if negative.shape[1] == 0:
            return numerator / np.float32(1 + COSMUL_EPSILON)
        return numerator / (shifted(block, norms, negative) + COSMUL_EPSILON)
    return score


def top_rows(matrix, norms, score, queries, k):
    """The `k` best rows of `matrix[:len(norms)]` for each of `queries`
    queries, best first (ties: lower row first; NaN scores last).

    `score(block, block_norms)` gives the `(queries, len(block))` scores of
    a chunk of rows. Returns `(rows, scores)`, each `(queries, k')` with
    `k' = min(k, len(norms))`.
    """
    stop = len(norms)
    k = min(k, stop)
    best_rows = np.zeros((queries, 0), np.intp)
    best_scores = np.zeros((queries, 0), np.float32)
    for start in range(0, stop, NEIGHBOUR_CHUNK_ROWS):
        end = min(start + NEIGHBOUR_CHUNK_ROWS, stop)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.asarray(score(matrix[start:end], norms[start:end]),
                                np.float32)
        rows = np.broadcast_to(np.arange(start, end), scores.shape)
        if k < end - start:  # NaN sorts last in a partition too.
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(scores, keep, axis=1)
            rows = np.take_along_axis(rows, keep, axis=1)
        best_rows = np.concatenate([best_rows, rows], axis=1)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        order = np.lexsort((best_rows, -best_scores), axis=1)[:, :k]
        best_rows = np.take_along_axis(best_rows, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
    return best_rows, best_scores


def all_scores(matrix, norms, score):
    """The score of every row of `matrix[:len(norms)]` for one query."""
    out = np.empty(len(norms), np.float32)
    for start in range(0, len(norms), NEIGHBOUR_CHUNK_ROWS):
        end = min(start + NEIGHBOUR_CHUNK_ROWS, len(norms))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:end] = score(matrix[start:end], norms[start:end])[0]
    return out


# --- most_similar ----------------------------------------------------------

def _terms(vectors, items, sign, name):
    """`(row or vector, weight)` for each of `positive` or `negative`: a
    word, a 1-D vector, or a `(word or vector, weight)` pair, as gensim."""
    if items is None:
        return []
    if isinstance(items, str) or (isinstance(items, np.ndarray)
                                  and items.ndim == 1):
        items = [items]
    terms = []
    for item in items:
        weight = sign
        if isinstance(item, tuple):
            if len(item) != 2:
                raise ValueError(
                    f"`{name}` must hold words, vectors or (word, weight) "
                    f"pairs. Received: {item!r} in {name}.")
            item, weight = item
        if isinstance(item, str):
            terms.append((vectors.index(item), float(weight)))
            continue
        vector = np.asarray(item)
        if vector.shape != (vectors.dim,) or vector.dtype.kind not in "fiu":
            raise ValueError(
                f"`{name}` must hold words, vectors of shape "
                f"({vectors.dim},) or (word, weight) pairs. Received: "
                f"{item!r} in {name}.")
        terms.append((vector.astype(np.float32), float(weight)))
    return terms


def _unit_row(matrix, row):
    norm = np.linalg.norm(matrix[row:row + 1], axis=1)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return matrix[row] / norm


def _mean_query(matrix, terms):
    """gensim's `get_mean_vector(pre_normalize=True, post_normalize=True)`:
    the weighted sum of the words' unit rows (and of raw vectors), in
    float32, divided by the summed absolute weights, scaled to unit
    length."""
    mean = np.zeros(matrix.shape[1], np.float32)
    total = 0.0
    for item, weight in terms:
        vector = _unit_row(matrix, item) if isinstance(item, int) else item
        mean += weight * vector.astype(np.float64)
        total += abs(weight)
    mean = mean / total if total > 0 else mean.astype(np.float64)
    return unit_rows(mean[None], [0])


def most_similar(vectors, positive, negative, topn, restrict_vocab,
                 cosmul):
    """`Vectors.most_similar` and `most_similar_cosmul`."""
    _check_restrict_vocab(restrict_vocab)
    if topn is not None and (not isinstance(topn, (int, np.integer))
                             or isinstance(topn, bool)):
        raise ValueError("`topn` must be None or an integer. Received: "
                         f"topn={topn!r}.")
    if topn is not None and topn < 1:
        return []
    positive = _terms(vectors, positive, 1.0, "positive")
    negative = _terms(vectors, negative, -1.0, "negative")
    if not positive and not (negative and not cosmul):
        raise ValueError("`positive` must name at least one word or vector"
                         " (`negative` too for most_similar). Received: "
                         "none.")
    matrix = vectors.matrix
    norms = row_norms(matrix, _stop(len(vectors), restrict_vocab))
    inputs = {item for item, _ in positive + negative
              if isinstance(item, int)}
    if cosmul:
        def units(terms):
            stacked = [_unit_row(matrix, item) if isinstance(item, int)
                       else item for item, _ in terms]
            return np.asarray(stacked, np.float32).reshape(
                1, len(terms), matrix.shape[1])
        score = _cosmul_scores(units(positive), units(negative))
    else:
        score = _cosine_scores(_mean_query(matrix, positive + negative))
    if topn is None:
        return all_scores(matrix, norms, score)
    rows, scores = top_rows(matrix, norms, score, 1, topn + len(inputs))
    found = [(vectors.words[row], float(value))
             for row, value in zip(rows[0], scores[0]) if row not in inputs]
    return found[:topn]


def similarity(vectors, first, second):
    """The cosine similarity of two words, as gensim's `similarity`."""
    units = unit_rows(vectors.matrix,
                      [vectors.index(first), vectors.index(second)])
    return float(units[0] @ units[1])


# --- Test files ------------------------------------------------------------

def ok_vocabulary(words, restrict_vocab, case_insensitive):
    """Word (upper-cased if `case_insensitive`) to row, for the first
    `restrict_vocab` words; of several case variants, the first wins."""
    ok = {}
    for row, word in enumerate(words[:restrict_vocab]):
        ok.setdefault(word.upper() if case_insensitive else word, row)
    return ok


def _lines(path, encoding):
    """`(line number, text)` for each line of `path`; bytes that are not
    `encoding` text raise `ValueError` naming the file and line. Line ends
    are `\\n` (a `\\r\\n` end reads as `\\n`, as in text mode)."""
    if "\n".encode(encoding) != b"\n":  # UTF-16 and such: text mode.
        with open(path, encoding=encoding) as text:
            yield from enumerate(text, 1)
        return
    with open(path, "rb") as raw:
        for number, line in enumerate(raw, 1):
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {number}: not {encoding} text "
                    f"({error.reason} at byte {error.start} of the line)."
                    " Pass the file's `encoding`.") from None
            if text.endswith("\r\n"):
                text = text[:-2] + "\n"
            yield number, text


def _warn_skipped(path, skipped, what):
    if skipped:
        lines = ", ".join(str(n) for n in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        warnings.warn(f"{path}: skipped {len(skipped)} line(s) that are "
                      f"not {what}: line {lines}{more}.", stacklevel=3)


def _check_flags(case_insensitive, dummy4unknown, restrict_vocab):
    _check_restrict_vocab(restrict_vocab)
    check_bool("case_insensitive", case_insensitive)
    check_bool("dummy4unknown", dummy4unknown)


def evaluate_word_pairs(vectors, path, delimiter, encoding, restrict_vocab,
                        case_insensitive, dummy4unknown):
    _check_flags(case_insensitive, dummy4unknown, restrict_vocab)
    ok = ok_vocabulary(vectors.words, restrict_vocab, case_insensitive)
    gold, known, pairs, skipped = [], [], [], []
    oov = 0
    with contextlib.closing(_lines(path, encoding)) as lines:
        for number, line in lines:
            if not line or line.startswith("#"):
                continue
            fields = line.split(delimiter)
            try:
                if len(fields) != 3:
                    raise ValueError
                a, b, value = fields
                value = float(value)
            except (ValueError, TypeError):
                if line.strip():
                    skipped.append(number)
                continue
            if case_insensitive:
                a, b = a.upper(), b.upper()
            if a not in ok or b not in ok:
                oov += 1
                if dummy4unknown:
                    gold.append(value)
                    known.append(False)
                continue
            gold.append(value)
            known.append(True)
            pairs.append((ok[a], ok[b]))
    _warn_skipped(path, skipped, f"two words and a number separated by "
                  f"{delimiter!r}")
    if not gold:
        raise ValueError(f"No similarity judgement in {path} has both "
                         f"words among the {len(ok)} words used "
                         "(`restrict_vocab`), or the file holds no "
                         "`word1<delimiter>word2<delimiter>number` line.")
    model = np.zeros(len(gold), np.float32)
    if pairs:
        rows = np.asarray(pairs, np.intp)
        first = unit_rows(vectors.matrix, rows[:, 0])
        second = unit_rows(vectors.matrix, rows[:, 1])
        model[np.asarray(known)] = np.einsum("ij,ij->i", first, second)
    gold = np.asarray(gold, np.float64)
    model = model.astype(np.float64)
    pearson = pearson_correlation(gold, model)
    spearman = spearman_correlation(gold, model)
    counted = len(gold) if dummy4unknown else len(gold) + oov
    return pearson, spearman, oov / counted * 100


def read_analogies(path):
    """`[(section, [(line number, (a, b, c, expected)), ...]), ...]` from a
    file of `: section` lines each followed by 4-word lines."""
    sections, skipped = [], []
    with contextlib.closing(_lines(path, "utf-8")) as lines:
        for number, line in lines:
            if line.startswith(": "):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            if not sections:
                raise ValueError(
                    f"{path}, line {number}: a question before the first "
                    "`: section` line. Analogy files start with a section "
                    f"line. Received: {line.rstrip()!r}.")
            words = line.split()
            if len(words) != 4:
                if words:
                    skipped.append(number)
                continue
            sections[-1][1].append((number, tuple(words)))
    _warn_skipped(path, skipped, "4 words or a `: section` line")
    return sections


def evaluate_word_analogies(vectors, path, restrict_vocab, case_insensitive,
                            dummy4unknown, similarity_function):
    _check_flags(case_insensitive, dummy4unknown, restrict_vocab)
    check_choice("similarity_function", similarity_function,
                 SIMILARITY_FUNCTIONS)
    ok = ok_vocabulary(vectors.words, restrict_vocab, case_insensitive)
    sections = []  # (name, [(words, known), ...]) in file order
    for name, lines in read_analogies(path):
        questions = []
        for _, words in lines:
            if case_insensitive:
                words = tuple(word.upper() for word in words)
            questions.append((words, all(word in ok for word in words)))
        sections.append((name, questions))
    if not any(questions for _, questions in sections):
        raise ValueError(f"{path} holds no analogy question (lines of 4 "
                         "words after a `: section` line).")
    answers = iter(_answer_analogies(
        vectors, ok,
        [words for _, qs in sections for words, known in qs if known],
        _stop(len(vectors), restrict_vocab), case_insensitive,
        similarity_function == "most_similar_cosmul"))
    results = []
    for name, questions in sections:
        section = {"section": name, "correct": [], "incorrect": []}
        for words, known in questions:
            # An unknown word: skipped, or wrong with `dummy4unknown`.
            if known and next(answers):
                section["correct"].append(words)
            elif known or dummy4unknown:
                section["incorrect"].append(words)
        results.append(section)
    total = {
        "section": "Total accuracy",
        "correct": [q for s in results for q in s["correct"]],
        "incorrect": [q for s in results for q in s["incorrect"]],
    }
    answered = len(total["correct"]) + len(total["incorrect"])
    score = len(total["correct"]) / answered if answered else 0.0
    return score, [*results, total]


def _answer_analogies(vectors, ok, questions, stop, case_insensitive,
                      cosmul):
    """Whether each `(a, b, c, expected)` is answered right: gensim's rule,
    the first of the 5 best rows for `b - a + c` (rows of `a`, `b`, `c`
    left out) whose word is not `a`, `b` or `c` in any case variant."""
    if not questions:
        return []
    matrix, words = vectors.matrix, vectors.words
    norms = row_norms(matrix, stop)
    answers = []
    for start in range(0, len(questions), QUERY_BATCH):
        batch = questions[start:start + QUERY_BATCH]
        rows = np.asarray([[ok[w] for w in q[:3]] for q in batch], np.intp)
        a, b, c = (unit_rows(matrix, rows[:, j]) for j in range(3))
        if cosmul:
            score = _cosmul_scores(np.stack([b, c], axis=1), a[:, None])
        else:
            # gensim's float32 running sum b + c - a, then / 3, unit length.
            mean = b.astype(np.float32)
            mean = (mean + c.astype(np.float64)).astype(np.float32)
            mean = (mean - a.astype(np.float64)).astype(np.float32)
            mean = mean.astype(np.float64) / 3
            score = _cosine_scores(unit_rows(mean, np.arange(len(batch))))
        best, _ = top_rows(matrix, norms, score, len(batch),
                           ANALOGY_TOPN + 3)
        for question, question_rows, ranked in zip(batch, rows, best):
            inputs = set(question_rows.tolist())
            predicted = None
            for row in [r for r in ranked if r not in inputs][:ANALOGY_TOPN]:
                word = words[row]
                predicted = word.upper() if case_insensitive else word
                if predicted in ok and predicted not in question[:3]:
                    break
            answers.append(predicted == question[3])
    return answers


# --- Correlations ----------------------------------------------------------

def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, tied values sharing their average rank."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), np.float64)
    ranks[order] = ((starts + ends + 1) / 2)[group]
    return ranks


def _pearson_r(x, y):
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    x = x - x.mean()
    y = y - y.mean()
    scale = np.linalg.norm(x) * np.linalg.norm(y)
    if scale == 0:
        warnings.warn("A correlation of constant values is undefined: "
                      "returning NaN.", RuntimeWarning, stacklevel=4)
        return math.nan
    return float(np.clip(x @ y / scale, -1.0, 1.0))


def pearson_correlation(x: np.ndarray, y: np.ndarray) -> Correlation:
    """Pearson's r and its two-sided p-value, as `scipy.stats.pearsonr`:
    under the null, `(r + 1) / 2` follows Beta(n/2 - 1, n/2 - 1)."""
    r = _pearson_r(x, y)
    n = len(x)
    if math.isnan(r) or n < 3:
        return Correlation(r, math.nan if math.isnan(r) else 1.0)
    half = n / 2 - 1
    p = 2 * regularized_beta(half, half, (1 - abs(r)) / 2)
    return Correlation(r, min(p, 1.0))


def spearman_correlation(x: np.ndarray, y: np.ndarray) -> Correlation:
    """Spearman's rho (Pearson's r of the average ranks) and its two-sided
    p-value from Student's t with n - 2 degrees of freedom, as
    `scipy.stats.spearmanr`."""
    if np.isnan(x).any() or np.isnan(y).any():
        return Correlation(math.nan, math.nan)
    rho = _pearson_r(average_ranks(x), average_ranks(y))
    dof = len(x) - 2
    if math.isnan(rho) or dof < 1:
        return Correlation(rho, math.nan)
    if abs(rho) == 1:
        return Correlation(rho, 0.0)
    t_squared = rho * rho * dof / ((1 + rho) * (1 - rho))
    # Two-sided tail of Student's t: I_{dof / (dof + t^2)}(dof / 2, 1 / 2).
    p = regularized_beta(dof / 2, 0.5, dof / (dof + t_squared))
    return Correlation(rho, min(p, 1.0))


def regularized_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0,
    by its continued fraction (modified Lentz), on the side of x where
    the fraction converges fast."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a, b, x):
    tiny = 1e-300

    def guard(value):
        return value if abs(value) > tiny else tiny

    c = 1.0
    d = 1 / guard(1 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, 100_000):
        # Even step, then odd step, of the fraction's terms.
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1 / guard(1 + even * d)
        c = guard(1 + even / c)
        result *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 / guard(1 + odd * d)
        c = guard(1 + odd / c)
        result *= d * c
        if abs(d * c - 1) < 1e-15:
            return result
    return math.nan
