"""The package's layout rules (docs/ARCHITECTURE.md), checked."""

import ast
import pathlib
import re

import pytest

# The code under test never reads KERAS_BACKEND: `make test` runs this
# module in its first backend's session only (pyproject.toml, markers).
pytestmark = pytest.mark.backend_independent

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_embedlab"
MODULES = sorted(PACKAGE.rglob("*.py"))
# What users import, and nothing else, at the root.
ROOT = {"__init__.py", "__main__.py", "distribution.py", "testing.py",
        "py.typed"}


def _relative(path):
    return path.relative_to(PACKAGE)


def test_root_holds_public_modules_only():
    files = {p.name for p in PACKAGE.iterdir() if p.is_file()}
    assert files <= ROOT, sorted(files - ROOT)


def test_backend_names_are_compared_only_in_backend():
    # `keras.backend.backend()` may be shown (the demo prints it), never
    # compared or used to choose code outside keras_embedlab/backend/.
    # `cli/timing.py` times each backend's own gather: bench code, never
    # imported at run time (see the next test). `serving/runtimes.py` runs
    # exported files in their formats' runtimes (`tf.saved_model.load`,
    # `torch.export.load`), whatever the Keras backend: not backend code.
    compared = re.compile(
        r"backend\(\)\s*(==|!=|in\b|not in\b)|"
        r"(==|!=)\s*keras\.backend\.backend\(\)|"
        r"\bimport (tensorflow|jax|torch)\b|from (tensorflow|jax|torch)\b"
    )
    offenders = [
        f"{_relative(p)}:{i}"
        for p in MODULES
        if _relative(p).parts[0] != "backend"
        and _relative(p) not in (pathlib.Path("cli/timing.py"),
                                 pathlib.Path("serving/runtimes.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not offenders, offenders
    assert len(MODULES) > 10


def _all_imported(path):
    """Every module name `path` imports, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}"
                         for alias in node.names)
    return names


def _imported(path):
    """The `keras_embedlab` modules `path` imports, at any depth."""
    return {n for n in _all_imported(path) if n.startswith("keras_embedlab")}


def test_nothing_at_run_time_imports_the_command_line():
    # Only `__main__.py` and `cli/` itself may import `keras_embedlab.cli`.
    offenders = [
        str(_relative(p)) for p in MODULES
        if _relative(p).parts[0] != "cli" and p.name != "__main__.py"
        and any(n == "keras_embedlab.cli" or n.startswith("keras_embedlab.cli.")
                for n in _imported(p))
    ]
    assert not offenders, offenders


def test_vectors_import_neither_keras_nor_layers():
    offenders = [
        str(_relative(p)) for p in PACKAGE.joinpath("vectors").rglob("*.py")
        if re.search(r"^\s*(import|from) keras\b", p.read_text(), re.M)
        or any(n.startswith(("keras_embedlab.layers", "keras_embedlab.table"))
               for n in _imported(p))
    ]
    assert not offenders, offenders


def test_the_invalid_id_rule_lives_in_one_module():
    # Backends refuse a batch with the reader's `Refusal`; they import
    # nothing of `ids/`, and the rule, its error and its message are
    # defined in `ids/reader.py` alone.
    defined = re.compile(r"^(def valid_ids|class InvalidIdError|"
                         r"def invalid_ids_message)\b", re.M)
    owners = [str(_relative(p)) for p in MODULES
              if defined.search(p.read_text())]
    assert owners == ["ids/reader.py"], owners
    offenders = [
        str(_relative(p)) for p in PACKAGE.joinpath("backend").glob("*.py")
        if any(n.startswith("keras_embedlab.ids") for n in _imported(p))
    ]
    assert not offenders, offenders



def test_backend_independent_test_modules_import_nothing_backend_bound():
    # `make test` runs a module marked `backend_independent` in its first
    # backend's session only: that is no loss of coverage only while the
    # module tests code that never reads the backend (the NumPy vectors
    # package, or source text). Keras, the layers, the backends and the
    # tests' `helpers` (which reads KERAS_BACKEND) are backend-bound.
    tests = PACKAGE.parent / "tests"
    marked = [p for p in sorted(tests.glob("test_*.py"))
              if "pytestmark = pytest.mark.backend_independent"
              in p.read_text()]
    assert len(marked) >= 5, [p.name for p in marked]
    bound = re.compile(r"^(keras|tensorflow|jax|torch|helpers)(\.|$)")
    needle = "_".join(("KERAS", "BACKEND"))  # built, so this file passes
    offenders = {}
    for path in marked:
        names = {n for n in _all_imported(path) if bound.match(n)
                 or (n.startswith("keras_embedlab")
                     and not n.startswith("keras_embedlab.vectors"))}
        # `from keras_embedlab import vectors` is the vectors package.
        names -= {"keras_embedlab", "keras_embedlab.vectors"}
        reads = any(isinstance(node, ast.Constant)
                    and needle in str(node.value)
                    for node in ast.walk(ast.parse(path.read_text())))
        if names or reads:
            offenders[path.name] = sorted(names)
    assert not offenders, offenders
