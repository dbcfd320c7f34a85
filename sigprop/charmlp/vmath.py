"""Elementary functions written so that LLVM can vectorise the loops that call them.

Numba lowers ``math.tanh`` and ``math.exp`` to scalar libm calls (tens of
nanoseconds each, no SIMD): for the character MLP, one ``tanh`` per hidden unit
per example cost more than all the matrix products of a training step. The
kernels therefore compile the activation's sympy-printed source
(:meth:`sigprop.activations.Activation.numba_source`) with this module standing
in for :mod:`math`: ``exp``, ``expm1`` and ``tanh`` are branch-free arithmetic
(range reduction, a Taylor polynomial, exponent bits), every other name is the
standard :mod:`math` function.

A float32 argument is computed in float32 (shorter polynomial, twice the SIMD
lanes), anything else in float64. Accuracy: within a few units in the last
place of the argument's type over the whole range, checked against mpmath in
``tests/test_charmlp_vmath.py``. Called from Python (or with
``NUMBA_DISABLE_JIT=1``) the functions compute in float64.

Examples
--------
>>> from sigprop.charmlp import vmath
>>> import math
>>> abs(vmath.tanh(0.3) - math.tanh(0.3)) < 1e-16
True
"""
from __future__ import annotations

import math as _math
from math import *  # noqa: F401,F403  -- every other name stands for itself

import numba
import numpy as np
from numba import types
from numba.extending import overload

from .._jit import CONTRACT_JIT

# Not inlined by numba: each function keeps its own strict float semantics (no reassociation) when
# LLVM inlines it into a kernel compiled with looser flags.

