"""`benchmarks/bench_sparse.py` writes a well-formed CSV, chart and table."""

import csv
import os
import subprocess
import sys

import pytest
from helpers import BACKEND

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                      "benchmarks", "bench_sparse.py")
OPTIMIZERS = {"SGD", "Adam", "SparseSGD", "LazyAdam", "torch.optim.SGD",
              "torch.optim.SparseAdam", "read+write rows: table",
              "read+write rows: table, m, v"}


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
    assert len(rows) == len(OPTIMIZERS) * 2
    assert {r["optimizer"] for r in rows} == OPTIMIZERS
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
    assert len(rows) == 4 * 2
    for r in rows:
        assert float(r["ratio"]) > 0 and float(r["peer_ms"]) > 0
        assert float(r["ours_ms"]) > 0
    table = (tmp_path / "bench-sparse.md").read_text()
    assert "| LazyAdam | torch nn.Embedding(sparse=True): " \
        "torch.optim.SparseAdam | **" in table


def test_unknown_backend_is_refused(tmp_path):
    done = _run(tmp_path, "numpy")
    assert done.returncode == 2
    assert "row-sparse training runs on tensorflow, jax, torch" in \
        done.stderr
