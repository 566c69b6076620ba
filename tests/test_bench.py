"""`python -m keras_embedlab bench` writes a well-formed CSV and PNG."""

import csv
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout

import keras
import matplotlib.image
import pytest

from keras_embedlab.__main__ import main
from keras_embedlab.cli import bench


def run_bench(*argv):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = main(["bench", *argv])
    return status, buffer.getvalue()


def test_bench_writes_csv_and_png(tmp_path):
    status, text = run_bench(
        "--sizes", "50,400", "--ids", "64", "--dim", "4", "--repeats", "2",
        "--memory-budget", str(64 * 200 * 4 / 2**30), "--out", str(tmp_path),
    )
    assert status == 0
    backend = keras.backend.backend()
    with open(tmp_path / f"bench-{backend}.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(bench.MODES) * 2 * len(bench.CONTENDERS)
    assert set(rows[0]) == set(bench.CSV_FIELDS)
    for row in rows:
        assert row["backend"] == backend
        skipped = (row["contender"] == "OneHotDense"
                   and row["vocabulary"] == "400")
        if skipped:
            # 64 ids x 400 rows x 4 bytes exceeds the budget given above.
            assert "one-hot tensor needs" in row["skipped"]
            assert row["median_ms"] == ""
            continue
        assert row["skipped"] == ""
        assert float(row["median_ms"]) > 0
        if row["contender"] == "gather":
            assert float(row["ratio_to_gather"]) == 1.0
        if row["contender"] == "keras.layers.Embedding":
            assert float(row["ratio_to_keras"]) == 1.0
    assert "skipped OneHotDense" in text
    assert ("time as a ratio to the raw gather = contender's median ms / "
            "gather's median ms") in text
    image = matplotlib.image.imread(tmp_path / f"bench-{backend}.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 800


def test_bench_quick_runs(tmp_path):
    status, text = run_bench("--quick", "--modes", "forward", "--out",
                             str(tmp_path))
    assert status == 0
    assert "vocabulary    10,000" in text
    assert (tmp_path / f"bench-{keras.backend.backend()}.png").exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--modes", "sideways"], "--modes: unknown"),
        (["--contenders", "Dense"], "--contenders: unknown"),
        (["--sizes", "ten"], "--sizes: expected comma-separated integers"),
        (["--ids", "0"], "must be positive"),
    ],
)
def test_bench_rejects_bad_flags(argv, message):
    with pytest.raises(SystemExit) as info:
        run_bench(*argv)
    assert message in str(info.value.code)


def test_quick_keeps_explicit_flags(tmp_path):
    status, text = run_bench("--quick", "--modes", "forward", "--sizes",
                             "20,40", "--repeats", "2", "--out",
                             str(tmp_path))
    assert status == 0
    assert "vocabularies 20, 40; 2 repeats" in text
    assert "512 ids x 16 dims" in text  # --quick's defaults for the rest


def test_table_without_gather_shows_times_not_nan(tmp_path):
    status, text = run_bench("--sizes", "30", "--ids", "16", "--dim", "4",
                             "--repeats", "2", "--modes", "backward",
                             "--contenders", "LookupEmbedding,OneHotDense",
                             "--out", str(tmp_path))
    assert status == 0
    assert "nan" not in text
    assert "forward + backward: time as a ratio" in text
    assert "lower is better" in text
    assert text.count("[") >= 2  # each contender's median ms


def test_unwritable_out_fails_before_timing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as info:
        run_bench("--out", str(blocker / "sub"))
    assert "--out: cannot write to" in str(info.value.code)


def test_help_and_version_do_not_import_keras():
    code = (
        "import sys\n"
        "from keras_embedlab.__main__ import main\n"
        "for argv in (['--help'], ['bench', '--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "assert 'keras' not in sys.modules, 'keras was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "keras_embedlab 0.1.0" in result.stdout
    assert "timed rounds per point" in result.stdout


def _table_cells(text):
    """`{(mode title, contender, vocabulary): cell}` from the printed
    tables."""
    cells, title, sizes = {}, None, None
    for line in text.splitlines():
        words = line.split()
        if ": time as a ratio to the raw gather" in line:
            title, sizes = line.split(":")[0], None
        elif title and words and words[0] == "contender":
            sizes = [int(w.replace(",", "")) for w in words[1:]]
        elif title and sizes and words and words[0] in bench.CONTENDERS:
            assert len(words) == len(sizes) + 1, line
            for size, value in zip(sizes, words[1:]):
                cells[(title, words[0], size)] = value
        else:
            title = sizes = None
    return cells


def test_printed_ratios_and_chart_are_the_csv_medians(tmp_path):
    status, text = run_bench(
        "--sizes", "30,60", "--ids", "16", "--dim", "4", "--repeats", "2",
        "--modes", "forward,sgd", "--out", str(tmp_path))
    assert status == 0
    with open(tmp_path / f"bench-{keras.backend.backend()}.csv") as f:
        rows = list(csv.DictReader(f))
    median = {(r["mode"], r["contender"], int(r["vocabulary"])):
              float(r["median_ms"]) for r in rows}
    cells = _table_cells(text)
    assert len(cells) == len(rows) == 2 * 2 * len(bench.CONTENDERS)
    for (mode, name, size), ms in median.items():
        gather = median[(mode, bench.GATHER, size)]
        keras_ms = median[(mode, bench.KERAS, size)]
        row = next(r for r in rows if (r["mode"], r["contender"],
                                       int(r["vocabulary"]))
                   == (mode, name, size))
        # The CSV's ratios are its own medians' ratios...
        assert float(row["ratio_to_gather"]) == pytest.approx(ms / gather)
        assert float(row["ratio_to_keras"]) == pytest.approx(ms / keras_ms)
        # ... and so is every printed cell.
        cell = cells[(bench.MODE_TITLES[mode], name, size)]
        if name == bench.GATHER:
            assert cell == f"[{ms:.3g}]"
        else:
            assert cell == f"{ms / gather:.2f}x"
        if mode == "forward" and name.startswith("LookupEmbedding"):
            line = re.search(rf"  {re.escape(name)} +vocabulary +{size}: "
                             r"([\d.]+)x", text)
            assert line and line.group(1) == f"{ms / keras_ms:.3f}"
    # The chart's points are the same medians.
    by_row = [{**r, "vocabulary": int(r["vocabulary"]),
               "median_ms": float(r["median_ms"])} for r in rows]
    for mode in ("forward", "sgd"):
        series = bench.chart_series(by_row, mode)
        assert set(series) == set(bench.CONTENDERS)
        for name, points in series.items():
            assert points == [(s, median[(mode, name, s)]) for s in (30, 60)]


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="JAX's CPU async dispatch is what prepare() sets")
def test_jax_bench_dispatches_every_contender_the_same_way():
    # A program with a host callback (LookupEmbedding's id check) runs
    # inline; with async dispatch the others went to a worker thread, and
    # their timed calls paid a hand-off that LookupEmbedding's did not.
    import jax
    import jax.numpy as jnp

    from keras_embedlab.cli import timing as benchmarking

    code = ("import jax\n"
            "from keras_embedlab.cli import timing as benchmarking\n"
            "note = benchmarking.prepare()\n"
            "print(jax.config.read('jax_cpu_enable_async_dispatch'), note)\n")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", code], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False None"  # a fresh process: set
    # Here JAX's client is running: too late to change, and said so.
    jnp.zeros(1).block_until_ready()
    note = benchmarking.prepare()
    if jax.config.read("jax_cpu_enable_async_dispatch"):
        assert note.startswith("note: JAX's CPU client was started before "
                               "the bench with async dispatch")
    else:
        assert note is None
