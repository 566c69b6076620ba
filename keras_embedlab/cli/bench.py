"""`python -m keras_embedlab bench`: lookup against one-hot matmul.

Times, on the active backend and compiled the way Keras compiles (`jax.jit`;
`tf.function`), the raw backend gather, `keras.layers.Embedding`,
`LookupEmbedding` (both `invalid_ids` modes) and `OneHotDense` on the same ids
and the same matrix, for the forward pass, forward + backward (gradient with
respect to the matrix) and one optimizer step (SGD, Adam). Every call takes
the same dispatch path (`timing.prepare`) and is waited for.
Contenders run interleaved within each repeat, so drift of a shared machine
hits them alike. One statistic everywhere: a contender's time is the median
of all its timed calls, every repeat pooled (`median_ms` in the CSV, the chart's
points), and a ratio is one contender's time divided by the anchor's
(`ratio_to_gather`, `ratio_to_keras`), so every ratio in the table can be
recomputed from the CSV's `median_ms` column.
"""

from __future__ import annotations

import csv
import os
import time
from typing import Any, Callable, Iterable

import keras
import numpy as np

from keras_embedlab.cli import timing
from keras_embedlab.cli.flags import (
    CONTENDERS,
    GATHER,
    KERAS,
    MODE_TITLES,
    MODES,
    resolve,
)
from keras_embedlab.layers.lookup import LookupEmbedding
from keras_embedlab.layers.one_hot import OneHotDense

__all__ = ["CONTENDERS", "CSV_FIELDS", "MODES", "measure", "main", "run"]
Row = dict[str, Any]
CSV_FIELDS = ("backend", "device", "mode", "contender", "vocabulary", "ids",
              "dim", "median_ms", "ratio_to_gather", "ratio_to_keras",
              "repeats", "skipped")


def _layer_for(name: str, vocabulary: int, dim: int) -> keras.layers.Layer:
    if name == KERAS:
        return keras.layers.Embedding(vocabulary, dim)
    if name == "LookupEmbedding":
        return LookupEmbedding(vocabulary, dim)
    if name == "LookupEmbedding[zeros]":
        return LookupEmbedding(vocabulary, dim, invalid_ids="zeros")
    return OneHotDense(vocabulary, dim)


def contender_fn(name: str, vocabulary: int,
                 dim: int) -> timing.Rows:
    """A pure function `(table, ids) -> rows` for the contender."""
    if name == GATHER:
        return timing.raw_gather
    layer = _layer_for(name, vocabulary, dim)
    layer.build()

    def rows(table, ids):
        return layer.stateless_call([table], [], ids)[0]

    return rows


def one_hot_bytes(name: str, vocabulary: int, n_ids: int) -> int:
    return 4 * vocabulary * n_ids if name == "OneHotDense" else 0


def _time_calls(run: Callable[[], Any], inner: int) -> list[float]:
    """Seconds of each of `inner` calls, waiting for each result (as a
    training step waits for the previous one's weights), after one untimed
    call: the first call after another contender's finds the caches
    holding that contender's data (after a large `OneHotDense`, a gather
    measured 7x its steady time)."""
    timing.block(run())
    times = []
    for _ in range(inner):
        start = time.perf_counter()
        timing.block(run())
        times.append(time.perf_counter() - start)
    return times


_NOTES_SHOWN = set()


def _prepare(log: Callable[[str], Any] = print) -> None:
    """`timing.prepare()`, before any measurement; its note, if any,
    is shown once per process."""
    note = timing.prepare()
    if note and note not in _NOTES_SHOWN:
        _NOTES_SHOWN.add(note)
        log(note)


