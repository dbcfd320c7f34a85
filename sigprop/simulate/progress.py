"""The engine's progress bar is sigprop's one :class:`~sigprop.progress.Progress` (kept here
for imports of ``sigprop.simulate.progress``)."""
from ..progress import Progress

__all__ = ["Progress"]
