"""`plot_embeddings`: chosen words and their nearest neighbours, projected
to 2-D (PCA, in NumPy) and drawn with matplotlib (imported on call)."""

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from keras_embedlab.utils.argument_checks import check_choice
from keras_embedlab.vectors._evaluate import unit_rows
from keras_embedlab.vectors._vectors import Vectors

PLOT_METHODS = ("pca",)


class EmbeddingPlot(NamedTuple):
    """What `plot_embeddings` drew.

    Attributes:
        words: The plotted words, each query word followed by its
            neighbours.
        groups: For each plotted word, the query word it belongs to.
        coordinates: float64 array `(len(words), 2)`, the projection of
            the words' unit vectors.
        explained: The fraction of the points' variance each axis holds.
        figure: The matplotlib `Figure` when no `path` was given (None
            otherwise: the figure was written and closed).
    """

    words: list[str]
    groups: list[str]
    coordinates: np.ndarray
    explained: np.ndarray
    figure: Any


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points centred and projected on their first two principal axes
    (float64), and the fraction of variance on each. Each axis is signed
    so that its largest loading is positive (PCA leaves the sign free)."""
    centred = np.asarray(points, np.float64)
    centred = centred - centred.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:2]
    if len(axes) < 2:  # One dimension, or one point: a zero second axis.
        axes = np.vstack([axes, np.zeros((2 - len(axes), centred.shape[1]))])
    largest = np.argmax(np.abs(axes), axis=1)
    axes = axes * np.where(axes[np.arange(2), largest] < 0, -1.0, 1.0)[:, None]
    variance = singular ** 2
    total = variance.sum()
    explained = np.zeros(2)
    if total > 0:
        shown = variance[:2] / total
        explained[:len(shown)] = shown
    return centred @ axes.T, explained


# Where a label may sit around its point (offset in points, alignment),
# tried in turn until it overlaps no label placed before it.
LABEL_OFFSETS = ((5, 4, "left"), (5, -12, "left"), (-5, 4, "right"),
                 (-5, -12, "right"), (0, 10, "center"), (0, -18, "center"),
                 (8, 14, "left"), (-8, 14, "right"), (8, -24, "left"),
                 (-8, -24, "right"))


def _separate(figure, labels):
    """Moves each label (query words first) to the first place around its
    point where it overlaps no label already placed; one that fits nowhere
    keeps the first place."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    order = sorted(labels, key=lambda t: t.get_fontweight() != "bold")
    placed = []
    for label in order:
        for dx, dy, align in LABEL_OFFSETS:
            label.set_position((dx, dy))
            label.set_horizontalalignment(align)
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                break
        else:
            dx, dy, align = LABEL_OFFSETS[0]
            label.set_position((dx, dy))
            label.set_horizontalalignment(align)
            box = label.get_window_extent(renderer)
        placed.append(box)


def _matplotlib_figure():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plot_embeddings draws with matplotlib, which is not installed: "
            "`pip install matplotlib` (or `pip install "
            "keras_embedlab[bench]`).") from error
    return Figure


def plot_embeddings(
        vectors: Vectors, words: Sequence[str], neighbours: int = 5,
        path: str | os.PathLike | None = None, method: str = "pca",
        restrict_vocab: int | None = None, title: str | None = None,
        figsize: tuple[float, float] = (8.0, 6.0), dpi: int = 100,
) -> EmbeddingPlot:
    """Draws `words` and their nearest neighbours in 2-D, one colour per
    query word, and writes a PNG.

    Args:
        vectors: A `Vectors`. For a Keras layer's table, wrap it with its
            vocabulary: `Vectors(vocabulary,
            keras.ops.convert_to_numpy(layer.embeddings))`.
        words: The query words.
        neighbours: How many nearest neighbours (cosine, as
            `Vectors.most_similar`) to draw with each query word; 0 draws
            the query words alone. A word near several query words is drawn
            once, with the first; a query word only as itself.
        path: Where to write the PNG (`figsize * dpi` pixels). None: the
            figure is returned instead, not written.
        method: The projection: `"pca"` (principal component analysis of
            the drawn words' vectors scaled to unit length, in NumPy).
        restrict_vocab: Search neighbours among the first `restrict_vocab`
            rows only (the frequent words of a frequency-sorted table).
        title: The figure's title; by default it names the method and the
            share of variance the two axes show.
        figsize, dpi: The figure's size in inches, and pixels per inch.

    Returns:
        An `EmbeddingPlot`: the drawn words, their query word, the 2-D
        coordinates and the explained variance (and the figure if `path`
        is None).

    Needs matplotlib (`pip install matplotlib`); NumPy does the rest.

    Example:

    >>> plot = plot_embeddings(vectors, ["king", "paris"], neighbours=5,
    ...                        path="neighbours.png")
    >>> plot.coordinates.shape
    (12, 2)
    """
    check_choice("method", method, PLOT_METHODS)
    if not isinstance(vectors, Vectors):
        raise ValueError(
            "`vectors` must be a `Vectors`; wrap a table as Vectors(words, "
            "matrix). Received: vectors of type "
            f"{type(vectors).__name__}.")
    if isinstance(words, str) or not len(words):
        raise ValueError("`words` must be a non-empty list of words. "
                         f"Received: words={words!r}.")
    if (not isinstance(neighbours, (int, np.integer))
            or isinstance(neighbours, bool) or neighbours < 0):
        raise ValueError("`neighbours` must be a non-negative integer. "
                         f"Received: neighbours={neighbours!r}.")
    Figure = _matplotlib_figure()
    queries = list(dict.fromkeys(words))
    for word in queries:
        vectors.index(word)  # `KeyError` naming a missing word.
    drawn, groups = [], []
    for word in queries:
        found = (vectors.most_similar(word, topn=neighbours,
                                      restrict_vocab=restrict_vocab)
                 if neighbours else [])
        drawn.append(word)
        groups.append(word)
        for near, _ in found:
            if near not in queries and near not in drawn:
                drawn.append(near)
                groups.append(word)
    # Neighbours are by cosine: the projection is of the unit vectors, so
    # that a long vector does not sit far from its neighbours.
    points = unit_rows(vectors.matrix, [vectors.index(w) for w in drawn])
    coordinates, explained = pca_2d(points)

    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    axes = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(queries))]
    labels = []
    for colour, query in zip(colours, queries):
        members = [i for i, g in enumerate(groups) if g == query]
        xy = coordinates[members]
        axes.scatter(xy[1:, 0], xy[1:, 1], s=30, color=colour, alpha=0.8)
        axes.scatter(xy[:1, 0], xy[:1, 1], s=120, color=colour, marker="*",
                     edgecolors="black", linewidths=0.6,
                     label=f"{query} + {len(members) - 1} nearest")
        for rank, i in enumerate(members):
            labels.append(axes.annotate(
                drawn[i], coordinates[i], xytext=LABEL_OFFSETS[0][:2],
                textcoords="offset points", color=colour,
                fontsize=11 if rank == 0 else 9,
                fontweight="bold" if rank == 0 else "normal"))
    axes.legend(loc="best", fontsize=9, framealpha=0.85)
    axes.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    axes.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
    axes.set_title(title if title is not None else
                   f"{len(queries)} words and their nearest neighbours "
                   f"(PCA, {explained.sum():.0%} of variance shown)")
    axes.grid(alpha=0.25)
    axes.margins(0.12)
    _separate(figure, labels)
    if path is None:
        return EmbeddingPlot(drawn, groups, coordinates, explained, figure)
    figure.savefig(os.fspath(path), format="png")
    return EmbeddingPlot(drawn, groups, coordinates, explained, None)
