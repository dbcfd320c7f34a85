"""sympy derivations. Each function returns a :class:`Derivation`: the sympy objects and
a lambdified numeric callable that the numeric theory uses (so no formula is typed twice)."""
from ._base import Derivation

__all__ = ["Derivation"]
