"""Generated numba modules: kernels whose activation code sympy printed are written as real
files (so ``cache=True`` works) into one cache folder and imported once per process."""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from ._io import atomic_write_text

_LOADED: dict = {}


def cache_dir() -> Path:
    """Folder of the generated kernel modules (and numba's cache of them):
    ``$SIGPROP_CACHE_DIR`` or ``~/.cache/sigprop/kernels``."""
    root = os.environ.get("SIGPROP_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "sigprop" / "kernels"


def _write_module(name: str, source: str) -> Path:
    for folder in (cache_dir(), Path(tempfile.gettempdir()) / f"sigprop-kernels-{os.getuid()}"):
        path = folder / f"{name}.py"
        try:
            if path.is_file() and path.read_text() == source:
                return path
            return atomic_write_text(path, source)
        except OSError:
            continue
    raise OSError("cannot write the generated kernel module: set SIGPROP_CACHE_DIR to a writable folder")


def load_module(name: str, source: str):
    """Write ``source`` as module ``name`` in :func:`cache_dir` (unless it is there already) and
    import it; the same name returns the same module object for the life of the process."""
    if name in _LOADED:
        return _LOADED[name]
    path = _write_module(name, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _LOADED[name] = module
    return module
