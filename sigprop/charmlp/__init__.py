"""A character-level MLP (makemore part 3) trained with hand-written numba gradients.

>>> from sigprop.charmlp import TrainConfig
>>> TrainConfig(layers=5, width=200).widths
(200, 200, 200, 200, 200)
"""
from .data import build_dataset, build_vocab, load_words, split_words
from .diagnostics import Diagnostics
from .model import Model, Params
from .train import (TrainConfig, TrainResult, evaluate, initial_params, load_checkpoint, logits, resume, sample,
                    step0_spec, train)

__all__ = ["Diagnostics", "Model", "Params", "TrainConfig", "TrainResult", "build_dataset", "build_vocab",
           "evaluate", "initial_params", "load_checkpoint", "load_words", "logits", "resume", "sample",
           "split_words", "step0_spec", "train"]
