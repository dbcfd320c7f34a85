"""Activation functions, each defined once as a sympy expression.

Everything else an activation carries is derived from that expression:

* ``phi`` / ``dphi``: numpy functions (sympy ``lambdify`` of the expression and
  of its derivative);
* ``numba_source()``: Python source of scalar ``phi(x)`` / ``dphi(x)`` written by
  sympy's code printer, which the Monte Carlo engine and the character MLP
  compile with numba;
* ``dead_intervals``: where ``phi' = 0`` (read off the piecewise derivative);
* ``saturation_cutoffs(threshold)``: the pre-activations beyond which ``phi``
  sits within ``(1 - threshold)`` of its bounds (``|tanh| > 0.97`` by default);
* ``gain``: the variance-preserving gain ``1 / sqrt(E[phi(z)^2])``, derived in
  :mod:`sigprop.symbolic.gains`; ``init_gain``: the gain Kaiming init uses
  (PyTorch's convention where it defines one, e.g. 5/3 for tanh).

Parameters of an activation (leaky ReLU's slope ``a``, SELU's ``lambda`` and
``alpha``) stay sympy symbols in the expression and are bound as float64
arguments, so no digit is lost to printing.

Examples
--------
>>> from sigprop.activations import get_activation
>>> act = get_activation("leaky_relu(a=0.2)")
>>> float(act.phi(-1.0)), float(act.dphi(-1.0))
(-0.2, 0.2)
>>> get_activation("relu").dead_intervals
((-inf, 0.0),)
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ._naming import call_name, format_call, parse_call

#: The pre-activation symbol every activation expression is written in.
x = sp.Symbol("x", real=True)

#: Default saturation threshold: ``|tanh(h)| > 0.97`` as in the makemore lecture.
DEFAULT_SATURATION_THRESHOLD = 0.97


@dataclass(frozen=True)
class _Family:
    """A named activation family: builds the expression from its parameter symbols."""

    name: str
    build: Callable[..., sp.Expr]          # (**param_symbols) -> expr in x
    defaults: dict                          # parameter -> default value, or a zero-arg callable
    bounds: tuple | None = None             # range of phi (for saturation), None if unbounded
    conventional_gain: Callable | None = None  # (**param_values) -> PyTorch calculate_gain value
    description: str = ""
    positional: tuple = ()


_FAMILIES: dict[str, _Family] = {}
_ALIASES: dict[str, str] = {}


def _family(name, build, defaults=None, bounds=None, conventional_gain=None, description="", aliases=()):
    fam = _Family(name, build, dict(defaults or {}), bounds, conventional_gain, description,
                  tuple((defaults or {}).keys()))
    _FAMILIES[name] = fam
    for alias in aliases:
        _ALIASES[alias] = name
    return fam


def _selu_default(which):
    def value():
        from .symbolic.gains import selu_constants
        return float(selu_constants()[which])
    return value


_family("linear", lambda: x, description="identity", aliases=("identity",),
        conventional_gain=lambda: 1.0)
_family("relu", lambda: sp.Piecewise((0, x <= 0), (x, True)), description="max(0, x)")
_family("leaky_relu", lambda a: sp.Piecewise((a * x, x <= 0), (x, True)), defaults={"a": 0.01},
        description="x for x > 0, a x otherwise")
_family("tanh", lambda: sp.tanh(x), bounds=(-1.0, 1.0), conventional_gain=lambda: 5.0 / 3.0,
        description="hyperbolic tangent")
# 1/(1 + e^-x) written as (1 + tanh(x/2))/2: the same function, whose derivative has no inf/inf.
_family("sigmoid", lambda: (1 + sp.tanh(x / 2)) / 2, bounds=(0.0, 1.0), conventional_gain=lambda: 1.0,
        description="logistic 1/(1+exp(-x))")
_family("erf", lambda: sp.erf(x), bounds=(-1.0, 1.0), description="error function")
_family("gelu", lambda: x * (1 + sp.erf(x / sp.sqrt(2))) / 2, description="x Phi(x) (exact GELU)")
# GPT-2's GELU: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh approximation of x Phi(x).
_family("gelu_tanh", lambda: x * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 1000000) * x**3))) / 2,
        description="GELU, tanh approximation (GPT-2)")
_family("selu",
        lambda lam, alpha: lam * sp.Piecewise((alpha * (sp.exp(x) - 1), x <= 0), (x, True)),
        defaults={"lam": _selu_default("lambda"), "alpha": _selu_default("alpha")},
        conventional_gain=lambda lam, alpha: 0.75,
        description="scaled ELU; lambda, alpha derived from its fixed point (sigprop.symbolic.gains)")
# log(1 + e^x) written as log(1 + e^{-|x|}) + max(x, 0): the same function, without overflow.
_family("softplus", lambda: sp.log(1 + sp.exp(-sp.Abs(x))) + sp.Max(x, 0), description="log(1 + exp(x))")
_family("swish", lambda: x * (1 + sp.tanh(x / 2)) / 2, description="x sigmoid(x)", aliases=("silu",))


class _FullPrecisionPrinter(PythonCodePrinter):
    """Python code printer that keeps every digit of a float."""

    def _print_Float(self, expr):
        return repr(float(expr))


def _intervals_of(s: sp.Set) -> tuple:
    """A union of real intervals (or points) as sorted float pairs; points are dropped (measure zero)."""
    out = []
    parts = s.args if isinstance(s, sp.Union) else (s,)
    for p in parts:
        if isinstance(p, sp.Interval) and p.measure != 0:
            out.append((float(p.start), float(p.end)))
    return tuple(sorted(out))


class Activation:
    """One activation function and everything derived from its sympy expression.

    Build through :func:`get_activation` (``"tanh"``, ``"leaky_relu(a=0.2)"``) or
    :func:`register_activation` for a user expression.

    Attributes
    ----------
    name : str
        Canonical name including parameters, e.g. ``"leaky_relu(a=0.2)"``.
    expr : sympy.Expr
        ``phi(x)`` with the parameters substituted.
    derivative : sympy.Expr
        ``phi'(x)``.
    bounds : tuple or None
        Range ``(lo, hi)`` of ``phi`` for saturation; None if unbounded.
    """

    def __init__(self, family: str, expr_symbolic: sp.Expr, params: dict, bounds=None,
                 conventional_gain: float | None = None, description: str = "", builtin: bool = True,
                 defaults: dict | None = None):
        self.family = family
        self.params = dict(params)
        self.name = format_call(family, {k: v for k, v in self.params.items()
                                         if defaults is None or defaults.get(k) != v})
        self.param_symbols = tuple(sp.Symbol(k, real=True) for k in sorted(self.params))
        self.param_values = tuple(float(self.params[k]) for k in sorted(self.params))
        self.expr_symbolic = expr_symbolic
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.conventional_gain = conventional_gain
        self.description = description
        self.builtin = builtin

    def __repr__(self):
        return f"Activation({self.name!r})"

    def __eq__(self, other):
        return isinstance(other, Activation) and other.name == self.name and \
            sp.srepr(other.expr_symbolic) == sp.srepr(self.expr_symbolic)

    def __hash__(self):
        return hash(self.name)

    # --- symbolic -------------------------------------------------------------------------
    @functools.cached_property
    def expr(self) -> sp.Expr:
        """``phi(x)`` with parameter values substituted (exact rationals where they are exact)."""
        subs = {s: sp.nsimplify(v) if float(v).is_integer() else sp.Float(v, 17)
                for s, v in zip(self.param_symbols, self.param_values)}
        return self.expr_symbolic.subs(subs)

    @functools.cached_property
    def derivative_symbolic(self) -> sp.Expr:
        """``phi'(x)`` with the parameters left as symbols, piecewise where phi is."""
        d = sp.diff(self.expr_symbolic, x)
        if d.has(sp.Heaviside, sp.sign, sp.Abs, sp.Max, sp.Min, sp.DiracDelta):
            d = sp.piecewise_fold(d.rewrite(sp.Piecewise))
        return d

    @functools.cached_property
    def derivative(self) -> sp.Expr:
        return self.derivative_symbolic.subs(dict(zip(self.param_symbols, self.param_values)))

    # --- numeric (numpy) ------------------------------------------------------------------
    def _lambdify(self, e):
        f = sp.lambdify((x,) + self.param_symbols, e, ["scipy", "numpy"])
        values = self.param_values

        def g(h):
            with np.errstate(all="ignore"):
                out = np.asarray(f(np.asarray(h, dtype=float), *values), dtype=float)
            return out if out.shape == np.shape(h) else np.broadcast_to(out, np.shape(h)).copy()
        return g

    @functools.cached_property
    def phi(self) -> Callable[[np.ndarray], np.ndarray]:
        """numpy ``phi(h)`` (vectorised)."""
        return self._lambdify(self.expr_symbolic)

    @functools.cached_property
    def dphi(self) -> Callable[[np.ndarray], np.ndarray]:
        """numpy ``phi'(h)`` (vectorised)."""
        return self._lambdify(self.derivative_symbolic)

    # --- derived properties ---------------------------------------------------------------
    @functools.cached_property
    def dead_intervals(self) -> tuple:
        """Intervals of ``h`` where ``phi'(h) = 0`` (e.g. ``((-inf, 0.0),)`` for ReLU)."""
        d = sp.piecewise_fold(self.derivative.rewrite(sp.Piecewise))
        if not isinstance(d, sp.Piecewise):
            return () if d != 0 else ((-math.inf, math.inf),)
        dead = sp.S.EmptySet
        covered = sp.S.EmptySet
        for piece, cond in d.args:
            region = cond.as_set().intersect(sp.S.Reals) - covered
            covered = covered | region
            if sp.simplify(piece) == 0:
                dead = dead | region
        return _intervals_of(dead)

    def saturation_cutoffs(self, threshold: float = DEFAULT_SATURATION_THRESHOLD) -> tuple[float, float] | None:
        """Pre-activations ``(h_lo, h_hi)`` outside of which ``phi`` is saturated.

        Saturated means ``phi`` lies within ``(1 - threshold) * (hi - lo) / 2`` of a
        bound, i.e. ``|tanh(h)| > threshold`` for tanh. Returns None for an
        unbounded activation. Assumes ``phi`` is increasing (true of every
        bounded built-in).
        """
        if self.bounds is None:
            return None
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"saturation threshold must be in (0, 1), got {threshold}")
        lo, hi = self.bounds
        delta = (1.0 - threshold) * (hi - lo) / 2.0
        return _inverse(self.phi, lo + delta), _inverse(self.phi, hi - delta)

    @functools.cached_property
    def gain(self) -> float:
        """Variance-preserving gain ``1/sqrt(E[phi(z)^2])``, ``z ~ N(0, 1)`` (derived)."""
        from .symbolic.gains import variance_preserving_gain
        return float(variance_preserving_gain(self).value)

    @property
    def init_gain(self) -> float:
        """The gain Kaiming init multiplies by: PyTorch's ``calculate_gain`` where it has a
        convention for this activation (tanh 5/3, selu 3/4), else the derived :attr:`gain`."""
        return float(self.conventional_gain) if self.conventional_gain is not None else self.gain

    @functools.cached_property
    def key(self) -> str:
        """A short stable identifier of the expression (for generated-code file names)."""
        text = sp.srepr(self.expr_symbolic) + repr(self.param_values)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def numeric_exprs(self) -> tuple:
        """``(phi, phi')`` as sympy expressions in ``x`` with the parameters substituted as
        17-digit floats: what every code generator prints (:meth:`numba_source`,
        :meth:`numba_source_fused`; the engine's kernels)."""
        subs = {s: sp.Float(v, 17) for s, v in zip(self.param_symbols, self.param_values)}
        return self.expr_symbolic.subs(subs), self.derivative_symbolic.subs(subs)

    def numba_source(self, phi_name: str = "phi", dphi_name: str = "dphi") -> str:
        """Python source of scalar ``phi(x)`` and ``dphi(x)`` using only :mod:`math`,
        written by sympy's printer from the expression (numba compiles it)."""
        printer = _FullPrecisionPrinter({"fully_qualified_modules": True})
        body_phi, body_dphi = (printer.doprint(e) for e in self.numeric_exprs())
        return (f"# generated by sigprop from the sympy expression of {self.name}\n"
                f"# phi(x) = {sp.sstr(self.expr)}\n"
                f"def {phi_name}(x):\n    return {body_phi}\n\n\n"
                f"def {dphi_name}(x):\n    return {body_dphi}\n")

    def numba_source_fused(self, name: str = "phi_dphi", decorator: str = "") -> str:
        """Python source of scalar ``name(x) -> (phi(x), dphi(x))`` with the subexpressions the
        two share computed once (sympy ``cse``): ``tanh`` is evaluated once, not twice.
        ``decorator`` (e.g. ``"@numba.njit(**JIT)"``) is written above the ``def``.

        Examples
        --------
        >>> print(get_activation("tanh").numba_source_fused().splitlines()[-3:])
        ['def phi_dphi(x):', '    x0 = math.tanh(x)', '    return x0, 1 - x0**2']
        """
        printer = _FullPrecisionPrinter({"fully_qualified_modules": True})
        shared, (e_phi, e_dphi) = sp.cse(list(self.numeric_exprs()), symbols=sp.numbered_symbols("x", real=True))
        lines = [f"    {printer.doprint(s)} = {printer.doprint(e)}" for s, e in shared]
        return (f"# generated by sigprop from the sympy expression of {self.name}\n"
                + (decorator + "\n" if decorator else "") + f"def {name}(x):\n" + "".join(line + "\n" for line in lines)
                + f"    return {printer.doprint(e_phi)}, {printer.doprint(e_dphi)}\n")


