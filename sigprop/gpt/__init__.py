"""A GPT-2-style transformer trained with hand-written numba gradients: its text corpus.

>>> from sigprop.gpt import load_corpus
>>> len(load_corpus().vocab)
63
"""
from .data import Corpus, batch_starts, get_batch, load_corpus, load_text, unigram_loss

__all__ = ["Corpus", "batch_starts", "get_batch", "load_corpus", "load_text", "unigram_loss"]
