"""Every ```python block of README.md runs as pasted, on every backend.

Blocks run in order, each in a fresh namespace (so a block that uses a
name it does not define fails) and a fresh empty working directory, in a
subprocess: one for all the blocks that run under this run's backend, and
one per block that needs its own environment variables. A block is tied to
conditions by an HTML comment on the line just before its fence:

    <!-- readme: backend=jax env=XLA_FLAGS=... needs=gensim -->

`backend=` runs it only in that backend's test run (skipped elsewhere, with
the reason), `env=NAME=VALUE` (repeatable) runs it in its own process with
that variable set, `needs=MODULE` skips it where MODULE is not installed.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BACKENDS = ("tensorflow", "jax", "torch")
FENCE_LANGUAGES = ("python", "sh", "text")
MARKER = re.compile(r"^<!--\s*readme:(.*)-->\s*$")
FENCE = re.compile(r"^```(.*)$")


@dataclass(frozen=True)
class Block:
    index: int  # 0-based, in README order
    line: int  # 1-based line of the opening fence
    code: str
    backend: str | None = None
    env: tuple = ()
    needs: tuple = ()

    @property
    def title(self):
        first = next((s for s in self.code.splitlines() if s.strip()), "")
        return f"block {self.index} (README.md line {self.line}): {first}"


def parse_marker(text, line):
    options = {"backend": None, "env": [], "needs": []}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not value or key not in options:
            raise ValueError(
                f"README.md line {line}: unknown readme marker item "
                f"{item!r}; expected backend=NAME, env=NAME=VALUE or "
                "needs=MODULE."
            )
        if key == "backend":
            if value not in BACKENDS:
                raise ValueError(f"README.md line {line}: backend={value} "
                                 f"is not one of {BACKENDS}.")
            options["backend"] = value
        elif key == "env":
            name, sep, setting = value.partition("=")
            if not sep:
                raise ValueError(f"README.md line {line}: env={value} "
                                 "needs the form env=NAME=VALUE.")
            options["env"].append((name, setting))
        else:
            options["needs"].append(value)
    return options


def parse(text):
    """The python blocks, and every fence's language, of a Markdown text."""
    blocks, languages = [], []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        match = FENCE.match(lines[number])
        if not match:
            number += 1
            continue
        language = match.group(1).strip()
        languages.append((number + 1, language))
        end = number + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md line {number + 1}: the fence is "
                             "never closed.")
        if language == "python":
            marker = MARKER.match(lines[number - 1]) if number else None
            options = (parse_marker(marker.group(1), number) if marker
                       else {"backend": None, "env": [], "needs": []})
            blocks.append(Block(
                index=len(blocks), line=number + 1,
                code="\n".join(lines[number + 1:end]) + "\n",
                backend=options["backend"], env=tuple(options["env"]),
                needs=tuple(options["needs"]),
            ))
        number = end + 1
    return blocks, languages


with open(README, encoding="utf-8") as f:
    README_TEXT = f.read()
BLOCKS, LANGUAGES = parse(README_TEXT)
BACKEND = keras.backend.backend()


def groups():
    """The blocks of each subprocess: all shared-env blocks, then one each."""
    shared = [b for b in BLOCKS if not b.env]
    own = [[b] for b in BLOCKS if b.env]
    return [("shared", shared)] + [(f"block{g[0].index}", g) for g in own]


# Runs blocks in order; each in a fresh namespace and a fresh directory.
RUNNER = r"""
import json, os, sys, tempfile, traceback
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
top = tempfile.mkdtemp(prefix="readme-")
for block in blocks:
    folder = os.path.join(top, f"block{block['index']}")
    os.mkdir(folder)
    os.chdir(folder)
    name = f"README.md block {block['index']} (line {block['line']})"
    try:
        exec(compile(block["code"], name, "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc()
        print(f"\nFAILED {block['title']}")
        sys.exit(1)
    print(f"RAN {block['index']}", flush=True)
"""


