"""`python -m keras_embedlab bench` writes a well-formed CSV and PNG."""

import csv
import io
from contextlib import redirect_stdout

import keras
import matplotlib.image
import pytest

from keras_embedlab import bench
from keras_embedlab.__main__ import main


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
    assert "time as a ratio to the raw gather" in text
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
