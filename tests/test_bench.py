"""`python -m keras_embedlab bench` writes a well-formed CSV and PNG."""

import csv
import io
import subprocess
import sys
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
