"""The output-folder rule: a run's folder holds one run, recorded by its ``config.json``.

Every command and study that writes a folder calls :func:`prepare` once, after all of its
arguments are checked and just before the work starts:

* a missing or empty folder is created and gets ``config.json``;
* a folder whose ``config.json`` equals this run's configuration is *resumed*: finished
  results there (sweep cells, checkpoints) are kept and used;
* a folder holding another run (a different ``config.json``) is refused, unless
  ``overwrite=True``: then everything in it is removed first, so no stale file of the
  earlier run stays beside the new ``config.json``;
* a non-empty folder without ``config.json`` (not a sigprop run) is always refused:
  sigprop never deletes files it did not write.

Single results (``--save FILE``) are checked with :func:`check_file_target` before the
work, so a result is never computed only to be lost at the end.

Examples
--------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> prepare(out, {"seed": 0}).name
'run'
>>> prepare(out, {"seed": 0}) == out           # the same configuration: resumed
True
>>> prepare(out, {"seed": 1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: ...holds another run (config.json differs in seed: 0 -> 1); use --overwrite to replace it, or another folder
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ._io import atomic_write_text, dumps_json

#: The file that says which run a folder holds.
CONFIG_NAME = "config.json"


def _plain(config: dict) -> dict:
    """The configuration as it reads back from JSON (tuples become lists, nan becomes None)."""
    return json.loads(dumps_json(config))


def _differences(old: dict, new: dict, ignore) -> list[str]:
    keys = [k for k in list(new) + [k for k in old if k not in new] if k not in ignore]
    return [f"{k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in dict.fromkeys(keys)
            if old.get(k, "(absent)") != new.get(k, "(absent)")]


def read_config(out) -> dict | None:
    """The ``config.json`` of a folder as a dict, or None when it has none."""
    path = Path(out) / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not readable JSON ({exc}); choose another folder") from None
    if not isinstance(old, dict):
        raise ValueError(f"{path} is not a sigprop configuration; choose another folder")
    return old


def prepare(out, config: dict, overwrite: bool = False, ignore=("argv",), write_config=True) -> Path:
    """Make ``out`` ready for the run described by ``config`` (the rule in the module docstring).

    Parameters
    ----------
    out : str or Path
        The output folder.
    config : dict
        Plain JSON data that identifies the run; written as ``out/config.json``.
    overwrite : bool
        Replace a folder that holds another run (its files are removed).
    ignore : sequence of str
        Keys that may differ without making it another run (e.g. the command line as typed).
    write_config : bool
        Write ``config.json`` here (False when the caller writes its own form of the same data).

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    ValueError
        ``out`` is a file, holds another run (without ``overwrite``), or holds files that are
        not a sigprop run.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    new = _plain(config)
    if out.is_dir() and any(out.iterdir()):
        old = read_config(out)
        if old is None:
            raise ValueError(f"{out} is not empty and holds no {CONFIG_NAME} of a sigprop run; "
                             f"choose a new or empty folder")
        diff = _differences(old, new, ignore)
        if diff and not overwrite:
            raise ValueError(f"{out} holds another run ({CONFIG_NAME} differs in {'; '.join(diff[:3])}"
                             f"{'; ...' if len(diff) > 3 else ''}); use --overwrite to replace it, or another folder")
        if diff:
            for entry in out.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if write_config:
        atomic_write_text(out / CONFIG_NAME, dumps_json(config, indent=1) + "\n")
    return out


def check_file_target(path, suffixes=(".json", ".npz"), what="--save") -> Path:
    """Check, before any work, that a single result can be written to ``path``: a known suffix,
    not a folder, in an existing writable folder."""
    path = Path(path)
    if suffixes and path.suffix not in suffixes:
        raise ValueError(f"{what} must end in {' or '.join(suffixes)}, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; name a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{what} {path}: the folder {folder} does not exist")
    try:  # a real probe: permission bits do not tell (root, read-only mounts, /proc)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot write in {folder} ({exc.strerror or exc})") from None
    return path
