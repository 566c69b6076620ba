"""Shared by the vector-file tests, which use no Keras."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def seed_everything():
    """Overrides the conftest fixture: these tests use no Keras, so they skip
    its Keras seeding and per-test `clear_session` (about 0.2 s a test)."""
    np.random.seed(1234)
    yield


def write(tmp_path, data, name="vectors.txt"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def assert_bits_equal(actual, expected):
    """Equal float32 values, bit for bit (NaN payloads and -0.0 included)."""
    actual = np.asarray(actual, np.float32)
    expected = np.asarray(expected, np.float32)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(
        actual.view(np.uint32), expected.view(np.uint32)
    )
