"""The package's source agrees with itself: the files its docstrings and
comments name exist, and every backend constant is read somewhere."""

import pathlib
import re

import pytest

# The code under test never reads KERAS_BACKEND: `make test` runs this
# module in its first backend's session only (pyproject.toml, markers).
pytestmark = pytest.mark.backend_independent

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keras_embedlab"
SOURCES = sorted(PACKAGE.rglob("*.py"))
BACKEND_MODULES = [PACKAGE / "backend" / f"{name}.py"
                   for name in ("tensorflow", "jax", "torch")]


def _text(path):
    return path.read_text(encoding="utf-8")


def test_named_files_exist():
    files = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")
             if ".venv" not in p.parts}
    missing = []
    for source in SOURCES:
        for name in re.findall(r"(?<![\w./])([\w/]+\.py)\b", _text(source)):
            if not any(f == name or f.endswith("/" + name) for f in files):
                missing.append(f"{source.relative_to(ROOT)}: {name}")
    assert not missing


# The flags `backend/__init__.py` takes from the active backend's module.
CONSTANTS = re.findall(r"^([A-Z][A-Z_]+) = _impl\.\1$",
                       _text(PACKAGE / "backend" / "__init__.py"), re.M)


def test_constants_found():
    assert "TRACES_ROWS" in CONSTANTS and "FILL_TAKE" in CONSTANTS


@pytest.mark.parametrize("name", CONSTANTS)
def test_every_backend_constant_is_read(name):
    # A flag no code reads says something untrue about the package.
    readers = [p for p in SOURCES if p.parent != PACKAGE / "backend"
               and re.search(rf"\bbackend\.{name}\b", _text(p))]
    assert readers, f"backend.{name} is never read"
    for module in BACKEND_MODULES:
        # Each backend's module defines it (read as text, so one session
        # checks all three).
        assert re.search(rf"^{name}\s*(:[^=]*)?=", _text(module), re.M), \
            f"{module.name} does not define {name}"