def _inverse(f, y: float) -> float:
    """Solve ``f(h) = y`` for increasing ``f`` by bracketing and bisection (brentq)."""
    from scipy.optimize import brentq
    g = lambda h: float(f(h)) - y  # noqa: E731
    lo, hi = -1.0, 1.0
    while g(lo) > 0:
        lo *= 2.0
        if lo < -1e6:
            raise ValueError(f"phi never reaches {y} from above")
    while g(hi) < 0:
        hi *= 2.0
        if hi > 1e6:
            raise ValueError(f"phi never reaches {y}")
    return brentq(g, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)


_USER: dict[str, Activation] = {}


@functools.lru_cache(maxsize=None)
def _builtin(family: str, params: tuple) -> Activation:
    fam = _FAMILIES[family]
    values = dict(params)
    symbols = {k: sp.Symbol(k, real=True) for k in values}
    expr = fam.build(**symbols)
    gain = fam.conventional_gain(**values) if fam.conventional_gain else None
    defaults = {k: float(d() if callable(d) else d) for k, d in fam.defaults.items()}
    return Activation(family, expr, values, fam.bounds, gain, fam.description, builtin=True, defaults=defaults)


def get_activation(spec) -> Activation:
    """Resolve ``"tanh"``, ``"leaky_relu(a=0.2)"``, ``"leaky_relu(0.2)"`` or an :class:`Activation`.

    Raises
    ------
    ValueError
        With the list of known names when the name is unknown or a parameter is wrong.
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a name such as 'tanh', got {spec!r}")
    name = call_name(spec)
    if name in _USER:
        if spec.strip() != name:
            raise ValueError(f"registered activation {name!r} takes no parameters, got {spec!r}")
        return _USER[name]
    family = _ALIASES.get(name, name)
    if family not in _FAMILIES:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(available_activations())}")
    fam = _FAMILIES[family]
    _, kwargs = parse_call(spec, positional=fam.positional)
    unknown = set(kwargs) - set(fam.defaults)
    if unknown:
        allowed = ", ".join(fam.defaults) or "none"
        raise ValueError(f"activation {family!r} has no parameter {sorted(unknown)[0]!r} (parameters: {allowed})")
    values = {}
    for k, default in fam.defaults.items():
        v = kwargs.get(k, default() if callable(default) else default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"activation {family!r}: parameter {k} must be a finite number, got {v!r}")
        values[k] = float(v)
    return _builtin(family, tuple(sorted(values.items())))


def register_activation(name: str, expr, bounds=None, conventional_gain=None, description="") -> Activation:
    """Register a user activation from a sympy expression in one variable.

    Parameters
    ----------
    name : str
        A new name (letters, digits, underscore).
    expr : sympy.Expr or str
        ``phi`` as a sympy expression (or a string sympy can parse) in one free symbol.
    bounds : (float, float), optional
        The range of ``phi`` if it is bounded and increasing (enables saturated fractions).

    Examples
    --------
    >>> import sympy as sp
    >>> from sigprop.activations import register_activation, x
    >>> act = register_activation("softsign", x / (1 + sp.Abs(x)), bounds=(-1, 1))
    >>> round(float(act.phi(1.0)), 3)
    0.5
    """
    import re
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"activation name must be an identifier, got {name!r}")
    if name in _FAMILIES or name in _ALIASES:
        raise ValueError(f"{name!r} is a built-in activation; choose another name")
    if isinstance(expr, str):
        try:
            expr = sp.sympify(expr, locals={"x": x})
        except (sp.SympifyError, SyntaxError, TypeError) as exc:
            raise ValueError(f"cannot parse activation expression {expr!r}") from exc
    expr = sp.sympify(expr)
    free = expr.free_symbols
    if len(free) > 1:
        raise ValueError(f"activation expression must have one free symbol, got {sorted(map(str, free))}")
    if free:
        expr = expr.subs(next(iter(free)), x)
    probe = sp.lambdify(x, expr, ["scipy", "numpy"])
    with np.errstate(all="ignore"):
        vals = np.asarray(probe(np.linspace(-3, 3, 7)), dtype=float)
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"activation {name!r} is not finite on [-3, 3]: {sp.sstr(expr)}")
    act = Activation(name, expr, {}, bounds, conventional_gain, description, builtin=False)
    existing = _USER.get(name)
    if existing is not None and existing != act:
        raise ValueError(f"activation {name!r} is already registered with another expression")
    _USER[name] = act
    return act


def available_activations() -> list[str]:
    """Names of the built-in and registered activations."""
    return sorted(_FAMILIES) + sorted(_ALIASES) + sorted(_USER)
