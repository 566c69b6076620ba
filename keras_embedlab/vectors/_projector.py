"""Files for TensorBoard's embedding projector: `tensors.tsv`,
`metadata.tsv` and `projector_config.pbtxt`, written with NumPy alone.

The projector plugin reads `projector_config.pbtxt` in a log directory (a
`ProjectorConfig` protocol buffer in text format), resolves each
embedding's `tensor_path` and `metadata_path` relative to it (refusing
paths that leave it), parses the tensor file as lines of tab-separated
floats, and treats the first metadata line as a header when it holds a
tab. No TensorFlow checkpoint is needed.
"""

import os
from collections.abc import Mapping, Sequence

import numpy as np

TENSORS_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"
CONFIG_FILE = "projector_config.pbtxt"  # The name the plugin looks for.
# 9 significant digits write every float32 so that it reads back exact.
FLOAT_FORMAT = "%.9g"
ROWS_PER_WRITE = 4096


def _cell(value) -> str:
    """A metadata cell on one line: tabs and line breaks written as `\\t`,
    `\\n`, `\\r` (the projector splits cells on them)."""
    text = str(value)
    return (text.replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def _columns(metadata, words):
    """`(header or None, rows of cells)` from `to_projector`'s argument."""
    if metadata is None:
        return None, [[word] for word in words]
    if isinstance(metadata, Mapping):
        names = list(metadata)
        if not names:
            raise ValueError("`metadata` must name at least one column. "
                             "Received: metadata={}.")
        columns = [list(metadata[name]) for name in names]
    elif isinstance(metadata, Sequence) and not isinstance(metadata, str):
        names, columns = None, [list(metadata)]
    else:
        raise ValueError(
            "`metadata` must be None (the words), a sequence of labels (one "
            "per word) or a dict of column name to such a sequence. "
            f"Received: metadata of type {type(metadata).__name__}.")
    for i, column in enumerate(columns):
        if len(column) != len(words):
            which = f"column {names[i]!r}" if names else "`metadata`"
            raise ValueError(
                f"{which} must hold one label per word ({len(words)}). "
                f"Received: {len(column)} labels.")
    if names is not None and len(names) == 1:
        names = None  # One column: the projector reads it without header.
    rows = [list(cells) for cells in zip(*columns)]
    return names, rows


def _open(path):
    """Opens `path` for writing without following a link planted there,
    so nothing is written outside the folder."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(
        os, "O_NOFOLLOW", 0)
    return open(os.open(path, flags, 0o644), "w", encoding="utf-8",
                newline="\n")


def to_projector(vectors, folder, metadata=None, tensor_name="embedding"):
    if not isinstance(tensor_name, str) or not tensor_name or any(
            c in tensor_name for c in '"\\\n\r'):
        raise ValueError(
            "`tensor_name` must be a non-empty string without quotes, "
            f"backslashes or line breaks. Received: tensor_name="
            f"{tensor_name!r}.")
    matrix = vectors.matrix
    if not len(vectors):
        raise ValueError("Cannot write 0 vectors for the projector: it "
                         "needs at least one row.")
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if bad.size:
        raise ValueError(
            f"The vector of {vectors.words[bad[0]]!r} (row {bad[0]}) holds a "
            f"NaN or infinite value ({bad.size} row(s) do): the projector "
            "cannot place it. Drop or fix those rows first.")
    header, rows = _columns(metadata, vectors.words)
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    with _open(os.path.join(folder, TENSORS_FILE)) as f:
        for start in range(0, len(matrix), ROWS_PER_WRITE):
            np.savetxt(f, matrix[start:start + ROWS_PER_WRITE],
                       fmt=FLOAT_FORMAT, delimiter="\t")
    with _open(os.path.join(folder, METADATA_FILE)) as f:
        if header is not None:
            f.write("\t".join(_cell(name) for name in header) + "\n")
        for cells in rows:
            f.write("\t".join(_cell(cell) for cell in cells) + "\n")
    with _open(os.path.join(folder, CONFIG_FILE)) as f:
        f.write("embeddings {\n"
                f'  tensor_name: "{tensor_name}"\n'
                f'  tensor_path: "{TENSORS_FILE}"\n'
                f'  metadata_path: "{METADATA_FILE}"\n'
                "}\n")
    return os.path.join(folder, CONFIG_FILE)