def measure(mode: str, vocabulary: int, n_ids: int, dim: int,
            contenders: Iterable[str], repeats: int, budget: float,
            log: Callable[[str], Any] = print) -> list[Row]:
    """Rows of results for one mode and one vocabulary size: each run
    contender's `median_ms` (median of all its timed calls) and its ratios
    to the anchors (see `add_ratios`)."""
    _prepare(log)
    rng = np.random.default_rng(0)
    table = rng.uniform(-0.05, 0.05, (vocabulary, dim)).astype("float32")
    ids = rng.integers(0, vocabulary, n_ids).astype("int32")
    cotangent = rng.normal(size=(n_ids, dim)).astype("float32")
    runners, skipped = {}, {}
    for name in contenders:
        need = one_hot_bytes(name, vocabulary, n_ids)
        if need > budget:
            skipped[name] = (f"one-hot tensor needs {need / 2**30:.1f} GiB "
                             f"> --memory-budget {budget / 2**30:.1f} GiB")
            continue
        fn = contender_fn(name, vocabulary, dim)
        runners[name] = timing.compile_benchmark(
            mode, fn, table, ids, cotangent
        )
    inner = {}
    for name, run in runners.items():
        # Compile, then warm up (thread pools, allocator, caches): on
        # PyTorch the first eager calls once measured 50x the steady state.
        _time_calls(run, 2)
        first = _time_calls(run, 1)[0]
        inner[name] = int(min(50, max(3, 0.02 // max(first, 1e-6))))
    times = {name: [] for name in runners}
    names = list(runners)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].extend(_time_calls(runners[name], inner[name]))
    rows = []
    for name in contenders:
        row = {"mode": mode, "contender": name, "vocabulary": vocabulary,
               "ids": n_ids, "dim": dim, "repeats": repeats}
        if name in skipped:
            rows.append({**row, "skipped": skipped[name]})
            log(f"  skipped {name}: {skipped[name]}")
            continue
        row["median_ms"] = float(np.median(times[name]) * 1e3)
        rows.append(row)
    return add_ratios(rows)


RATIOS = (("ratio_to_gather", GATHER), ("ratio_to_keras", KERAS))


def add_ratios(rows: list[Row]) -> list[Row]:
    """Sets `ratio_to_gather` and `ratio_to_keras` of each timed row of one
    mode and size: its `median_ms` over the anchor's (when it ran)."""
    medians = {r["contender"]: r["median_ms"] for r in rows
               if "median_ms" in r}
    for row in rows:
        for key, anchor in RATIOS:
            if "median_ms" in row and anchor in medians:
                row[key] = row["median_ms"] / medians[anchor]
    return rows


def write_csv(rows: list[Row], path: str) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def chart_series(rows: list[Row],
                 mode: str) -> dict[str, list[tuple[int, float]]]:
    """`{contender: [(vocabulary, median_ms), ...]}`: the chart's points,
    the same medians the table's ratios are made of."""
    series = {}
    for name in CONTENDERS:
        points = [(r["vocabulary"], r["median_ms"]) for r in rows
                  if r["mode"] == mode and r["contender"] == name
                  and "median_ms" in r]
        if points:
            series[name] = points
    return series


def write_chart(rows: list[Row], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 4),
                             squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for name, points in chart_series(rows, mode).items():
            x, y = zip(*points)
            ax.plot(x, y, marker="o", label=name)
        skipped = sorted({f"{r['contender']} at {r['vocabulary']:,d}"
                          for r in rows
                          if r["mode"] == mode and "median_ms" not in r})
        if skipped:
            ax.text(0.02, 0.02, "not run (memory budget):\n"
                    + "\n".join(skipped), transform=ax.transAxes,
                    fontsize=6, va="bottom")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(MODE_TITLES[mode])
        ax.set_xlabel("vocabulary size (rows)")
        ax.set_ylabel("time per call, median of all calls\n"
                      "(ms, lower is better)", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(row: Row | None, name: str) -> str:
    if row is None:
        return f"{'':>14s}"
    if "median_ms" not in row:
        return f"{'skipped':>14s}"
    if name == GATHER or "ratio_to_gather" not in row:
        # The anchor itself, or no gather in this run: its time in ms.
        ms = f"[{row['median_ms']:.3g}]"
        return f"{ms:>14s}"
    return f"{row['ratio_to_gather']:>13.2f}x"


def format_table(rows: list[Row]) -> str:
    lines = []
    for mode in MODES:
        mode_rows = [r for r in rows if r["mode"] == mode]
        if not mode_rows:
            continue
        sizes = sorted({r["vocabulary"] for r in mode_rows})
        lines.append(f"\n{MODE_TITLES[mode]}: time as a ratio to the raw "
                     "gather = contender's median ms / gather's median ms "
                     "(medians of all timed calls, the CSV's median_ms; "
                     "lower is better; [median ms] where there is no ratio)")
        lines.append(f"{'contender':26s}" + "".join(
            f"{s:>14,d}" for s in sizes))
        for name in CONTENDERS:
            cells = [_cell(next((r for r in mode_rows
                                 if r["contender"] == name
                                 and r["vocabulary"] == s), None), name)
                     for s in sizes]
            if any(c.strip() for c in cells):
                lines.append(f"{name:26s}" + "".join(cells))
    keras_rows = [r for r in rows if r["mode"] == "forward"
                  and r["contender"].startswith("LookupEmbedding")
                  and "ratio_to_keras" in r]
    if keras_rows:
        lines.append("\nforward, LookupEmbedding / keras.layers.Embedding "
                     "= its median ms / keras.layers.Embedding's median ms "
                     "(lower is better):")
        for r in keras_rows:
            lines.append(f"  {r['contender']:24s} vocabulary "
                         f"{r['vocabulary']:>9,d}: {r['ratio_to_keras']:.3f}x")
    return "\n".join(lines)


def run(sizes: list[int], n_ids: int, dim: int, modes: list[str],
        contenders: list[str], repeats: int, budget: float,
        out_dir: str) -> list[Row]:
    _prepare()  # Before `device_name` starts JAX's client.
    device = timing.device_name()
    backend = keras.backend.backend()
    print(f"bench: backend {backend} on {device}; {n_ids:,} ids x {dim} "
          f"dims; vocabularies {', '.join(f'{s:,d}' for s in sizes)}; "
          f"{repeats} repeats", flush=True)
    rows, start = [], time.perf_counter()
    for mode in modes:
        for vocabulary in sizes:
            print(f"[{time.perf_counter() - start:6.1f}s] {mode:8s} "
                  f"vocabulary {vocabulary:>9,d}", flush=True)
            for row in measure(mode, vocabulary, n_ids, dim, contenders,
                               repeats, budget):
                rows.append({"backend": backend, "device": device, **row})
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, f"bench-{backend}")
    write_csv(rows, stem + ".csv")
    write_chart(rows, stem + ".png",
                f"keras_embedlab bench: {backend} on {device}, "
                f"{n_ids:,} ids x {dim} dims")
    print(format_table(rows))
    print(f"\nwrote {stem}.csv and {stem}.png "
          f"({time.perf_counter() - start:.0f}s)")
    return rows


def main(args: Any) -> int:
    run(**resolve(args))
    return 0
