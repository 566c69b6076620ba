"""`benchmarks/bench_ids.py`: its tiniest run, in this test's backend."""

import importlib.util
import os

import numpy as np
import pytest
from helpers import BACKEND

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                      "benchmarks", "bench_ids.py")


def _load():
    spec = importlib.util.spec_from_file_location("bench_ids", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_full_table_beats_a_one_row_hashed_table(tmp_path):
    # 1,000 ids, 4 fields: a full table learns the ids' scores; one hashed
    # row maps every id to the same vector, so every example gets the same
    # logit and the AUC is exactly 0.5 (ties count half).
    results = bench.measure(
        universe=1000, rows=1, dim=4, fields=4, batch=64, steps=60,
        warmup=2, test=2000, lr=0.05,
        contenders=["full", "hashed-1", "qr", "dynamic"], log=lambda m: None)
    by_name = {r["contender"]: r for r in results}
    assert {r["backend"] for r in results} == {BACKEND}
    truth, full, hashed = (by_name[n] for n in
                           (bench.TRUTH, "full", "hashed-1"))
    assert hashed["auc"] == 0.5
    assert full["auc"] > 0.65
    assert truth["auc"] > full["auc"] - 0.02
    assert full["log_loss"] < hashed["log_loss"]
    assert full["table_bytes"] == 1000 * 4 * 4
    assert hashed["table_bytes"] == 1 * 4 * 4
    assert hashed["step_ratio"] == 1.0 and full["step_ratio"] > 0
    assert full["rows"] == "1,000" and hashed["rows"] == "1"
    # Contenders that cannot run at 1 row say why instead of vanishing.
    assert "ceil(1,000 / m) + m <= 1 rows" in by_name["qr"]["skipped"]
    assert "skipped" in by_name["dynamic"]

    table = bench.format_table(results)
    assert f"| {BACKEND} | full | LookupEmbedding over every raw id " \
        f"(reference) | 1,000 | 16.0 kB | {full['log_loss']:.4f} | " \
        f"**{full['auc']:.4f}** |" in table
    assert f"| {BACKEND} | qr | skipped: " in table
    bench.write_chart(results, tmp_path / "chart.png", "tiny")
    with open(tmp_path / "chart.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_auc_and_log_loss_match_their_definitions():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype("float32")
    scores = np.round(rng.normal(size=500) + labels, 1)  # many ties
    u = stats.mannwhitneyu(scores[labels > 0.5], scores[labels < 0.5]).statistic
    assert bench.auc(labels, scores) == pytest.approx(
        u / (labels.sum() * (500 - labels.sum())), abs=1e-12)
    p = 1 / (1 + np.exp(-scores.astype("float64")))
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert bench.log_loss(labels, scores) == pytest.approx(expected, 1e-9)


@pytest.mark.parametrize("universe,rows,m", [
    (10**7, 10**5, 99_899), (1000, 100, 88), (1000, 63, None),
    (10, 10, 8)])
def test_qr_collisions_fill_the_row_budget(universe, rows, m):
    assert bench.qr_collisions(universe, rows) == m
    if m is not None:
        assert -(-universe // m) + m <= rows
        assert -(-universe // (m + 1)) + m + 1 > rows or m == universe


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--contenders", "full,lsh"])
    assert "contenders are full, hashed-1, hashed-4, qr, dynamic; " \
        "received 'full,lsh'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--backends", "numpy"])
    assert "runs on tensorflow, jax, torch; received numpy" in \
        capsys.readouterr().err
