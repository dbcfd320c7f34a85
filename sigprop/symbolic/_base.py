"""The return type of every derivation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import sympy as sp


@dataclass(frozen=True)
class Derivation:
    """A derived result.

    Attributes
    ----------
    name : str
        Short identifier, e.g. ``"forward_variance"``.
    expr : sympy.Expr or sympy.Eq
        The derived formula (or value).
    symbols : tuple of sympy.Symbol
        Argument order of :attr:`numeric`.
    numeric : callable or None
        ``sympy.lambdify(symbols, expr)``: the function numeric code calls.
    value : float or None
        The numeric value when the result is a constant (a gain, ln V).
    steps : tuple of (str, sympy object)
        Intermediate results for the rendered derivation document.
    """

    name: str
    expr: object
    symbols: tuple = ()
    numeric: Callable | None = None
    value: float | None = None
    steps: tuple = field(default_factory=tuple)
    note: str = ""
