"""Gains: the weight scale that keeps the forward variance fixed (placeholder, being derived in full)."""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ._base import Derivation

z = sp.Symbol("z", real=True)


def _gauss_expectation(f):
    """E[f(z)], z ~ N(0,1), as a sympy integral."""
    return sp.Integral(f * sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi), (z, -sp.oo, sp.oo))


@functools.lru_cache(maxsize=None)
def selu_constants() -> dict:
    """SELU's lambda and alpha from its fixed point: E[selu(z)] = 0 and E[selu(z)^2] = 1."""
    lam, alpha = sp.symbols("lambda alpha", positive=True)
    neg = sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi)
    mean = lam * (alpha * sp.integrate((sp.exp(z) - 1) * neg, (z, -sp.oo, 0)) + sp.integrate(z * neg, (z, 0, sp.oo)))
    second = lam**2 * (alpha**2 * sp.integrate((sp.exp(z) - 1)**2 * neg, (z, -sp.oo, 0))
                       + sp.integrate(z**2 * neg, (z, 0, sp.oo)))
    sol = sp.nsolve([sp.simplify(mean / lam), second - 1], [lam, alpha], [1.05, 1.67], prec=30)
    return {"lambda": sp.Float(sol[0], 30), "alpha": sp.Float(sol[1], 30)}


def variance_preserving_gain(activation) -> Derivation:
    """g = 1/sqrt(E[phi(z)^2]) for z ~ N(0,1)."""
    from numpy.polynomial.hermite_e import hermegauss
    nodes, weights = hermegauss(201)
    m2 = float(np.sum(weights * activation.phi(nodes) ** 2) / np.sqrt(2 * np.pi))
    return Derivation("variance_preserving_gain", sp.Float(1 / np.sqrt(m2)), value=1 / np.sqrt(m2))
