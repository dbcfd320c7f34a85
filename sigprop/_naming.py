"""Parse and print names with parameters, such as ``leaky_relu(a=0.2)`` or ``scaled(0.3)``.

Activations and init schemes are named the same way on the command line, in
JSON and in Python, so one parser serves both.
"""
from __future__ import annotations

import ast
import re

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)


def parse_call(text: str, positional: tuple[str, ...] = ()) -> tuple[str, dict]:
    """Split ``"name(k=v, ...)"`` into ``("name", {"k": v})``.

    Positional arguments are mapped onto ``positional`` in order; values must be
    Python literals (numbers, strings, booleans, None).
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a name such as 'tanh' or 'leaky_relu(a=0.2)', got {text!r}")
    m = _CALL.match(text)
    if m is None:
        raise ValueError(f"cannot read {text!r}: expected 'name' or 'name(k=v, ...)'")
    name, inner = m.group(1), m.group(2)
    if inner is None or not inner.strip():
        return name, {}
    try:
        call = ast.parse(f"f({inner})", mode="eval").body
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read the arguments of {text!r}: use literals, e.g. {name}(a=0.2)") from exc
    if len(args) > len(positional):
        raise ValueError(f"{name} takes at most {len(positional)} positional argument(s), got {len(args)} in {text!r}")
    for key, val in zip(positional, args):
        if key in kwargs:
            raise ValueError(f"{name}: argument {key!r} given twice in {text!r}")
        kwargs[key] = val
    return name, kwargs


def call_name(text: str) -> str:
    """The name part of ``"name(k=v, ...)"``."""
    if not isinstance(text, str) or _CALL.match(text) is None:
        raise ValueError(f"cannot read {text!r}: expected 'name' or 'name(k=v, ...)'")
    return _CALL.match(text).group(1)


def format_call(name: str, params: dict) -> str:
    """Inverse of :func:`parse_call`: ``format_call("leaky_relu", {"a": 0.2}) == "leaky_relu(a=0.2)"``."""
    if not params:
        return name
    def lit(v):  # numpy scalars print as plain Python literals
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()
        return repr(v)
    inner = ", ".join(f"{k}={lit(params[k])}" for k in sorted(params))
    return f"{name}({inner})"
