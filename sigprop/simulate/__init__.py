"""Numba Monte Carlo engine: :func:`run` measures per-layer statistics over random networks.

Kernels are in :mod:`sigprop.simulate.kernels` (activation-independent: counter-based
random numbers, backward pass, reductions) and ``_layer_template.py`` (compiled once per
activation set from the sympy-printed ``phi``/``dphi``); :mod:`sigprop.simulate.engine`
is the Python API.
"""
from .engine import SIM_QUANTITIES, draw_network, memory_estimate, run

__all__ = ["SIM_QUANTITIES", "draw_network", "memory_estimate", "run"]