def run_blocks(blocks, tmp_path):
    path = tmp_path / "blocks.json"
    path.write_text(json.dumps([
        {"index": b.index, "line": b.line, "code": b.code, "title": b.title}
        for b in blocks
    ]), encoding="utf-8")
    env = dict(os.environ, KERAS_BACKEND=BACKEND, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(
                   [ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]))
    for block in blocks:
        env.update(block.env)
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path)],
                          env=env, capture_output=True, text=True,
                          timeout=300)
    output, status = proc.stdout + proc.stderr, proc.returncode
    assert status == 0, (
        f"a README python block failed (KERAS_BACKEND={BACKEND}):\n"
        f"{output[-6000:]}"
    )
    ran = [int(s.split()[1]) for s in proc.stdout.splitlines()
           if s.startswith("RAN ")]
    assert ran == [b.index for b in blocks], output[-3000:]


@pytest.mark.parametrize("name, blocks", groups(),
                         ids=[name for name, _ in groups()])
def test_readme_python_blocks_run(name, blocks, tmp_path):
    here = [b for b in blocks if b.backend in (None, BACKEND)]
    elsewhere = [b for b in blocks if b not in here]
    missing = {b.index: [m for m in b.needs
                         if importlib.util.find_spec(m) is None]
               for b in here}
    runnable = [b for b in here if not missing[b.index]]
    if runnable:
        run_blocks(runnable, tmp_path)
    reasons = [f"{b.title}: runs in the KERAS_BACKEND={b.backend} run"
               for b in elsewhere]
    reasons += [f"{b.title}: needs {', '.join(missing[b.index])} "
                "(not installed)" for b in here if missing[b.index]]
    if reasons:
        pytest.skip(f"ran {len(runnable)} of {len(blocks)} blocks; not run "
                    "here: " + "; ".join(reasons))


def test_every_python_block_is_run():
    # Counted independently of `parse`: every opening ```python fence.
    fences = re.findall(r"^```python\s*$", README_TEXT, flags=re.MULTILINE)
    assert len(BLOCKS) == len(fences) > 0
    in_groups = sorted(b.index for _, group in groups() for b in group)
    assert in_groups == list(range(len(BLOCKS)))
    for block in BLOCKS:
        assert block.code.strip(), f"{block.title} is empty"


def test_fences_say_what_they_hold():
    # Runnable code is ```python (and so run above); commands ```sh,
    # outputs ```text: no unlabelled fence hides code from the test.
    wrong = [(line, lang) for line, lang in LANGUAGES
             if lang not in FENCE_LANGUAGES]
    assert not wrong, (f"fences must be one of {FENCE_LANGUAGES}; "
                       f"README.md (line, language): {wrong}")
    markers = [n + 1 for n, s in enumerate(README_TEXT.splitlines())
               if MARKER.match(s)]
    marked = [b.line - 1 for b in BLOCKS
              if b.backend or b.env or b.needs]
    assert markers == marked, (
        "every `<!-- readme: ... -->` marker must sit on the line just "
        f"before a ```python fence: marker lines {markers}, blocks "
        f"{marked}"
    )


def test_parse_reads_markers_and_refuses_unknown_ones():
    text = ("intro\n<!-- readme: backend=jax env=A=1 needs=gensim -->\n"
            "```python\nprint(1)\n```\n```sh\nls\n```\n```python\nx = 2\n"
            "```\n")
    blocks, languages = parse(text)
    assert [(b.line, b.backend, b.env, b.needs) for b in blocks] == [
        (3, "jax", (("A", "1"),), ("gensim",)), (9, None, (), ())]
    assert languages == [(3, "python"), (6, "sh"), (9, "python")]
    with pytest.raises(ValueError, match="unknown readme marker"):
        parse("<!-- readme: backend -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="backend=mlx"):
        parse("<!-- readme: backend=mlx -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        parse("```python\npass\n")
