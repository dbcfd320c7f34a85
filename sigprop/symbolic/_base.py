"""The return type of every derivation, and the one way a derived formula becomes numpy code."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
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
        ``sympy.lambdify(symbols, expr)``: the function numeric code calls
        (vectorised: numpy arrays in, arrays of the broadcast shape out).
    value : float or None
        The numeric value when the result is a constant (a gain, ln V).
    steps : tuple of (str, sympy object or None)
        Intermediate results for the rendered derivation document: a sentence
        and the formula it introduces (None for prose only).
    note : str
        How the result was obtained when that is not visible in ``steps``
        (e.g. "numeric: adaptive quadrature, relative error < 1e-13").
    """

    name: str
    expr: object
    symbols: tuple = ()
    numeric: Callable | None = None
    value: float | None = None
    steps: tuple = field(default_factory=tuple)
    note: str = ""


def numeric_function(symbols, expr, modules=("scipy", "numpy")) -> Callable:
    """``lambdify(symbols, expr)`` made safe for numeric code.

    The result broadcasts its arguments (a constant formula such as ReLU's
    ``E[phi'^2] = 1/2`` still returns an array of the arguments' shape),
    returns float64, and silences numpy's overflow warnings (an exploding
    regime is a result: ``inf`` is returned, not raised).

    Examples
    --------
    >>> import sympy as sp
    >>> q = sp.Symbol("q")
    >>> f = numeric_function((q,), sp.Rational(1, 2))
    >>> f([1.0, 2.0, 3.0]).tolist()
    [0.5, 0.5, 0.5]
    """
    symbols = tuple(symbols)
    f = sp.lambdify(symbols, expr, list(modules))

    def call(*args):
        if len(args) != len(symbols):
            raise TypeError(f"expected {len(symbols)} arguments {tuple(map(str, symbols))}, got {len(args)}")
        arrays = [np.asarray(a, dtype=float) for a in args]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            out = np.asarray(f(*arrays), dtype=float)
        if out.shape != shape:
            out = np.broadcast_to(out, shape).copy()
        return out[()] if out.ndim == 0 else out

    call.__doc__ = f"{sp.sstr(expr)} as a function of {', '.join(map(str, symbols))}"
    call.__name__ = "numeric"
    return call
