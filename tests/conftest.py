import keras
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def seed_everything():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.backend.clear_session()
