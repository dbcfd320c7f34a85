"""sigprop: predict and measure signal propagation in deep networks.

The shared types are imported here; heavier modules (theory, simulate, charmlp,
plots) are imported on use so that ``import sigprop`` stays fast.

>>> import sigprop
>>> spec = sigprop.NetSpec.uniform(depth=3, width=64, activation="relu", init="kaiming")
>>> round(spec.sigma_w[0] ** 2, 12)   # Kaiming for ReLU: sigma_w^2 = 2
2.0
"""
from .activations import Activation, get_activation, register_activation
from .init import InitScheme, calculate_gain, get_init, variance_preserving_gain
from .spec import LayerStats, NetSpec

__version__ = "0.1.0"
__all__ = ["Activation", "InitScheme", "LayerStats", "NetSpec", "calculate_gain", "get_activation", "get_init",
           "register_activation", "variance_preserving_gain", "__version__"]
