"""Finite-width prediction: the variance of the log squared norm of activations and gradients.

Mean-field theory describes the infinite-width limit, where ``||x_l||^2 / n_l`` is
deterministic. At finite width it fluctuates from network to network, and the
fluctuations compound with depth (Hanin 2018; Hanin & Nica 2019): for ReLU with
He/Kaiming init ``Var[log ||x_L||^2] ~ 5 sum_l 1/n_l``. This module computes the
exact per-layer terms for Gaussian weights and zero biases.

Derivation (ReLU, Gaussian weights, ``sigma_b = 0``)
----------------------------------------------------
Given ``x_{l-1}``, the pre-activations ``h_l = x_{l-1} W_l`` are i.i.d.
``N(0, sigma_w^2 ||x_{l-1}||^2 / n_{l-1})``, so::

    ||x_l||^2 / ||x_{l-1}||^2 = (sigma_w^2 / n_{l-1}) * sum_{j active} z_j^2 = (sigma_w^2 / n_{l-1}) chi^2_K,

with ``K ~ Binomial(n_l, 1/2)`` active units. The ratio does not depend on ``x_{l-1}``,
so the log-ratios of different layers are independent and their variances add. With
``log chi^2_K = log 2 + log Gamma(K/2, 1)``: ``E = log 2 + psi(K/2)``,
``Var = psi'(K/2)``, hence per layer (law of total variance)::

    V_relu(n) = E_K[psi'(K/2)] + Var_K[psi(K/2)]          (K >= 1; P(K = 0) = 2^-n ignored)
              = 4/n + 1/n + O(1/n^2) = 5/n + O(1/n^2)

(``psi'(K/2) ~ 2/K ~ 4/n`` and ``Var[log K] ~ Var K / (n/2)^2 = 1/n``). A linear layer has
all ``n`` units active: ``V_linear(n) = psi'(n/2) ~ 2/n``. A random input
``x_0 ~ N(0, input_var I)`` adds ``Var[log chi^2_{n_0}] = psi'(n_0/2)``.

Backward, ``||dL/dh_L||^2 = chi^2_{K_L}`` for the i.i.d. N(0, 1) output gradient and
``||dL/dh_l||^2 = (sigma_w^2 / n_l) ||dL/dh_{l+1}||^2 chi^2_{K_l}`` if ``W_{l+1}`` is
treated as independent of the forward pass (the usual gradient-independence
assumption; the forward pass fixes only the one direction ``x_l W_{l+1}`` of the
``n_l``-dimensional backward image, an ``O(1/n)`` relative effect on the norm).
So ``Var[log ||dL/dh_l||^2] = sum_{k >= l} V(n_k)``.

Examples
--------
>>> from sigprop import NetSpec
>>> from sigprop.finite_width import lognorm_variance, layer_variance
>>> spec = NetSpec.uniform(depth=3, width=100, activation="relu", init="kaiming")
>>> lognorm_variance(spec, random_input=False).round(4).tolist()
[0.0519, 0.1039, 0.1558]
>>> round(layer_variance("relu", 10_000) * 10_000, 2)   # -> 5 as n grows
5.0
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats

SUPPORTED = ("relu", "linear")


def layer_variance(activation: str, n: int) -> float:
    """``Var[log(||x_l||^2 / ||x_{l-1}||^2)]`` of one layer of width ``n`` with Gaussian weights
    and no bias: ``V_relu(n)`` or ``V_linear(n) = psi'(n/2)`` (see the module docstring)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"width must be an integer >= 1, got {n!r}")
    if activation == "linear":
        return float(special.polygamma(1, n / 2.0))
    if activation != "relu":
        raise ValueError(f"finite-width log-norm variance is derived for {' and '.join(SUPPORTED)}, "
                         f"got {activation!r}")
    k = np.arange(1, n + 1)
    p = stats.binom.pmf(k, n, 0.5)
    p = p / p.sum()                                  # condition on K >= 1
    # law of total variance: E[psi'(K/2)] + Var[psi(K/2)]
    trigamma = special.polygamma(1, k / 2.0)
    digamma = special.digamma(k / 2.0)
    mean_digamma = np.sum(p * digamma)
    return float(np.sum(p * trigamma) + np.sum(p * (digamma - mean_digamma) ** 2))


def _check(spec):
    from .spec import NetSpec
    if not isinstance(spec, NetSpec):
        raise ValueError(f"spec must be a NetSpec, got {type(spec).__name__}")
    bad = sorted(set(spec.activation) - set(SUPPORTED))
    if bad:
        raise ValueError(f"finite-width log-norm variance is derived for relu and linear layers, got {bad[0]!r}")
    if spec.weight_dist != "normal":
        raise ValueError(f"finite-width log-norm variance is derived for Gaussian weights, got {spec.weight_dist!r}")
    if any(b != 0 for b in spec.sigma_b):
        raise ValueError("finite-width log-norm variance is derived for sigma_b = 0")


def lognorm_variance(spec, random_input: bool = True) -> np.ndarray:
    """``Var[log ||x_l||^2]`` per layer, one input through one random network.

    Parameters
    ----------
    spec : NetSpec
        ReLU and/or linear layers, Gaussian weights, ``sigma_b = 0`` (any ``sigma_w``: it
        shifts the log-norm, not its variance).
    random_input : bool
        Include the fluctuation ``psi'(n_0/2)`` of a random Gaussian input's norm (what
        :func:`sigprop.simulate.run` measures); False for a fixed input.

    Returns
    -------
    ndarray (L,)
        ``[psi'(n_0/2)] + sum_{k <= l} V(n_k)``; compare with the simulation's
        ``act_lognorm_var``.
    """
    _check(spec)
    per_layer = np.array([layer_variance(a, n) for a, n in zip(spec.activation, spec.widths)])
    start = float(special.polygamma(1, spec.input_dim / 2.0)) if random_input else 0.0
    return start + np.cumsum(per_layer)


def grad_lognorm_variance(spec) -> np.ndarray:
    """``Var[log ||dL/dh_l||^2]`` per layer for an i.i.d. N(0, 1) output gradient:
    ``sum_{k >= l} V(n_k)`` (gradient-independence assumption, see the module docstring);
    compare with the simulation's ``grad_lognorm_var``."""
    _check(spec)
    per_layer = np.array([layer_variance(a, n) for a, n in zip(spec.activation, spec.widths)])
    return np.cumsum(per_layer[::-1])[::-1]


def predict(spec, random_input: bool = True):
    """Both predictions as a :class:`~sigprop.spec.LayerStats` (``source="theory"``) with
    quantities ``act_lognorm_var`` and ``grad_lognorm_var``, ready for :func:`sigprop.compare.compare`."""
    from .spec import LayerStats
    return LayerStats({"act_lognorm_var": lognorm_variance(spec, random_input),
                       "grad_lognorm_var": grad_lognorm_variance(spec)}, spec=spec, source="theory",
                      meta={"method": "finite-width log-norm variance (chi-square with Binomial(n, 1/2) dof)",
                            "random_input": random_input})
