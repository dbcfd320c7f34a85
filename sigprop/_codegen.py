"""Generated numba modules: kernels whose activation code sympy printed are written as real
files (so ``cache=True`` works) into one cache folder and imported once per process."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
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


def fallback_dir() -> Path:
    """The private folder used when :func:`cache_dir` is not writable:
    ``<tmp>/sigprop-kernels-<uid>``, created with mode 0700 (see :func:`_private_folder`)."""
    return Path(tempfile.gettempdir()) / f"sigprop-kernels-{os.getuid()}"


def _private_folder(folder: Path) -> Path:
    """Create ``folder`` with mode 0700, or accept it if it exists, is a real folder, belongs
    to this user and nobody else may write to it: the modules there are executed, so a shared
    temporary folder prepared by someone else must not be used."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"refusing the kernel cache {folder}: it must be a folder owned by this user and "
                              f"writable by nobody else (mode 0700); remove it or set SIGPROP_CACHE_DIR")
    return folder


def _write_module(name: str, source: str) -> Path:
    errors = []
    for folder, private in ((cache_dir(), False), (fallback_dir(), True)):
        path = folder / f"{name}.py"
        try:
            if private:
                _private_folder(folder)
            if path.is_file() and path.read_text() == source:
                return path
            return atomic_write_text(path, source)
        except OSError as exc:
            errors.append(str(exc))
            continue
    raise OSError(f"cannot write the generated kernel module ({'; '.join(errors)}): "
                  "set SIGPROP_CACHE_DIR to a writable folder")


def load_generated(prefix: str, source: str, *depends_on):
    """Import generated ``source`` as module ``<prefix>_<digest>``. The digest hashes the source,
    the files it depends on (``depends_on``: paths whose numba functions it calls), ``_jit.py``
    and the numba version, so a change in any of them makes a new module (numba's own cache
    does not see changes in callees)."""
    import numba
    deps = "".join(Path(p).read_text() for p in depends_on + (Path(__file__).parent / "_jit.py",))
    digest = hashlib.sha1((source + deps + numba.__version__).encode()).hexdigest()[:16]
    return load_module(f"{prefix}_{digest}", source)


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
