"""Atomic file writes: a result is either fully on disk or not at all."""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


def _default_mode() -> int:
    """0o666 less the process umask: what open() would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
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


def atomic_write_npz(path, **arrays) -> Path:
    """``numpy.savez`` of ``arrays`` to ``path``, atomically (no pickles: load with
    ``allow_pickle=False``)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def from_fields(cls, d: dict):
    """``cls(**d)`` for a dataclass, with a one-line ValueError naming a key it has no field for
    (a foreign or newer file)."""
    from dataclasses import fields
    if not isinstance(d, dict):
        raise ValueError(f"a {cls.__name__} is a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {unknown[0]!r}")
    return cls(**d)


def finite_or_none(obj):
    """``obj`` as plain JSON data: numpy arrays and scalars become lists and Python numbers,
    and every float that is not finite (nan, inf, -inf) becomes ``None`` (JSON ``null``)."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):   # numpy array or scalar
        return finite_or_none(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_json(obj, **kwargs) -> str:
    """Strict JSON text (RFC 8259: no ``NaN`` or ``Infinity``): non-finite floats are written
    as ``null`` (see :func:`finite_or_none`); what they were is kept by the writer where it
    matters (e.g. :meth:`sigprop.spec.LayerStats.to_dict` records it under ``nonfinite``)."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


_NONFINITE_NAMES = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def nonfinite_marks(values) -> dict:
    """``{flat index: "inf" | "-inf" | "nan"}`` for the non-finite entries of an array (written
    beside the ``null`` that :func:`finite_or_none` leaves, so JSON round trips stay exact)."""
    a = np.asarray(values, dtype=float).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(a))
    return {str(i): ("nan" if np.isnan(a[i]) else "inf" if a[i] > 0 else "-inf") for i in bad}


def with_nonfinite(values, marks=None) -> np.ndarray:
    """Inverse of ``finite_or_none`` + :func:`nonfinite_marks`: a float array with ``null`` read as
    nan and the marked entries restored (files without marks read as before)."""
    a = np.array(values, dtype=float)   # null (None) reads as nan
    flat = a.reshape(-1)
    for i, name in (marks or {}).items():
        flat[int(i)] = _NONFINITE_NAMES[name]
    return flat.reshape(a.shape)


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
