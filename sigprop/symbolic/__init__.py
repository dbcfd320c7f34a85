"""sympy derivations. Each function returns a :class:`Derivation`: the sympy objects and
a lambdified numeric callable that the numeric theory uses (so no formula is typed twice).

Modules (imported on use; sympy work is cached per process):

* :mod:`~sigprop.symbolic.recursions` forward/backward variance, covariance map, chi_1,
  Xavier compromise, He fan_in/fan_out, ReLU depth scaling
* :mod:`~sigprop.symbolic.kernels` closed-form Gaussian moments and kernels (arc-cosine, arcsine)
* :mod:`~sigprop.symbolic.gains` variance-preserving gains, SELU constants
* :mod:`~sigprop.symbolic.tanh` tanh series, E[tanh(z)^2], fixed point of gain 5/3
* :mod:`~sigprop.symbolic.crossentropy` expected initial cross-entropy
* :mod:`~sigprop.symbolic.render` the documents written by ``sigprop derive``
"""
from ._base import Derivation, numeric_function

__all__ = ["Derivation", "numeric_function"]
