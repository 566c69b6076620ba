"""The `bench` command's flags, parsed without importing Keras.

`python -m keras_embedlab bench --help` (and a bad flag) answer at once:
Keras and its backend are imported only once the flags are known to be good.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any, Sequence

MODES = ("forward", "backward", "sgd", "adam")
# What each mode times, for tables and chart titles.
MODE_TITLES = {
    "forward": "forward",
    "backward": "forward + backward",
    "sgd": "forward + backward + SGD step",
    "adam": "forward + backward + Adam step",
}
GATHER = "gather"
KERAS = "keras.layers.Embedding"
CONTENDERS = (GATHER, KERAS, "LookupEmbedding", "LookupEmbedding[zeros]",
              "OneHotDense")
# Defaults of the full run and of `--quick`; an explicit flag wins over both.
FULL = {"sizes": "100,1000,10000,100000,1000000", "ids": 4096, "dim": 64,
        "repeats": 7}
QUICK = {"sizes": "100,1000,10000", "ids": 512, "dim": 16, "repeats": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", help="comma-separated vocabulary sizes "
                        f"(default {FULL['sizes']}; --quick {QUICK['sizes']})")
    parser.add_argument("--ids", type=int, help="ids per batch (default "
                        f"{FULL['ids']}; --quick {QUICK['ids']})")
    parser.add_argument("--dim", type=int, help="embedding dimension "
                        f"(default {FULL['dim']}; --quick {QUICK['dim']})")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated subset of {', '.join(MODES)} "
                        "(backward is forward + backward)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated subset of the contenders")
    parser.add_argument("--repeats", type=int,
                        help="timed rounds per point; in each round every "
                        "contender runs a few calls in turn, and its time "
                        "is the median of all its calls (default "
                        f"{FULL['repeats']}; --quick {QUICK['repeats']}); "
                        "more rounds on a busy machine")
    parser.add_argument("--memory-budget", type=float, default=2.0,
                        help="GiB a contender's one-hot tensor may use; "
                        "larger ones are skipped (default 2)")
    parser.add_argument("--out", default=".", help="folder for CSV and PNG")
    parser.add_argument("--quick", action="store_true",
                        help="smaller defaults, for a smoke test: about "
                        "half a minute with all four modes (23-34 s per "
                        "backend measured on a busy 2-core CPU, start-up "
                        "and chart included; one mode about 15 s); "
                        "explicit flags still apply")


def _choices(text: str, allowed: Sequence[str], flag: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        sys.exit(f"{flag}: unknown {bad or text!r}; choose from "
                 f"{', '.join(allowed)}")
    return items


def _check_writable(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        sys.exit(f"--out: cannot write to {folder!r} ({error.strerror}); "
                 "choose a folder you can write to")


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Validated settings from parsed flags (exits with a message if bad)."""
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        sizes = [int(s) for s in str(args.sizes).split(",")]
    except ValueError:
        sys.exit(f"--sizes: expected comma-separated integers, got "
                 f"{args.sizes!r}")
    if min(sizes) < 1 or args.ids < 1 or args.dim < 1 or args.repeats < 1:
        sys.exit("--sizes, --ids, --dim and --repeats must be positive")
    try:
        import matplotlib  # noqa: F401  (checked now, used after timing)
    except ImportError:
        sys.exit("bench draws its chart with matplotlib: pip install "
                 "matplotlib (or the package's `bench` extra)")
    _check_writable(args.out)
    return {
        "sizes": sizes, "n_ids": args.ids, "dim": args.dim,
        "modes": _choices(args.modes, MODES, "--modes"),
        "contenders": _choices(args.contenders, CONTENDERS, "--contenders"),
        "repeats": args.repeats, "budget": args.memory_budget * 2**30,
        "out_dir": args.out,
    }
