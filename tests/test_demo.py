"""`python -m keras_embedlab demo` runs and shows what it claims."""

import io
import re
from contextlib import redirect_stdout

import keras
import numpy as np

from keras_embedlab.__main__ import main


def test_demo_output():
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = main(["demo"])
    text = buffer.getvalue()
    assert status == 0
    assert f"backend: {keras.backend.backend()}" in text
    assert "bit-for-bit equal to weights[ids]: True" in text
    assert "non-zero rows: [0, 1, 2]" in text
    assert "gradient is 2x a single use" in text
    assert re.search(r"Total params: 39\b", text)
    # The printed gradient: rows 0 and 1 are ones, row 2 twos, others zero.
    grad_text = text.split("ids [0, 2, 1, 2]:")[1].split("non-zero")[0]
    grad = np.array(re.findall(r"[\d.]+", grad_text), float).reshape(10, 4)
    expected = np.zeros((10, 4))
    expected[[0, 1]] = 1.0
    expected[2] = 2.0
    np.testing.assert_array_equal(grad, expected)
