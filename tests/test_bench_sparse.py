"""`benchmarks/bench_sparse.py` writes a well-formed CSV, chart and table."""

import csv
import os
import subprocess
import sys

from helpers import BACKEND

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                      "benchmarks", "bench_sparse.py")


def _run(tmp_path, backend):
    return subprocess.run(
        [sys.executable, SCRIPT, "--backends", backend, "--sizes", "100,2000",
         "--repeats", "2", "--steps", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )


def test_bench_sparse_outputs(tmp_path):
    done = _run(tmp_path, BACKEND)
    if BACKEND == "torch":
        assert done.returncode == 2
        assert "row-sparse training runs on tensorflow, jax" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "bench-sparse.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 2
    assert {r["optimizer"] for r in rows} == {"SGD", "Adam", "SparseSGD",
                                              "LazyAdam"}
    for r in rows:
        assert r["backend"] == BACKEND
        assert float(r["median_ms"]) > 0
        if r["vocabulary"] == "100":
            assert float(r["ratio_to_smallest"]) == 1.0
    with open(tmp_path / "bench-sparse.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "bench-sparse.md").read_text()
    assert "| LookupEmbedding(sparse=True) | LazyAdam |" in table