# ln 2 = LN2_HI + LN2_LO (fdlibm's split for Cody-Waite reduction): LN2_HI ends in 20 zero bits, so
# k * LN2_HI is exact for |k| < 2^20; LN2_LO carries the next 53 bits.
LN2_HI = float.fromhex("0x1.62e42feep-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
LOG2E = 1.0 / _math.log(2.0)

# Taylor coefficients of expm1(r) = sum_{n>=1} r^n / n!, n = 1..14: on |r| <= ln2/2 the first omitted
# term is below 4e-18 relative (r^15/15! with r = 0.347), i.e. below a tenth of an ulp.
_C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13, _C14 = (
    1.0 / _math.factorial(n) for n in range(1, 15))

# float32: ln 2 split with 8 trailing zero bits in the hi part (exact products for |k| < 2^8), and
# Taylor terms n = 1..8 (first omitted term r^9/9! below 2e-9 relative, a thirtieth of a float32 ulp).
LN2_HI_32 = np.float32(float.fromhex("0x1.62e4p-1"))
LN2_LO_32 = np.float32(_math.log(2.0) - float.fromhex("0x1.62e4p-1"))
LOG2E_32 = np.float32(LOG2E)
_D1, _D2, _D3, _D4, _D5, _D6, _D7, _D8 = (np.float32(1.0 / _math.factorial(n)) for n in range(1, 9))
_F0, _F1, _F2, _HALF = np.float32(0.0), np.float32(1.0), np.float32(2.0), np.float32(0.5)


# --- float64 ------------------------------------------------------------------------------
@numba.njit(**CONTRACT_JIT)
def _expm1_reduced(r):
    # expm1(r) = r (1 + r/2 + r^2/6 + ...), |r| <= ln2/2, Horner
    p = _C14
    p = p * r + _C13
    p = p * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + _C1
    return p * r


@numba.njit(**CONTRACT_JIT)
def _pow2(k):
    # 2^k from its exponent bits, for integer -1022 <= k <= 1023
    return np.int64((k + 1023) << 52).view(np.float64)


@numba.njit(**CONTRACT_JIT)
def _reduce(x):
    # x = k ln2 + r with k = round(x / ln2), |r| <= ln2/2 (Cody-Waite: the hi part is exact)
    kf = _math.floor(x * LOG2E + 0.5)
    r = (x - kf * LN2_HI) - kf * LN2_LO
    return np.int64(kf), r


@numba.njit(**CONTRACT_JIT)
def _exp64(x):
    x = np.float64(x)
    # clamp to where e^x is finite and non-zero, so that the exponent arithmetic cannot wrap
    xc = min(max(x, -746.0), 710.0)
    k, r = _reduce(xc)
    # e^x = 2^k1 2^k2 (1 + expm1(r)), k = k1 + k2 split so each factor is a normal number
    k1 = k >> 1
    y = (1.0 + _expm1_reduced(r)) * _pow2(k1) * _pow2(k - k1)
    return y if x == x else x


@numba.njit(**CONTRACT_JIT)
def _expm164(x):
    x = np.float64(x)
    xc = min(max(x, -746.0), 710.0)
    k, r = _reduce(xc)
    k1 = k >> 1
    s = _pow2(k1) * _pow2(k - k1)
    # e^x - 1 = 2^k expm1(r) + (2^k - 1); both terms exact-ish, no cancellation for k != 0
    y = s * _expm1_reduced(r) + (s - 1.0)
    return y if x == x else x


@numba.njit(**CONTRACT_JIT)
def _tanh64(x):
    x = np.float64(x)
    # tanh|x| = m / (m + 2), m = expm1(2|x|); tanh(22) is 1 to float64 precision
    a = min(abs(x), 22.0)
    k, r = _reduce(2.0 * a)
    s = _pow2(k)                     # 0 <= k <= 64 here
    m = s * _expm1_reduced(r) + (s - 1.0)
    t = m / (m + 2.0)
    t = -t if x < 0.0 else t
    return t if x == x else x


# --- float32 (the same formulas) ------------------------------------------------------------
@numba.njit(**CONTRACT_JIT)
def _expm1_reduced32(r):
    p = _D8
    p = p * r + _D7
    p = p * r + _D6
    p = p * r + _D5
    p = p * r + _D4
    p = p * r + _D3
    p = p * r + _D2
    p = p * r + _D1
    return p * r


@numba.njit(**CONTRACT_JIT)
def _pow2_32(k):
    # 2^k from its exponent bits, for integer -126 <= k <= 127
    return np.int32((k + np.int32(127)) << np.int32(23)).view(np.float32)


@numba.njit(**CONTRACT_JIT)
def _reduce32(x):
    kf = np.float32(_math.floor(x * LOG2E_32 + _HALF))
    r = (x - kf * LN2_HI_32) - kf * LN2_LO_32
    return np.int32(kf), r


@numba.njit(**CONTRACT_JIT)
def _exp32(x):
    xc = min(max(x, np.float32(-104.0)), np.float32(89.0))
    k, r = _reduce32(xc)
    k1 = k >> np.int32(1)
    y = (_F1 + _expm1_reduced32(r)) * _pow2_32(k1) * _pow2_32(k - k1)
    return y if x == x else x


@numba.njit(**CONTRACT_JIT)
def _expm132(x):
    xc = min(max(x, np.float32(-104.0)), np.float32(89.0))
    k, r = _reduce32(xc)
    k1 = k >> np.int32(1)
    s = _pow2_32(k1) * _pow2_32(k - k1)
    y = s * _expm1_reduced32(r) + (s - _F1)
    return y if x == x else x


@numba.njit(**CONTRACT_JIT)
def _tanh32(x):
    # tanh(9.1) is 1 to float32 precision
    a = min(abs(x), np.float32(9.1))
    k, r = _reduce32(_F2 * a)
    s = _pow2_32(k)                  # 0 <= k <= 27 here
    m = s * _expm1_reduced32(r) + (s - _F1)
    t = m / (m + _F2)
    t = -t if x < _F0 else t
    return t if x == x else x


# --- the public names: float32 in float32, everything else in float64 ------------------------
def exp(x):
    """``e^x``, vectorisable in numba."""
    return _exp64(x)


def expm1(x):
    """``e^x - 1`` without cancellation for small ``x``, vectorisable in numba."""
    return _expm164(x)


def tanh(x):
    """``tanh(x)``, vectorisable in numba."""
    return _tanh64(x)


def _dispatch(f32, f64):
    def typer(x):
        if isinstance(x, types.Float) and x.bitwidth == 32:
            return lambda x: f32(x)
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return lambda x: f64(x)
        return None
    return typer


overload(exp, jit_options=CONTRACT_JIT)(_dispatch(_exp32, _exp64))
overload(expm1, jit_options=CONTRACT_JIT)(_dispatch(_expm132, _expm164))
overload(tanh, jit_options=CONTRACT_JIT)(_dispatch(_tanh32, _tanh64))
