"""`Rows`: a chunk of rows as a reader hands it to `load_vectors`.

Tokens come at once, values only for the rows kept.
"""

from keras_embedlab.vectors._rules import VectorFileError

NONFINITE_FIX = (
    "A NaN or infinite value would make statistics over the vectors (such "
    "as the rows made for out-of-vocabulary tokens) NaN. Fix the file, or "
    "pass nonfinite='skip' to leave out such rows or nonfinite='keep' to "
    "load them as they are."
)


class Rows:
    """A chunk of rows: `tokens` (bytes) and their values on demand.

    `values(select)` parses only the selected rows, so rows that a
    vocabulary filters out never have their values built.
    """

    def __init__(self, name, dim, tokens):
        self.name = name
        self.dim = dim
        self.tokens = tokens

    def where(self, i):
        raise NotImplementedError

    def nonfinite_error(self, select, row, col, value):
        """The error for value `col` of row `select[row]`, not finite."""
        raise NotImplementedError

    def decode(self, encoding, errors):
        blob = b"\n".join(self.tokens)
        try:
            words = blob.decode(encoding, errors).split("\n")
            if len(words) == len(self.tokens):
                return words
        except UnicodeDecodeError:
            pass
        words = []
        for i, token in enumerate(self.tokens):
            try:
                words.append(token.decode(encoding, errors))
            except UnicodeDecodeError as e:
                raise VectorFileError(
                    f"{self.name}: {self.where(i)}: the token {token!r} is "
                    f"not valid {encoding} (byte {e.start} of the token: "
                    f"{e.reason}). Pass unicode_errors='replace' or 'ignore' "
                    "to load it anyway."
                ) from None
        return words
