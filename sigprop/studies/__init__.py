"""The source studies, one module each, reproduced from the library.

Every study is a function ``run(out, quick=False, seed=0, ...) -> StudyResult``
that writes its figures (PNG and SVG), its table (JSON and markdown) and its
configuration into ``out``; ``benchmarks/<study>.py`` and ``sigprop study NAME``
are thin wrappers, and ``sigprop report`` runs every study with ``quick=True``.
"""
from ._base import STUDIES, StudyResult, get_study

__all__ = ["STUDIES", "StudyResult", "get_study"]
