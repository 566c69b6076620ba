"""Keras's own Embedding and ReversibleEmbedding tests, run on our class.

The test files ship in the installed `keras` wheel. They are copied to a
temporary folder with `layers.Embedding` and `layers.ReversibleEmbedding`
replaced by `LookupEmbedding` (every assertion unchanged) and run by pytest
in a subprocess, once per backend (this process's `KERAS_BACKEND`). Nothing
of Keras's code is kept in this repository.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import keras
import pytest

SUITES = ("embedding_test.py", "reversible_embedding_test.py")
# Skips that Keras's own class gets too, by Keras's own conditions.
KERAS_SKIP_REASONS = (
    "Backend does not support sparse tensors.",
    "Backend does not support ragged tensors.",
    "Torch CPU does not support float16",
)
# Each suite's tests; a drop in count means a suite file changed shape.
MIN_TESTS = {"embedding_test.py": 48, "reversible_embedding_test.py": 40}
# Where Keras's test relies on what our invalid-id contract refuses: the
# TensorFlow export step of these tests feeds `tf.random.normal` floats as
# ids, which Keras's class truncates (and wraps, when negative) into rows.
# Ours raises `InvalidIdError` for fractional ids by design. Everything
# before that step (fit, .keras and .weights.h5 round trips) must pass, and
# the test must fail with our invalid-id error and nothing else.
DEVIATIONS = {
    ("tensorflow", "test_quantize_lora_integration_int8"),
    ("tensorflow", "test_quantize_lora_integration_int4"),
}
INVALID_ID = "received an invalid id"
# Also freezes what is alive after collection, as our own conftest.py does
# (the garbage collector then skips Keras and the backend on each pass).
CONFTEST = '''
import gc


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_trainable_backend: Keras")


def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()
'''


def _keras_test_dir():
    spec = importlib.util.find_spec("keras")
    root = pathlib.Path(spec.origin).parent
    return root / "src" / "layers" / "core"


def swapped(text):
    """A Keras test file with our class in place of Keras's."""
    for name in ("layers.ReversibleEmbedding", "layers.Embedding"):
        text = text.replace(name, "LookupEmbedding")
    return "from keras_embedlab import LookupEmbedding\n" + text


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_suites")
    source = _keras_test_dir()
    for name in SUITES:
        path = source / name
        if not path.exists():
            pytest.fail(f"Keras's {name} is not in the installed wheel at "
                        f"{source}; this keras ({keras.__version__}) does "
                        "not ship its tests.")
        (folder / f"test_swapped_{name}").write_text(
            swapped(path.read_text()))
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    report = folder / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(folder / "pytest.ini"), f"--junitxml={report}",
         str(folder)],
        cwd=folder, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
    )
    if not report.exists():
        pytest.fail("pytest wrote no report:\n" + result.stdout[-4000:]
                    + result.stderr[-4000:])
    return ElementTree.parse(report).getroot(), result.stdout


def _cases(root, suite):
    stem = f"test_swapped_{suite}".removesuffix(".py")
    return [case for case in root.iter("testcase")
            if case.get("classname", "").startswith(stem)]


@pytest.mark.parametrize("suite", SUITES)
def test_keras_suite_passes_with_lookup_embedding(suite_results, suite):
    root, output = suite_results
    cases = _cases(root, suite)
    failed, deviated = [], []
    for case in cases:
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            continue
        known = (keras.backend.backend(), case.get("name")) in DEVIATIONS
        text = problem.get("message", "") + (problem.text or "")
        if known and INVALID_ID in text and "export" in text:
            deviated.append(case.get("name"))
        else:
            failed.append(case.get("name"))
    assert not failed, f"{suite}: {failed}\n{output[-6000:]}"
    # A deviation that stops happening must be taken off the list.
    expected = {name for backend, name in DEVIATIONS
                if backend == keras.backend.backend()}
    names = {case.get("name") for case in cases}
    assert set(deviated) == expected & names
    skipped = [case.find("skipped") for case in cases
               if case.find("skipped") is not None]
    reasons = {skip.get("message", "") for skip in skipped}
    unexpected = [r for r in reasons
                  if not any(k in r for k in KERAS_SKIP_REASONS)]
    assert not unexpected, f"{suite}: skips Keras does not have: {unexpected}"
    assert len(cases) >= MIN_TESTS[suite], (suite, len(cases))
    passed = len(cases) - len(skipped)
    assert passed >= MIN_TESTS[suite] - 4, (suite, passed)
