"""Raw Monte Carlo samples for the page's presets: per-network ``||x_l||^2 / n`` and pre-activation histograms.

:func:`sigprop.simulate.run` returns ensemble statistics; the page wants the spread
over networks (the finite-width band) and the shape of the pre-activation
distribution, so this draws the networks itself with the init scheme's own sampler
(:meth:`sigprop.init.InitScheme.sample`), one independent stream per network
(``SeedSequence.spawn``).
"""
from __future__ import annotations

import numpy as np

from ..init import get_init, sample_weights
from ..spec import NetSpec

#: Histogram range in units of the layer's theory ``sqrt(q_l)`` and its number of bins.
HIST_Z = 4.0
HIST_BINS = 40


def samples(spec: NetSpec, q_theory, networks: int = 64, seed: int = 0) -> dict:
    """Quantiles (10, 50, 90 %) of ``||x_l||^2 / n_l`` over networks, and per-layer histograms
    of ``h_l / sqrt(q_l)`` (``q_l`` from theory) pooled over the units of all networks.

    One input ``x_0 ~ N(0, input_var I)`` per network.

    Examples
    --------
    >>> spec = NetSpec.uniform(depth=2, width=16, activation="relu", init="kaiming")
    >>> s = samples(spec, [2.0, 2.0], networks=8)
    >>> len(s["norm_q50"]), len(s["hist"][0])
    (2, 40)
    """
    scheme = get_init(spec.init)
    acts = spec.activations()
    L = spec.depth
    norms = np.empty((networks, L))
    edges = np.linspace(-HIST_Z, HIST_Z, HIST_BINS + 1)
    hist = np.zeros((L, HIST_BINS), dtype=np.int64)
    fans = (spec.input_dim,) + spec.widths
    with np.errstate(all="ignore"):
        for k, ss in enumerate(np.random.SeedSequence(seed).spawn(networks)):
            rng = np.random.default_rng(ss)
            x = rng.standard_normal(spec.input_dim) * np.sqrt(spec.input_var)
            for l in range(L):
                std = spec.sigma_w[l] / np.sqrt(fans[l])
                W = sample_weights(rng, scheme.distribution, std, fans[l], fans[l + 1])
                h = x @ W + rng.standard_normal(fans[l + 1]) * spec.sigma_b[l]
                x = acts[l].phi(h)
                norms[k, l] = float(np.dot(x, x)) / fans[l + 1]
                hist[l] += np.histogram(h / np.sqrt(q_theory[l]), bins=edges)[0]
    q10, q50, q90 = np.quantile(norms, [0.1, 0.5, 0.9], axis=0)
    return {"networks": networks, "seed": seed, "norm_q10": q10.tolist(), "norm_q50": q50.tolist(),
            "norm_q90": q90.tolist(), "hist": hist.tolist()}
