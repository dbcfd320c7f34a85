"""Atomic file writes: a result is either fully on disk or not at all."""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path


def _default_mode() -> int:
    """0o666 less the process umask: what open() would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


#: What reading a damaged or foreign file raises; :func:`read_checked` turns it into one line.
READ_ERRORS = (json.JSONDecodeError, UnicodeDecodeError, KeyError, OSError, EOFError, zipfile.BadZipFile)


def read_checked(path, what: str, readers: dict, errors: tuple = ()):
    """Read ``path`` with the reader for its suffix (``{".json": fn, ".npz": fn}``), turning a
    missing file, an unknown suffix or a damaged file into a one-line ``ValueError``.

    ``errors`` adds exception types to :data:`READ_ERRORS`; a ValueError the reader raises
    itself (its own message) passes through unless ValueError is listed there.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    reader = readers.get(path.suffix)
    if reader is None:
        raise ValueError(f"{what} loads {' or '.join(readers)}, got {path.name!r}")
    try:
        return reader(path)
    except READ_ERRORS + tuple(errors) as exc:
        raise ValueError(f"cannot read {what} from {path}: {exc}") from None
