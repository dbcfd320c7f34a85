"""Figures as functions of results (STYLE 11): each takes LayerStats (or training
diagnostics) and returns a matplotlib Figure. matplotlib is imported inside the
functions with the Agg backend, so ``import sigprop`` stays fast and headless."""
