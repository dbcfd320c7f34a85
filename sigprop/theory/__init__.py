"""Numeric mean-field theory: q-map, c-map, chi_1, edge of chaos, depth scales, per-layer predictions.

For a pre-activation ``u ~ N(0, q)`` the theory needs Gaussian expectations of the
activation and its derivatives; for two inputs it needs bivariate ones over
``(u1, u2)`` with variances ``q1, q2`` and correlation ``c``. Where sympy derived
a closed form (:mod:`sigprop.symbolic.kernels`: linear, ReLU, leaky ReLU, erf,
SELU moments) the lambdified formula is called; otherwise the integral is done
by quadrature here, never by a retyped formula. The recursions themselves
(forward / backward variance, covariance map, chi_1) are the lambdified results
of :mod:`sigprop.symbolic.recursions`.

The package
-----------
:mod:`.quadrature` (Gaussian expectations), :mod:`.moments` (what the theory needs of an
activation), :mod:`.maps` (q- and c-maps, fixed points, chi_1, edge of chaos, depth
scales), :mod:`.network` (:func:`predict`, per layer for a NetSpec) and :mod:`.phase`
(:func:`phase_diagram` from interpolation tables). Everything public is importable from
``sigprop.theory``.

Quadrature
----------
``E[f(m + sigma Z)]`` is integrated by composite Gauss-Legendre on panels in
``z``: fixed panels on the Gaussian scale (``|z| <= 12``) plus panels graded
geometrically (ratio 2) towards each kink of the activation, from the
activation's own scale (``|h| = 1/4``, i.e. ``|z| = 1/(4 sigma)``) up to
``|z| = 2``. The integrand is then smooth on every panel whatever ``q``: at
large ``q`` ``tanh(sqrt(q) z)`` becomes a step in ``z``, which plain
Gauss-Hermite resolves slowly, and ReLU's kink at 0 is a panel end. The
number of panels grows with ``log2 q``, not ``q``. Bivariate expectations
nest two such rules (the inner one graded around the kink in ``z2``, which
moves with ``z1``).

Conventions are those of :mod:`sigprop.spec`: ``q_l = E[h_l^2]``,
``chi1 = sigma_w^2 E[phi'(h)^2]``, ``grad_var[l] = Var(dL/dh_l)`` for unit
variance ``dL/dx_L``.

Examples
--------
>>> from sigprop import theory
>>> round(float(theory.q_map("relu", 2 ** 0.5, 0.0, 3.0)), 12)   # Kaiming ReLU keeps q
3.0
>>> round(float(theory.edge_of_chaos("tanh", 0.0)), 9)         # tanh, sigma_b = 0: sigma_w = 1
1.0
"""
from .maps import c_map, chi1, depth_scales, edge_of_chaos, fixed_point_c, fixed_point_q, q_map
from .moments import ActivationMoments, moments_of
from .network import predict
from .phase import PhaseDiagram, phase_diagram
from .quadrature import N_GL, Z_MAX, bivariate_expectation, gaussian_expectation

#: The former name of :func:`moments_of` (tests and notebooks use it).
_calculus = moments_of

__all__ = ["ActivationMoments", "N_GL", "PhaseDiagram", "Z_MAX", "bivariate_expectation", "c_map", "chi1",
           "depth_scales", "edge_of_chaos", "fixed_point_c", "fixed_point_q", "gaussian_expectation", "moments_of",
           "phase_diagram", "predict", "q_map"]
