"""Opening vector files: regular files only, decompression, progress.

Files are read as bytes in chunks of `CHUNK_SIZE`, so memory follows the
chunk and the rows kept, never the whole file.
"""

import bz2
import gzip
import lzma
import os
import stat
import sys
import time
import zlib

try:  # Python 3.14 and later
    from compression import zstd
except ImportError:
    zstd = None

from keras_embedlab.vectors._rules import CHUNK_SIZE, VectorFileError


class Progress:
    """A one-line text progress bar of bytes read, and the read rate."""

    def __init__(self, total, label, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()

    def update(self, done, force=False):
        now = time.perf_counter()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        bar = "=" * int(frac * 30)
        rate = done / max(now - self.start, 1e-9) / 1e6
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {done / 1e6:,.1f}/"
            f"{self.total / 1e6:,.1f} MB {rate:,.1f} MB/s"
        )
        self.stream.flush()

    def close(self, done):
        self.update(done, force=True)
        self.stream.write("\n")
        self.stream.flush()


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(name, mode):
    kind = next((k for is_kind, k in _FILE_KINDS if is_kind(mode)), "?")
    return VectorFileError(
        f"{name}: not a regular file ({kind}); vectors are read from "
        "regular files only. Save a stream to a file first."
    )


def _open_regular(path, name):
    """Opens a regular file for reading; refuses others before opening.

    (A FIFO would block in `open()` and a device like /dev/zero never
    ends.) O_NONBLOCK makes `open()` return at once should a FIFO replace
    the file after the check; `fstat` then refuses it.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular(name, mode)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | nonblock)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(name, mode)
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# bzip2: "BZh", the block size '1'-'9', then the magic of a block (pi) or
# of the end of the stream (sqrt(pi)), for an empty file.
_BZIP2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")


def sniff_compression(head):
    """The compression of a file starting with `head` (10 bytes) or None."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if (
        head.startswith(b"BZh")
        and head[3:4] in (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9")
        and head[4:10] in _BZIP2_BLOCKS
    ):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def _decompressor(kind, raw):
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    return zstd.ZstdFile(raw, "r")


_DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error) + (
    (zstd.ZstdError,) if zstd is not None else ()
)


class Source:
    """Reads a file's (decompressed) bytes, counting the offset reached.

    Only regular files are opened. gzip, bzip2, xz (and, on Python 3.14+,
    zstd) files are detected by their full signatures, not their names.
    Read errors of the decompressor become `VectorFileError`. Use it in a
    `with` statement: leaving it closes the file and the progress bar.
    """

    def __init__(self, path, name, chunk_size=CHUNK_SIZE):
        self.name = name
        self.chunk_size = chunk_size  # what `read()` reads by default
        self.raw = _open_regular(path, name)
        try:
            self.size = os.fstat(self.raw.fileno()).st_size
            self.compression = sniff_compression(self.raw.read(10))
            self.raw.seek(0)
            self.stream = self.raw
            if self.compression == "zstd" and zstd is None:
                raise VectorFileError(
                    f"{name}: the file is zstd-compressed, which Python "
                    f"{sys.version.split()[0]} cannot read; decompress it "
                    "first (`zstd -d`) or use Python 3.14 or later."
                )
            if self.compression is not None:
                self.stream = _decompressor(self.compression, self.raw)
        except BaseException:
            self.raw.close()
            raise
        self.offset = 0
        self.progress = None

    def read(self, size=None):
        if size is None:
            size = self.chunk_size
        try:
            data = self.stream.read(size)
        except _DECOMPRESSION_ERRORS as error:
            if self.compression is None:
                raise
            raise VectorFileError(
                f"{self.name}: the {self.compression} data is corrupt or "
                f"truncated after byte offset {self.offset} of the "
                f"uncompressed data ({error})."
            ) from None
        self.offset += len(data)
        if self.progress is not None:
            self.progress.update(self.raw.tell())
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self.progress is not None:
            self.progress.close(self.raw.tell())
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()
