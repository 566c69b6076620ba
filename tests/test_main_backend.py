"""`python -m keras_embedlab` on an install without TensorFlow (Keras's
default backend): it picks an installed backend and says which, or names
the extras to install. Each case runs in a fresh process in which the
missing packages are blocked (`sys.modules[name] = None` makes both
`import name` and `importlib.util.find_spec(name)` see no package)."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(code, missing, tmp_path, keras_json=None):
    """Runs `code` after blocking the modules `missing`, with no
    KERAS_BACKEND and a Keras home of its own."""
    if keras_json is not None:
        (tmp_path / "keras.json").write_text(json.dumps(keras_json))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(KERAS_HOME=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(
                   p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    blocker = "".join(f"sys.modules[{m!r}] = None\n" for m in missing)
    return subprocess.run(
        [sys.executable, "-c", f"import sys\n{blocker}{code}"], env=env,
        cwd=ROOT, capture_output=True, text=True, timeout=300)


CHOOSE = ("from keras_embedlab.__main__ import choose_backend\n"
          "import os\n"
          "print('chosen', choose_backend(), os.environ.get('KERAS_BACKEND'))"
          "\nassert 'keras' not in sys.modules\n")


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="runs a JAX demo in a subprocess whatever this "
                    "process's backend; once, in the JAX run, is enough")
def test_demo_without_tensorflow_uses_jax_and_says_so(tmp_path):
    result = run_main("from keras_embedlab.__main__ import main\n"
                      "sys.exit(main(['demo']))", ["tensorflow"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith("KERAS_BACKEND is not set and Keras's backend "
                            "'tensorflow' (Keras's default) is not "
                            "installed: using jax."), first
    assert "Keras " in result.stdout and "backend: jax\n" in result.stdout
    assert "bit-for-bit equal to weights[ids]: True" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="needs torch installed (the second choice)")
def test_torch_is_the_second_choice(tmp_path):
    result = run_main(CHOOSE, ["tensorflow", "jax"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "using torch." in result.stdout
    assert result.stdout.splitlines()[-1] == "chosen torch torch"


def test_keras_json_backend_is_kept_when_installed(tmp_path):
    # The user's keras.json names an installed backend: nothing changes.
    result = run_main(CHOOSE, ["tensorflow"], tmp_path,
                      keras_json={"backend": "numpy"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "chosen None None\n"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="needs torch installed (the second choice)")
def test_keras_json_backend_missing_is_replaced_and_named(tmp_path):
    result = run_main(CHOOSE, ["tensorflow", "jax"], tmp_path,
                      keras_json={"backend": "tensorflow"})
    assert result.returncode == 0, result.stderr[-3000:]
    path = os.path.join(str(tmp_path), "keras.json")
    assert f"'tensorflow' (set in {path}) is not installed: using torch" \
        in result.stdout


def test_explicit_keras_backend_is_never_overridden(tmp_path):
    code = "import os\nos.environ['KERAS_BACKEND'] = 'tensorflow'\n" + CHOOSE
    result = run_main(code, ["tensorflow", "jax", "torch"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "chosen None tensorflow\n"


def test_no_backend_installed_names_the_extras(tmp_path):
    result = run_main(CHOOSE, ["tensorflow", "jax", "torch"], tmp_path)
    assert result.returncode == 1
    assert "Keras needs a backend and none is installed" in result.stderr
    assert "pip install 'keras_embedlab[jax]' (or [tensorflow] or [torch])" \
        in result.stderr
    assert "Traceback" not in result.stderr
