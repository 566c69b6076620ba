"""The package's source agrees with itself: the files its docstrings and
comments name exist, and every backend constant is read somewhere."""

import pathlib
import re

import pytest

from keras_embedlab import backend

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keras_embedlab"
SOURCES = sorted(PACKAGE.rglob("*.py"))


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
    assert hasattr(backend, name)
