"""Mean-field theory of a pre-LayerNorm GPT at initialisation, per block and per position.

The state is, for each token sequence of the batch, the ``T x T`` matrix
``K[t, t'] = E[x_t . x_t'] / d`` of the residual stream (expectation over the random
initialisation, the tokens fixed). Its recursion (derivations in
:mod:`sigprop.symbolic.transformer`, rendered in ``derivations/transformer.md``):

* embedding: ``K_0 = s_e^2 (Same + I)``, ``Same[t, t'] = [idx_t = idx_t']`` (the prefix
  assumption: ``prefix="tokens"`` uses each sequence's own equality pattern; ``"collision"``
  replaces it by the batch's collision probability ``pi`` for every pair; ``"none"`` assumes no
  token repeats);
* LayerNorm with ``eps``: ``E[u_t . u_t'] / d = G[t, t']``, ``G[t, t] = E[v/(v+eps)]`` and
  ``G[t, t'] = (1 - 1/d) K[t, t'] E[(v_t+eps)^-1/2] E[(v_t'+eps)^-1/2]`` over the chi-square
  law of the LayerNorm variance ``v``;
* q, k, v: every column is Gaussian over positions with covariance ``s_qkv^2 u u^T``
  (exact given the LayerNorm outputs ``u``, whose covariance is ``G``), so one head's logits, softmax, entropy and output
  ``y = P v`` are expectations over Gaussian vectors. There is no closed form for the
  softmax of correlated Gaussians; they are evaluated by sampling ``samples`` draws per
  sequence (fixed seed), and their sampling error is returned as the theory's standard
  error. For small logit variance this agrees with the derived
  ``ln n - sigma^2 (cbar_diag - cbar) / 2``;
* attention output ``K_o = s_o^2 d E[P S P^T]``, ``K_a = K + K_o``;
* finite heads (``covariance="population"``, the default): each of the ``samples`` draws per
  sequence is a virtual network carrying its own ``K^(m)``: its ``n_head`` heads' outputs ``Y`` give
  ``K_o^(m) = s_o^2 Y Y^T`` (the covariance of ``Y W_o`` over the fresh output weights), and
  LayerNorm and the MLP act on each ``K^(m)``. A network's covariance after a block of few, nearly
  hard heads differs from the mean, and the entropy is nonlinear in it (to lowest order
  :func:`sigprop.symbolic.transformer.entropy_fluctuation_gap`); the per-block quantities are the
  population's means, their standard errors its spread;
* MLP: ``h`` columns ~ ``N(0, s_fc^2 d G_2)``; ``E[phi(h_t) phi(h_t')]`` by Gauss-Hermite
  over the bivariate normal (``phi`` = the activation's numeric form; the 1-D moments
  come from :func:`sigprop.theory.gaussian_expectation`); ``K' = K_a + s_fp^2 4d K_phi``;
* head and loss: :func:`sigprop.symbolic.transformer.input_logit_moments` (the tied head's
  input-token logit) and
  :func:`sigprop.symbolic.crossentropy.expected_log_partition`;
* backward from an i.i.d. unit-variance gradient at ``x_L`` with the gradient-independence
  assumption (the backward weights independent of the forward ones): the ``T x T`` gradient
  covariance ``Gamma`` through the MLP (``E[phi'(h_t) phi'(h_t')]``), LayerNorm
  (:func:`~sigprop.symbolic.transformer.layernorm_jacobian_trace`) and the sampled attention
  backward (value path and softmax path).

Examples
--------
>>> import numpy as np
>>> from sigprop.gpt.model import GPTConfig
>>> from sigprop.theory.transformer import predict_transformer
>>> cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11)
>>> idx = np.arange(16).reshape(2, 8) % 11
>>> pred = predict_transformer(cfg, idx, samples=16)
>>> pred.blocks.depth, pred.positions["entropy"].shape
(2, (2, 8))
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .quadrature import gaussian_expectation

PREFIX_MODELS = ("tokens", "collision", "none")
#: per-block quantities (LayerStats over blocks 1..L)
BLOCK_QUANTITIES = ("resid_var", "q_var", "k_var", "v_var", "logit_var", "entropy", "attn_out_var",
                    "mlp_pre_var", "gelu_mean", "gelu_sq", "grad_var")
#: per-position quantities, arrays (L, T)
POSITION_QUANTITIES = ("entropy", "attn_out_var")
#: model-level quantities
HEAD_QUANTITIES = ("final_resid_var", "logit_var", "loss")


@dataclass
class TransformerStats:
    """Theory (or measurement) of one GPT at init on one token batch.

    Attributes
    ----------
    blocks : LayerStats
        Per block (layer ``l`` = block ``l``): ``resid_var`` (second moment of the residual
        stream entering the block), ``q_var``, ``k_var``, ``v_var``, ``logit_var`` (attention
        logits, causal pairs), ``entropy`` (mean over positions), ``attn_out_var`` (after the
        projection, mean over positions), ``mlp_pre_var``, ``gelu_mean``, ``gelu_sq``,
        ``grad_var`` (``Var(dL/dx)`` at the block input for a unit-variance i.i.d. gradient at
        the last block's output).
    positions : dict of str -> array (L, T)
        ``entropy`` and ``attn_out_var`` per block and position.
    position_se : dict of str -> array (L, T)
    head : dict of str -> float
        ``final_resid_var``, ``logit_var`` (variance over the vocabulary per token, mean over
        tokens) and ``loss``; ``head_se`` their standard errors.
    """

    blocks: object
    positions: dict
    position_se: dict = field(default_factory=dict)
    head: dict = field(default_factory=dict)
    head_se: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    #: theory only: the residual covariance K (B, T, T) entering each block, and after the last
    resid_cov: list = field(default_factory=list, repr=False)

    def position_stats(self, block: int):
        """LayerStats over positions ``t = 1..T`` (as "layers") of block ``block`` (1-based)."""
        from ..spec import LayerStats
        vals = {k: v[block - 1] for k, v in self.positions.items()}
        se = {k: v[block - 1] for k, v in self.position_se.items()}
        return LayerStats(vals, se=se, source=self.blocks.source, meta={**self.meta, "block": block})

    def head_stats(self):
        """The head quantities as a one-"layer" LayerStats."""
        from ..spec import LayerStats
        return LayerStats({k: [v] for k, v in self.head.items()}, se={k: [v] for k, v in self.head_se.items()},
                          source=self.blocks.source, meta=self.meta)


def _stds(config):
    return dict(e=config.embd_std, qkv=config.weight_std("qkv_w"), o=config.weight_std("proj_w"),
                fc=config.weight_std("fc_w"), fp=config.weight_std("fcproj_w"))


def collision_probability(idx) -> float:
    """Fraction of position pairs ``s != s'`` of the same sequence holding the same token."""
    idx = np.asarray(idx)
    B, T = idx.shape
    if T < 2:
        return 0.0
    same = (idx[:, :, None] == idx[:, None, :]).sum() - B * T
    return float(same / (B * T * (T - 1)))


def _layernorm(K, d, eps):
    """LayerNorm of residual covariances K (B, T, T): (G, r, a, b) with r = E[v/(v+eps)],
    a = E[(v+eps)^-1/2], b = E[1/(v+eps)] per position (B, T).

    Off the diagonal ``G = rho (1 - (1 - rho^2) / (2 (d - 1))) E[sqrt(v/(v+eps))]_t E[...]_t'``:
    the mean sample correlation of ``d - 1`` centred coordinate pairs times the eps shrinkage
    (derivations/transformer.md)."""
    from ..symbolic.transformer import layernorm_expectation
    q = np.einsum("btt->bt", K)
    r = layernorm_expectation("second_moment", q, d, eps)
    sr = layernorm_expectation("sqrt_second_moment", q, d, eps)
    a = layernorm_expectation("inv_sqrt", q, d, eps)
    b = layernorm_expectation("inv", q, d, eps)
    qq = np.sqrt(q[:, :, None] * q[:, None, :])
    with np.errstate(all="ignore"):
        rho = np.clip(np.where(qq > 0, K / np.where(qq > 0, qq, 1.0), 0.0), -1.0, 1.0)
    G = rho * (1.0 - (1.0 - rho ** 2) / (2.0 * max(d - 1, 1))) * sr[:, :, None] * sr[:, None, :]
    i = np.arange(K.shape[1])
    G[:, i, i] = r
    return G, r, a, b


def _cholesky(S):
    """Lower factor of a batch of PSD matrices (tiny diagonal jitter where needed)."""
    T = S.shape[-1]
    scale = np.maximum(np.einsum("btt->b", S) / T, 1e-300)
    for jitter in (0.0, 1e-12, 1e-9, 1e-6):
        try:
            return np.linalg.cholesky(S + jitter * scale[:, None, None] * np.eye(T))
        except np.linalg.LinAlgError:
            continue
    w, U = np.linalg.eigh(S)
    return U * np.sqrt(np.maximum(w, 0.0))[:, None, :]


def _causal_softmax(z):
    T = z.shape[-1]
    mask = np.tril(np.ones((T, T), dtype=bool))
    z = np.where(mask, z, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _entropy(P):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(P > 0, P * np.log(P), 0.0), axis=-1)


class _Head:
    """Gaussian draws of one attention head for covariance S (B, T, T): q, k, v columns.

    With ``gram=(G, s, d)`` the LayerNorm outputs themselves are drawn (``d`` Gaussian
    coordinates with covariance ``G``, each position rescaled to its norm ``d G_tt``) and q, k, v
    are ``u W`` with ``W`` ~ N(0, s^2): the finite-``d`` fluctuation of the positions' Gram matrix
    around its mean (~1/sqrt(d)) is then kept, which matters when the logits are large."""

    def __init__(self, S, hs, samples, seed, gram=None):
        self.S, self.hs, self.M, self.seed, self.gram = S, hs, samples, seed, gram

    def draw(self):
        B, T, _ = self.S.shape
        rng = np.random.default_rng(self.seed)
        if self.gram is None:
            Lc = _cholesky(self.S)[:, None]                              # (B, 1, T, T)
            xi = rng.standard_normal((3, B, self.M, T, self.hs))
            Q, K, V = (Lc @ xi[i] for i in range(3))                     # (B, M, T, hs)
        else:
            G, s, d = self.gram
            U = _cholesky(G)[:, None] @ rng.standard_normal((B, self.M, T, d))
            norm = np.einsum("bmti,bmti->bmt", U, U)
            U *= np.sqrt(d * np.einsum("btt->bt", G)[:, None, :] / np.maximum(norm, 1e-300))[..., None]
            W = s * rng.standard_normal((3, B, self.M, d, self.hs))
            Q, K, V = (U @ W[i] for i in range(3))
        P = _causal_softmax(Q @ np.swapaxes(K, -1, -2) / math.sqrt(self.hs))
        return Q, K, V, P


def _population_attention(G, s, so, d, H, hs, rng, gram, U=None):
    """One attention layer for each member of a population of covariances.

    ``G`` (B, M, T, T): the LayerNorm Gram matrix of each member (virtual network). Every member
    gets its own ``H`` heads (fresh q, k, v weights of std ``s``), as one network does, drawn from
    sampled ``d``-dimensional LayerNorm outputs (``gram="sampled"``) or from Gaussian q, k, v with
    covariance ``s^2 d G`` (``gram="mean"``). Returns the entropy (B, M, T), averaged over the heads,
    and the covariance ``so^2 Y Y^T`` (B, M, T, T) of the attention output given the heads' outputs
    ``Y`` (the output projection's weights, std ``so``, are the only randomness left). With ``U``
    (B, M, T, d) given, those are the LayerNorm outputs (nothing is drawn for them); the heads'
    outputs ``Y`` (B, M, T, d) are then returned as well."""
    B, M, T, _ = G.shape
    flat = G.reshape(B * M, T, T)
    given = U is not None
    if given:
        def draw():
            return U @ (s * rng.standard_normal((B, M, d, hs)))
    elif gram == "sampled":
        U = _cholesky(flat).reshape(B, M, T, T) @ rng.standard_normal((B, M, T, d))
        norm = np.einsum("bmti,bmti->bmt", U, U)
        U *= np.sqrt(d * np.einsum("bmtt->bmt", G) / np.maximum(norm, 1e-300))[..., None]

        def draw():
            return U @ (s * rng.standard_normal((B, M, d, hs)))
    else:
        Lc = _cholesky(s ** 2 * d * flat).reshape(B, M, T, T)

        def draw():
            return Lc @ rng.standard_normal((B, M, T, hs))
    ent = np.zeros((B, M, T))
    Ko = np.zeros((B, M, T, T))
    Ys = []
    for _ in range(H):
        Q, Kk, Vv = draw(), draw(), draw()
        P = _causal_softmax(Q @ np.swapaxes(Kk, -1, -2) / math.sqrt(hs))
        ent += _entropy(P) / H
        Y = P @ Vv
        Ko += Y @ np.swapaxes(Y, -1, -2)
        if given:
            Ys.append(Y)
    if given:
        return ent, so ** 2 * Ko, np.concatenate(Ys, axis=-1)
    return ent, so ** 2 * Ko


def _layernorm_samples(X, eps):
    """LayerNorm (gain 1, bias 0) of sampled residual vectors X (..., d) over their last axis."""
    Xc = X - X.mean(-1, keepdims=True)
    return Xc / np.sqrt((Xc * Xc).mean(-1, keepdims=True) + eps)


def _gaussian_rows(C, d, rng):
    """(..., T, d): ``d`` independent columns, each ``N(0, C)`` over the ``T`` positions."""
    shape = C.shape
    Lc = _cholesky(C.reshape(-1, shape[-1], shape[-1])).reshape(shape)
    return Lc @ rng.standard_normal(shape[:-1] + (d,))


@functools.lru_cache(maxsize=None)
def _hermite(n):
    from numpy.polynomial.hermite_e import hermegauss
    z, w = hermegauss(n)
    return z, w / math.sqrt(2 * math.pi)


def _bivariate_gh(f, q1, q2, c12, n_nodes=24, chunk=2048):
    """``E[f(h1) f(h2)]`` for centred normal ``(h1, h2)`` with variances ``q1, q2`` and covariance
    ``c12`` (arrays): tensor Gauss-Hermite in ``h1 = sqrt(q1) z1``,
    ``h2 = c12/sqrt(q1) z1 + sqrt(q2 - c12^2/q1) z2``, exponentially accurate for smooth ``f``."""
    z, w = _hermite(n_nodes)
    q1, q2, c12 = (np.asarray(a, dtype=float).reshape(-1) for a in np.broadcast_arrays(q1, q2, c12))
    out = np.empty(q1.shape)
    with np.errstate(all="ignore"):
        for s in range(0, q1.size, chunk):
            sl = slice(s, s + chunk)
            s1 = np.sqrt(q1[sl])
            beta = np.where(s1 > 0, c12[sl] / np.where(s1 > 0, s1, 1.0), 0.0)
            resid = np.sqrt(np.maximum(q2[sl] - beta ** 2, 0.0))
            X = s1[:, None] * z[None, :]                                        # (P, n)
            Y = beta[:, None, None] * z[None, :, None] + resid[:, None, None] * z[None, None, :]   # (P, n, n)
            out[sl] = (f(X) * (f(Y) @ w)) @ w
    return out


def tabulated_expectation(f, q, kinks=(0.0,), n_table=65):
    """``E[f(h)]``, ``h ~ N(0, q)``, for a large array ``q``: :func:`sigprop.theory.gaussian_expectation`
    at ``n_table`` (or more: at most 0.02 apart in ``log q``) variances spanning ``q``, a cubic spline in
    ``log q`` between them.

    A population of covariances has one variance per member and position (10^4-10^5 values, most
    within percents of each other after a LayerNorm); the spline's relative error is below 1e-8
    for the smooth activations' moments (checked in the tests)."""
    q = np.asarray(q, dtype=float)
    if q.size <= 2 * n_table:
        return gaussian_expectation(f, q, kinks)
    lo, hi = float(q.min()), float(q.max())
    if lo <= 0 or hi / lo < 1 + 1e-12:
        return gaussian_expectation(f, q, kinks) if lo <= 0 else np.full(q.shape, gaussian_expectation(f, hi, kinks))
    from scipy.interpolate import CubicSpline
    grid = np.linspace(math.log(lo), math.log(hi), max(n_table, math.ceil(math.log(hi / lo) / 0.02) + 1))
    return CubicSpline(grid, gaussian_expectation(f, np.exp(grid), kinks))(np.log(q))


def bivariate_kernel(f, S, n_nodes=64, n_corr=129, n_q=3, kinks=(0.0,)):
    """``E[f(h_t) f(h_t')]`` for ``h`` ~ N(0, S) over positions, S (B, T, T) -> (B, T, T).

    Off the diagonal the kernel is read from a table over the correlation ``c`` (``n_corr``
    points on [-1, 1], cubic spline) and the geometric-mean variance
    ``sqrt(S_tt S_t't')`` (``n_q`` points spanning the batch, log-linear), each entry by
    :func:`_bivariate_gh`; the diagonal is computed at each position's own variance by the
    adaptive rule of :func:`sigprop.theory.gaussian_expectation`. After a
    LayerNorm the variances of one block differ by percents, so the table's error is far below
    the Monte Carlo's (checked against :func:`sigprop.theory.bivariate_expectation` in the tests).
    """
    B, T, _ = S.shape
    i = np.arange(T)
    qd = S[:, i, i]
    qg = np.sqrt(qd[:, :, None] * qd[:, None, :])
    with np.errstate(all="ignore"):
        c = np.clip(np.where(qg > 0, S / np.where(qg > 0, qg, 1.0), 0.0), -1.0, 1.0)
    lo, hi = float(qd.min()), float(qd.max())
    cg = np.linspace(-1.0, 1.0, n_corr)
    if hi <= 0:
        return np.full(S.shape, float(f(np.zeros(1))[0]) ** 2)
    nq = 1 if hi / max(lo, 1e-300) < 1 + 1e-9 else n_q
    lg = np.linspace(np.log(max(lo, 1e-300)), np.log(hi), nq)
    qq = np.exp(lg)
    table = _bivariate_gh(f, qq[:, None], qq[:, None], qq[:, None] * cg[None, :], n_nodes).reshape(nq, n_corr)
    # interpolate: cubic spline in c, then linear in log q
    from scipy.interpolate import CubicSpline
    rows = CubicSpline(cg, table, axis=1)(c)                      # (nq, B, T, T)
    if nq == 1:
        K = rows[0]
    else:
        pos_q = (np.log(np.maximum(qg, 1e-300)) - lg[0]) / (lg[1] - lg[0])
        k = np.clip(np.floor(pos_q).astype(int), 0, nq - 2)
        fq = np.clip(pos_q - k, 0.0, 1.0)
        K = np.take_along_axis(rows, k[None], 0)[0] * (1 - fq) + np.take_along_axis(rows, k[None] + 1, 0)[0] * fq
    K[:, i, i] = tabulated_expectation(lambda h: f(h) ** 2, qd, kinks)
    return K


def _token_pattern(idx, prefix):
    B, T = idx.shape
    if prefix == "tokens":
        return (idx[:, :, None] == idx[:, None, :]).astype(float)
    pi = collision_probability(idx) if prefix == "collision" else 0.0
    same = np.full((1, T, T), pi)
    same[:, np.arange(T), np.arange(T)] = 1.0
    return same


def predict_transformer(config, idx, targets=None, prefix: str = "tokens", samples: int = 256, seed: int = 0,
                        n_nodes: int = 64, gram: str = "sampled", covariance: str = "population") -> TransformerStats:
    """Mean-field prediction for a pre-LN GPT at init on the token batch ``idx`` (B, T).

    Parameters
    ----------
    config : sigprop.gpt.model.GPTConfig
        Sizes, init (every std via ``config.weight_std``), ``embd_std``, ``ln_eps``, activation.
    idx : array (B, T) of int
        Token sequences (the theory is conditional on them).
    targets : array (B, T), optional
        Next tokens; the loss needs the fraction equal to their input token (default: none
        equal, as for tokens drawn independently of their inputs... ``1/V`` is used).
    prefix : {"tokens", "collision", "none"}
        How repeated tokens correlate the prefix (module docstring).
    samples : int
        Gaussian draws per sequence for the attention expectations.
    seed : int
    n_nodes : int
        Gauss-Hermite nodes per dimension of the MLP kernels.
    gram : {"sampled", "mean"}
        Attention draws from sampled ``d``-dimensional LayerNorm outputs with the predicted
        covariance (default: keeps the Gram matrix's ~1/sqrt(d) fluctuation, which the entropy at
        large logit variance needs: std 0.2, block 1, d = 64: 1.292 with "mean", 1.323 with
        "sampled", measured 1.340 +- 0.008), or from the mean Gram matrix itself.
    covariance : {"population", "mean"}
        ``"population"`` (default): each of the ``samples`` draws per sequence is a virtual network
        that carries its own residual covariance ``K^(m)`` from block to block (its ``n_head`` heads'
        attention patterns enter its ``K_o^(m) = s_o^2 Y Y^T``; LayerNorm and the MLP by the
        mean-field laws applied to ``K^(m)``). With few heads and large logits the covariance one
        network's residual stream has after block 1 differs from network to network (std 0.2, no
        residual scaling, block 2: correlation std 0.19 around a mean 0.29), and the entropy is
        nonlinear in it: 1.508 from the mean covariance, 1.565 +- 0.004 from the networks' own,
        measured 1.560 +- 0.005. ``"carried"``: each draw carries its sampled ``d``-dimensional
        residual vectors instead (exact LayerNorm of the samples, fresh attention and output weights,
        the MLP output drawn from its mean-field kernel given the sample): a network's Gram-matrix
        fluctuation then persists from block to block, as in a real network, where the population
        redraws it at every block (std 0.2 with residual scaling, depth 12, block 8: entropy 1.721
        population, 1.749 carried, measured 1.765 +- 0.012). Only the MLP's hidden layer is then
        mean-field: closer to a simulation than to a theory, so not the default. ``"mean"``: one
        covariance per sequence, the expectation. The backward pass uses the mean covariance always.

    Returns
    -------
    TransformerStats
    """
    from ..activations import get_activation
    from ..spec import LayerStats
    from ..symbolic.crossentropy import expected_log_partition
    from ..symbolic.transformer import attention_logit_variance, input_logit_moments, layernorm_jacobian_trace
    from .moments import moments_of

    if gram not in ("mean", "sampled"):
        raise ValueError(f"gram must be 'mean' or 'sampled', got {gram!r}")
    if covariance not in ("population", "carried", "mean"):
        raise ValueError(f"covariance must be 'population', 'carried' or 'mean', got {covariance!r}")
    if prefix not in PREFIX_MODELS:
        raise ValueError(f"prefix must be one of {', '.join(PREFIX_MODELS)}, got {prefix!r}")
    idx = np.asarray(idx)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must be a 2-d integer array (batch, T), got shape {idx.shape} of {idx.dtype}")
    if idx.shape[1] > config.block_size:
        raise ValueError(f"sequence length {idx.shape[1]} exceeds block_size {config.block_size}")
    if idx.size and (idx.min() < 0 or idx.max() >= config.vocab_size):
        raise ValueError(f"token ids must be in [0, {config.vocab_size})")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    L, d, H, V, eps = config.n_layer, config.n_embd, config.n_head, config.vocab_size, config.ln_eps
    hs = d // H
    sd = _stds(config)
    act = moments_of(get_activation(config.activation))
    phi, dphi = act.phi, act.dphi
    T = idx.shape[1]
    K = sd["e"] ** 2 * (_token_pattern(idx, prefix) + np.eye(T)[None])
    ss = np.random.SeedSequence(seed).spawn(2 * L)
    jac = layernorm_jacobian_trace().numeric
    logit_var_of = attention_logit_variance().numeric
    causal = np.tril(np.ones((T, T), dtype=bool))

    out = {k: np.zeros(L) for k in BLOCK_QUANTITIES}
    out_se = {k: np.zeros(L) for k in BLOCK_QUANTITIES}

    def member_mean(key, l, a):
        """Block value and standard error from per-member values a (B, M, ...): the population's mean and
        the spread of its members' means over sqrt(M)."""
        per = a.reshape(a.shape[0], a.shape[1], -1).mean(axis=(0, 2))
        out[key][l] = per.mean()
        out_se[key][l] = per.std(ddof=1) / math.sqrt(per.size)

    def mlp_members(l, Shp):
        """The MLP of every member: pre-activation covariances Shp (B M, T, T) -> the block's
        mlp_pre_var, gelu_mean and gelu_sq (population means and se) and the members' GELU kernels."""
        qhp = np.einsum("btt->bt", Shp)
        member_mean("mlp_pre_var", l, qhp.reshape(B, samples, T))
        member_mean("gelu_mean", l, tabulated_expectation(phi, qhp, act.centers).reshape(B, samples, T))
        Kphi = bivariate_kernel(phi, Shp, n_nodes, kinks=act.centers)
        member_mean("gelu_sq", l, np.einsum("btt->bt", Kphi).reshape(B, samples, T))
        return Kphi
    pos = {k: np.zeros((L, T)) for k in POSITION_QUANTITIES}
    pos_se = {k: np.zeros((L, T)) for k in POSITION_QUANTITIES}
    saved, covs = [], []
    pop = covariance in ("population", "carried")
    carried = covariance == "carried"
    B = K.shape[0]                                              # 1 for the homogeneous prefix models
    if carried:                                                 # (B, M, T, d): the sampled residual vectors
        Xp = _gaussian_rows(np.repeat(K[:, None], samples, axis=1), d, np.random.default_rng(ss[0].spawn(1)[0]))
    elif pop:
        Kp = np.repeat(K[:, None], samples, axis=1)             # (B, M, T, T): one K per virtual network
    for l in range(L):
        if carried:
            Kp = np.einsum("bmti,bmsi->bmts", Xp, Xp) / d
        if pop:
            K = Kp.mean(axis=1)
        covs.append(K)
        qdiag = np.einsum("btt->bt", K)
        out["resid_var"][l] = qdiag.mean()
        if pop:
            member_mean("resid_var", l, np.einsum("bmtt->bmt", Kp))
        if carried:
            U1 = _layernorm_samples(Xp, eps)
            G1p = np.einsum("bmti,bmsi->bmts", U1, U1) / d
            G1 = G1p.mean(axis=1)
            _, r1, a1, b1 = _layernorm(K, d, eps)
        elif pop:
            G1p, r1, a1, b1 = _layernorm(Kp.reshape(B * samples, T, T), d, eps)
            G1 = G1p.reshape(B, samples, T, T).mean(axis=1)
            r1, a1, b1 = (z.reshape(B, samples, T).mean(axis=1) for z in (r1, a1, b1))
        else:
            G1, r1, a1, b1 = _layernorm(K, d, eps)
        S = sd["qkv"] ** 2 * d * G1
        Sd = np.einsum("btt->bt", S)
        out["q_var"][l] = out["k_var"][l] = out["v_var"][l] = Sd.mean()
        lv = logit_var_of(Sd[:, :, None], Sd[:, None, :])
        out["logit_var"][l] = lv[:, causal].mean()
        if pop:
            Sdp = sd["qkv"] ** 2 * d * np.einsum("bmtt->bmt", G1p.reshape(B, samples, T, T))
            for key in ("q_var", "k_var", "v_var"):
                member_mean(key, l, Sdp)
            member_mean("logit_var", l, logit_var_of(Sdp[..., :, None], Sdp[..., None, :])[..., causal])
        if carried:
            rng = np.random.default_rng(ss[2 * l])
            Hent, Kop, Ycat = _population_attention(G1p, sd["qkv"], sd["o"], d, H, hs, rng, gram, U=U1)
            ydiag = np.einsum("bmtt->bmt", Kop)
            Ko = Kop.mean(axis=1)
            Ap = Xp + Ycat @ (sd["o"] * rng.standard_normal((B, samples, d, d)))
            del G1p, U1, Ycat
        elif pop:
            Hent, Kop = _population_attention(G1p.reshape(B, samples, T, T), sd["qkv"], sd["o"], d, H, hs,
                                              np.random.default_rng(ss[2 * l]), gram)
            ydiag = np.einsum("bmtt->bmt", Kop)
            Ko = Kop.mean(axis=1)
            del G1p
        else:
            attn = _Head(S, hs, samples, ss[2 * l], None if gram == "mean" else (G1, sd["qkv"], d))
            Q, Kk, Vv, P = attn.draw()
            Hent = _entropy(P)                                   # (B, M, T)
            Y = P @ Vv                                           # (B, M, T, hs)
            A = np.einsum("bmti,bmsi->bts", Y, Y) / (samples * hs)
            Ko = sd["o"] ** 2 * d * A
            ydiag = sd["o"] ** 2 * d * np.einsum("bmti,bmti->bmt", Y, Y) / hs
            del Q, Kk, Vv, P, Y
        pos["entropy"][l] = Hent.mean(axis=(0, 1))
        pos_se["entropy"][l] = Hent.mean(axis=0).std(axis=0, ddof=1) / math.sqrt(samples)
        pos["attn_out_var"][l] = np.einsum("btt->t", Ko) / Ko.shape[0]
        pos_se["attn_out_var"][l] = ydiag.mean(axis=0).std(axis=0, ddof=1) / math.sqrt(samples)
        out["entropy"][l] = pos["entropy"][l].mean()
        out_se["entropy"][l] = Hent.mean(axis=(0, 2)).std(ddof=1) / math.sqrt(samples)
        out["attn_out_var"][l] = pos["attn_out_var"][l].mean()
        out_se["attn_out_var"][l] = ydiag.mean(axis=(0, 2)).std(ddof=1) / math.sqrt(samples)
        if carried:
            U2 = _layernorm_samples(Ap, eps)
            Shp = sd["fc"] ** 2 * np.einsum("bmti,bmsi->bmts", U2, U2).reshape(B * samples, T, T)
            del U2
            Kphi = mlp_members(l, Shp)
            Xp = Ap + _gaussian_rows(sd["fp"] ** 2 * 4 * d * Kphi.reshape(B, samples, T, T), d, rng)
            Sh = Shp.reshape(B, samples, T, T).mean(axis=1)
            _, r2, a2, b2 = _layernorm(K + Ko, d, eps)
            del Ap, Shp, Kphi, Kop
        elif pop:
            Kap = (Kp + Kop).reshape(B * samples, T, T)
            del Kop
            G2p, r2, a2, b2 = _layernorm(Kap, d, eps)
            Shp = sd["fc"] ** 2 * d * G2p
            Kphi = mlp_members(l, Shp)
            Kp = (Kap + sd["fp"] ** 2 * 4 * d * Kphi).reshape(B, samples, T, T)
            Sh = Shp.reshape(B, samples, T, T).mean(axis=1)
            r2, a2, b2 = (z.reshape(B, samples, T).mean(axis=1) for z in (r2, a2, b2))
            del Kap, G2p, Shp, Kphi
        else:
            Ka = K + Ko
            G2, r2, a2, b2 = _layernorm(Ka, d, eps)
            Sh = sd["fc"] ** 2 * d * G2
            qh = np.einsum("btt->bt", Sh)
            out["mlp_pre_var"][l] = qh.mean()
            out["gelu_mean"][l] = gaussian_expectation(phi, qh, act.centers).mean()
            Kphi = bivariate_kernel(phi, Sh, n_nodes, kinks=act.centers)
            out["gelu_sq"][l] = np.einsum("btt->bt", Kphi).mean()
            K = Ka + sd["fp"] ** 2 * 4 * d * Kphi
        saved.append((S, Sh, G1, (r1, a1, b1), (r2, a2, b2)))
    if carried:
        Kp = np.einsum("bmti,bmsi->bmts", Xp, Xp) / d
        del Xp
    if pop:
        K = Kp.mean(axis=1)
        del Kp

    # head and loss
    from ..symbolic.transformer import layernorm_expectation
    qL = np.einsum("btt->bt", K)
    rf = layernorm_expectation("second_moment", qL, d, eps)
    se2 = sd["e"] ** 2
    sigma2 = se2 * d * rf                                    # logits of tokens other than the input
    # the input token's logit (tied head): exact moments at each position's batch-mean K_L
    mom = np.array([input_logit_moments(d, sd["e"], k, eps) for k in qL.mean(0)])   # (T, 2)
    shift, s1sq = mom[:, 0], mom[:, 1]
    lvar = (V - 1) / V ** 2 * ((V - 1) * sigma2.mean(0) + s1sq + shift ** 2)
    p_rep = float(np.mean(np.asarray(targets) == idx)) if targets is not None else 1.0 / V
    # E[log S] at each position's batch-mean parameters (they vary little between sequences)
    logZ = np.mean([expected_log_partition(V, math.sqrt(a), b, math.sqrt(c)) for a, b, c in
                    zip(sigma2.mean(0), shift, s1sq)])
    head = {"final_resid_var": float(qL.mean()), "logit_var": float(lvar.mean()),
            "loss": float(logZ - p_rep * shift.mean())}

    # backward: Gamma[t, t'] = E[g_t . g_t'] / d, unit i.i.d. at the last block's output
    Gam = np.broadcast_to(np.eye(T), K.shape).copy()
    for l in reversed(range(L)):
        S, Sh, G1, (r1, a1, b1), (r2, a2, b2) = saved[l]
        # MLP branch
        Kdphi = bivariate_kernel(dphi, Sh, n_nodes, kinks=act.centers)
        Gu2 = sd["fc"] ** 2 * 4 * d * Kdphi * (sd["fp"] ** 2 * d * Gam)
        Ga = Gam + _layernorm_backward(Gu2, r2, a2, b2, d, eps, jac)
        # attention branch (gradient independence: g_y drawn independently of q, k, v)
        Gy = sd["o"] ** 2 * d * Ga
        attn = _Head(S, hs, samples, ss[2 * l], None if gram == "mean" else (G1, sd["qkv"], d))
        Q, Kk, Vv, P = attn.draw()
        rng = np.random.default_rng(ss[2 * l + 1])
        gY = _cholesky(np.broadcast_to(Gy, S.shape).copy())[:, None] @ rng.standard_normal(Q.shape)
        dV = np.swapaxes(P, -1, -2) @ gY
        dP = gY @ np.swapaxes(Vv, -1, -2)
        dZ = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
        dQ = dZ @ Kk / math.sqrt(hs)
        dK = np.swapaxes(dZ, -1, -2) @ Q / math.sqrt(hs)
        outer = sum(np.einsum("bmti,bmsi->bts", g_, g_) for g_ in (dQ, dK, dV)) / samples
        Gu1 = sd["qkv"] ** 2 * H * outer
        Gam = Ga + _layernorm_backward(Gu1, r1, a1, b1, d, eps, jac)
        out["grad_var"][l] = np.einsum("btt->bt", Gam).mean()
        del Q, Kk, Vv, P, gY, dV, dP, dZ, dQ, dK
    meta = {"prefix": prefix, "gram": gram, "covariance": covariance, "samples": samples, "seed": seed, "n_nodes": n_nodes, "config": config.to_dict(),
            "collision_probability": collision_probability(idx), "p_target_repeats_input": p_rep}
    blocks = LayerStats(out, se=out_se, source="theory", seed=seed, meta=meta)
    return TransformerStats(blocks, pos, pos_se, head, {}, meta, covs + [K])


def _layernorm_backward(Gu, r, a, b, d, eps, jac):
    """Gradient covariance at a LayerNorm's input from the one at its output (Gu, B x T x T)."""
    # diagonal: tr(J^T J)/d with 1/(v + eps) replaced by its expectation b (jac at v + eps = 1, times b);
    # off-diagonal: the two projections' common part (1 - 2/d) times E[(v+eps)^-1/2] at each position
    T = Gu.shape[-1]
    out = (1.0 - 2.0 / d) * Gu * a[:, :, None] * a[:, None, :]
    i = np.arange(T)
    out[:, i, i] = Gu[:, i, i] * jac(d, r, 1.0, 0.0) * b
    return out
