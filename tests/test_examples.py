"""Every example runs (with small sizes) and finds what the README says."""

import importlib.util
import io
import os
from contextlib import redirect_stdout

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                        "examples")


def run_example(name, *argv):
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = module.main(list(argv))
    return status, buffer.getvalue()


@pytest.mark.parametrize("argv", [[], ["--vocabulary", "50", "--ids", "7"]])
def test_embedding_is_dense_on_one_hot(argv):
    status, text = run_example("embedding_is_dense_on_one_hot", *argv)
    assert status == 0, text
    assert text.count("bit for bit: True") == 3
    assert "evidence agrees" in text
