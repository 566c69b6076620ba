"""The package's layout rules (docs/ARCHITECTURE.md), checked."""

import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_embedlab"
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_backend_names_are_compared_only_in_backend():
    # `keras.backend.backend()` may be shown (the demo prints it), never
    # compared or used to choose code outside keras_embedlab/backend/.
    compared = re.compile(
        r"backend\(\)\s*(==|!=|in\b|not in\b)|"
        r"(==|!=)\s*keras\.backend\.backend\(\)|"
        r"\bimport (tensorflow|jax|torch)\b|from (tensorflow|jax|torch)\b"
    )
    offenders = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in MODULES if "backend" not in p.relative_to(PACKAGE).parts
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not offenders, offenders
    assert len(MODULES) > 10
