"""`benchmarks/bench_sparse.py` writes a well-formed CSV, chart and table."""

import csv
import math
import os
import subprocess
import sys

import pytest
from helpers import BACKEND

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                      "benchmarks", "bench_sparse.py")
OPTIMIZERS = {"SGD", "Adam", "SparseSGD", "LazyAdam", "torch.optim.SGD",
              "torch.optim.SparseAdam", "torch.optim.Adam",
              "read+write rows: table", "read+write rows: table, m, v"}
# Each framework's fixed cost per step, and ours through `model.fit`.
ADDED_CONTENDERS = {
    ("LookupEmbedding(sparse=True), fit", "SparseSGD"),
    ("LookupEmbedding(sparse=True), fit", "LazyAdam"),
    ("Keras empty step", "SparseSGD"),
    ("Keras empty step", "LazyAdam"),
    ("Keras empty step, fit", "SparseSGD"),
    ("Keras empty step, fit", "LazyAdam"),
    ("torch empty step", "torch.optim.SGD"),
    ("torch empty step", "torch.optim.Adam"),
}


def _run(tmp_path, backend):
    return subprocess.run(
        [sys.executable, SCRIPT, "--backends", backend, "--sizes", "100,2000",
         "--repeats", "2", "--steps", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """One tiny run of every contender, shared by the tests below."""
    path = tmp_path_factory.mktemp("bench_sparse")
    done = _run(path, BACKEND)
    assert done.returncode == 0, done.stderr
    return path


def test_bench_sparse_outputs(out):
    tmp_path = out
    with open(tmp_path / "bench-sparse.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == (len(OPTIMIZERS) - 1 + len(ADDED_CONTENDERS)) * 2
    assert {r["optimizer"] for r in rows} == OPTIMIZERS
    assert ADDED_CONTENDERS <= {(r["layer"], r["optimizer"]) for r in rows}
    for r in rows:
        assert r["backend"] == BACKEND
        assert float(r["median_ms"]) > 0
        if r["vocabulary"] == "100":
            assert float(r["ratio_to_smallest"]) == 1.0
    with open(tmp_path / "bench-sparse.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "bench-sparse.md").read_text()
    assert "| LookupEmbedding(sparse=True) | LazyAdam |" in table
    assert "| torch nn.Embedding(sparse=True) | torch.optim.SparseAdam |" \
        in table


def test_bench_sparse_compares_with_pytorch_and_the_floor(out):
    tmp_path = out
    with open(tmp_path / "bench-sparse-vs-pytorch.csv") as f:
        rows = list(csv.DictReader(f))
    pairs = {(r["ours"], r["peer"]) for r in rows}
    assert pairs == {
        ("LazyAdam", "torch nn.Embedding(sparse=True): "
         "torch.optim.SparseAdam"),
        ("SparseSGD", "torch nn.Embedding(sparse=True): torch.optim.SGD"),
        ("LazyAdam", "NumPy floor: read+write rows: table, m, v"),
        ("SparseSGD", "NumPy floor: read+write rows: table"),
    }
    assert len(rows) == 4 * 2 * 2  # through train_on_batch and fit
    assert {r["via"] for r in rows} == {"train_on_batch", "fit"}
    for r in rows:
        assert float(r["ratio"]) > 0 and float(r["peer_ms"]) > 0
        assert float(r["ours_ms"]) > 0
        # The fixed costs: measured for us, and for PyTorch (the floor has
        # none); the row work is what is left, and their ratio. With 2
        # repeats a median is a mean: medians of differences subtract.
        assert float(r["ours_empty_ms"]) > 0
        if r["peer"].startswith("NumPy floor"):
            assert float(r["peer_empty_ms"]) == 0
            assert float(r["peer_rows_ms"]) == float(r["peer_ms"])
        else:
            assert 0 < float(r["peer_empty_ms"])
        for field in ("row_ratio", "ours_rows_ms", "peer_rows_ms"):
            assert math.isfinite(float(r[field])), (field, r)
        assert float(r["ours_rows_ms"]) == pytest.approx(
            float(r["ours_ms"]) - float(r["ours_empty_ms"]), abs=0.01)
    table = (tmp_path / "bench-sparse.md").read_text()
    assert "| LazyAdam (train_on_batch) | torch nn.Embedding(sparse=True): " \
        "torch.optim.SparseAdam | **" in table
    assert "| LazyAdam (fit) | torch nn.Embedding(sparse=True): " \
        "torch.optim.SparseAdam | **" in table
    assert "row work, V=2,000" in table


def test_unknown_backend_is_refused(tmp_path):
    done = _run(tmp_path, "numpy")
    assert done.returncode == 2
    assert "row-sparse training runs on tensorflow, jax, torch" in \
        done.stderr
