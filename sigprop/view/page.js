// sigprop view: the mean-field recursion of sigprop.theory.predict, run on embedded tables.
// DATA (inline JSON) holds per-activation tables made by sigprop.theory, the init rules,
// finite-width laws and Monte Carlo presets; RECURSIONS (generated from the sympy
// derivations) holds forward_variance, backward_variance, covariance_map and chi1.
"use strict";

// ---------------------------------------------------------------- decoding and interpolation
function decode(b64, kind) {
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return kind === "f32" ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
}

const STENCIL = 6;
// weights of the 6-point Lagrange stencil (nodes 0..5) at offset u
function lagrange(u, w) {
  for (let j = 0; j < STENCIL; j++) {
    let p = 1;
    for (let m = 0; m < STENCIL; m++) if (m !== j) p *= (u - m) / (j - m);
    w[j] = p;
  }
  return w;
}
const _wx = new Float64Array(STENCIL), _wv = new Float64Array(STENCIL);

// first stencil node and offset around grid position t (clamped; reflect: may start below 0)
function stencil(t, n, reflect) {
  let i = Math.floor(t) - (STENCIL / 2 - 1);
  const lo = reflect ? -(STENCIL / 2 - 1) : 0;
  i = Math.min(Math.max(i, lo), n - STENCIL);
  return [i, t - i];
}

// log-moment table at x = log q; power law beyond the ends
function interp1(tab, g, x) {
  const v = tab.values, n = g.n, t = (x - g.x0) / g.h;
  if (t < 0) return v[0] + tab.slope_lo * g.h * t;
  if (t > n - 1) return v[n - 1] + tab.slope_hi * g.h * (t - (n - 1));
  const [i, u] = stencil(t, n, false);
  lagrange(u, _wx);
  let s = 0;
  for (let j = 0; j < STENCIL; j++) s += _wx[j] * v[i + j];
  return s;
}

// k(q, c) = E[phi(u1) phi(u2)] / E[phi(u)^2] from the kernel table (see tables.py)
function kernel(act, q, c) {
  const K = act.kernel, nv = K.nv, odd = act.odd;
  const half = (c < 0 && !odd) ? 1 : 0;
  const ac = Math.min(Math.abs(c), 1);
  // theta = arccos|c| without losing digits near |c| = 1
  const theta = 2 * Math.asin(Math.sqrt((1 - ac) / 2));
  const qq = K.nx === 1 ? 1 : q;
  const s = Math.sqrt(1 + qq);
  const v = Math.asinh(theta * s) / Math.asinh(Math.PI / 2 * s);
  const [j, uv] = stencil(Math.min(Math.max(v, 0), 1) * (nv - 1), nv, true);
  lagrange(uv, _wv);
  const halves = odd ? 1 : 2, vals = K.values;
  let out = 0;
  if (K.nx === 1) {
    for (let b = 0; b < STENCIL; b++) out += _wv[b] * vals[(half) * nv + Math.abs(j + b)];
  } else {
    const tx = Math.min(Math.max((Math.log(q) - K.x0) / K.h, 0), K.nx - 1);
    const [i, ux] = stencil(tx, K.nx, false);
    lagrange(ux, _wx);
    for (let a = 0; a < STENCIL; a++) {
      let row = 0;
      const base = ((i + a) * halves + half) * nv;
      for (let b = 0; b < STENCIL; b++) row += _wv[b] * vals[base + Math.abs(j + b)];
      out += _wx[a] * row;
    }
  }
  return odd ? out * c : out;
}

// ---------------------------------------------------------------- normal CDF with tail accuracy
// erfc(x), x >= 0: series of erf below 3 (positive terms), continued fraction above
function erfc(x) {
  if (x < 0) return 2 - erfc(-x);
  if (x < 3) {
    // erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1 3 5 ... (2n+1))
    let term = x, sum = x;
    for (let n = 1; n < 200; n++) {
      term *= 2 * x * x / (2 * n + 1);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return 1 - 2 / Math.sqrt(Math.PI) * Math.exp(-x * x) * sum;
  }
  // erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated bottom-up
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + (k / 2) / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
function normalCdf(z) {
  if (z === Infinity) return 1;
  if (z === -Infinity) return 0;
  return 0.5 * erfc(-z / Math.SQRT2);
}

// ---------------------------------------------------------------- the recursion (as theory.predict)
const TINY = 1e-280, HUGE = 1e280;
function acts() { return DATA.activations; }

function sigmaW(state) {
  const rule = DATA.inits[state.init].rules[state.act];
  const a = state.init === "scaled" ? state.std : rule.a;
  return a * Math.pow(state.width, rule.p);
}

function propagate(state) {
  const act = acts()[state.act], g = act.moment_grid, L = state.depth, n = state.width;
  const sw = sigmaW(state), sw2 = sw * sw, sb2 = state.sb * state.sb;
  const R = RECURSIONS;
  const out = { sigma_w: sw, q: [], act_var: [], act_sq: [], grad_var: new Array(L), corr: [], chi1: [],
                saturated: [], dead: [], flag: [], corr_flag: [] };
  const dphi2 = [];
  let m2Prev = DATA.input_var, crossPrev = state.c0 * DATA.input_var, corrOut = false, broken = false;
  for (let l = 0; l < L; l++) {
    // q_l = n_in Var(W) E[x^2] + Var(b)
    const q = R.forward_variance(n, sw2 / n, m2Prev, sb2);
    // c_l = (sigma_w^2 E[x_a x_b] + sigma_b^2) / q_l
    let c = R.covariance_map(sw2, crossPrev, sb2) / q;
    if (c > 1 && c - 1 < 1e-12) c = 1;
    broken = broken || !(q > TINY && q < HUGE);
    let m2 = NaN, d2 = NaN, v = NaN, cross = NaN;
    if (!broken) {
      const x = Math.log(q);
      m2 = Math.exp(interp1(act.moments.log_m2, g, x));
      d2 = Math.exp(interp1(act.moments.log_dphi2, g, x));
      v = Math.exp(interp1(act.moments.log_var, g, x));
      corrOut = corrOut || q > act.kernel.q_max || !isFinite(c);
      cross = m2 * kernel(act, q, Math.max(-1, Math.min(1, c)));
    }
    const s = Math.sqrt(q), cut = act.saturation_cutoffs;
    out.q.push(q); out.corr.push(c); out.act_sq.push(m2); out.act_var.push(v);
    out.saturated.push(cut ? normalCdf(cut[0] / s) + normalCdf(-cut[1] / s) : NaN);
    let dead = 0;
    for (const [a, b] of act.dead_intervals) dead += normalCdf(b / s) - normalCdf(a / s);
    out.dead.push(dead);
    out.chi1.push(R.chi1(sw2, d2));
    out.flag.push(broken);
    out.corr_flag.push(broken || corrOut);
    dphi2.push(d2);
    m2Prev = m2; crossPrev = cross;
  }
  // grad_var[L] = E[phi'(h_L)^2];  Var(dL/dh_l) = n_{l+1} Var(W_{l+1}) E[phi'(h_l)^2] Var(dL/dh_{l+1})
  let gv = dphi2[L - 1];
  out.grad_var[L - 1] = gv;
  for (let l = L - 2; l >= 0; l--) { gv = R.backward_variance(n, sw2 / n, dphi2[l], gv); out.grad_var[l] = gv; }
  out.grad_flag = out.grad_var.map((x, l) => out.flag[L - 1] || !(Math.abs(x) > TINY && Math.abs(x) < HUGE));
  return out;
}

// chi_1 at the q fixed point, approached by 200 layers of the q-map (0 / inf: q vanishes / explodes)
function chiAtFixedPoint(act, sw, sb) {
  const g = act.moment_grid, sw2 = sw * sw, sb2 = sb * sb;
  let q = sw2 * DATA.input_var + sb2;
  for (let it = 0; it < 200; it++) {
    if (!(q > TINY && q < HUGE)) return q >= HUGE ? Infinity : 0;
    const qn = RECURSIONS.covariance_map(sw2, Math.exp(interp1(act.moments.log_m2, g, Math.log(q))), sb2);
    if (Math.abs(qn - q) < 1e-12 * q) { q = qn; break; }
    q = qn;
  }
  if (!(q > TINY && q < HUGE)) return q >= HUGE ? Infinity : 0;
  return RECURSIONS.chi1(sw2, Math.exp(interp1(act.moments.log_dphi2, g, Math.log(q))));
}

// ---------------------------------------------------------------- finite width
// 10-90% band of ||x_l||^2 / n: log-normal with Var[log] from sigprop.finite_width (relu, linear)
const Z90 = 1.2815515655446004;
function finiteBand(state, res) {
  const preset = matchingPreset(state);
  if (preset && preset.mc.norm_q10) return { lo: preset.mc.norm_q10, hi: preset.mc.norm_q90, mid: preset.mc.norm_q50,
                                               source: `Monte Carlo, ${preset.mc.networks} networks (preset)` };
  const fw = DATA.finite_width[state.act];
  const dist = DATA.inits[state.init].distribution;
  if (!fw || state.sb !== 0 || dist !== "normal") return null;
  const k = DATA.widths.indexOf(state.width);
  const lo = [], hi = [], mid = [];
  for (let l = 0; l < state.depth; l++) {
    // Var[log ||x_l||^2] = psi'(n_0/2) + sum_{k <= l} V(n_k)
    const V = fw.input[k] + (l + 1) * fw.layer[k], m = res.act_sq[l];
    lo.push(m * Math.exp(-V / 2 - Z90 * Math.sqrt(V)));
    hi.push(m * Math.exp(-V / 2 + Z90 * Math.sqrt(V)));
    mid.push(m * Math.exp(-V / 2));
  }
  return { lo, hi, mid, source: "exact Var[log ||x||^2] (sigprop.finite_width), log-normal quantiles" };
}

function matchingPreset(state) {
  for (const p of DATA.presets) {
    const s = p.state;
    if (s.act === state.act && s.init === state.init && s.depth === state.depth && s.width === state.width &&
        s.sb === state.sb && (s.init !== "scaled" || Math.abs(s.std / state.std - 1) < 1e-9)) return p;
  }
  return null;
}

// ---------------------------------------------------------------- verdict
function fmt(x, d) {
  if (x === undefined || Number.isNaN(x)) return "–";
  if (!isFinite(x)) return x > 0 ? "∞" : "-∞";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return (a >= 1e4 || a < 1e-3) ? x.toExponential(d === undefined ? 2 : d - 1) : x.toPrecision(d === undefined ? 3 : d);
}
function verdict(state, res) {
  const L = state.depth, last = L - 1;
  if (res.flag[last]) {
    const l = res.flag.indexOf(true) + 1;
    return { cls: res.q[l - 1] >= HUGE ? "bad" : "bad",
             text: (res.q[l - 1] >= HUGE || !isFinite(res.q[l - 1]) ? "exploding" : "vanishing") +
                   `: q leaves floating point range at layer ${l}` };
  }
  const sat = res.saturated[last];
  if (sat > 0.5) return { cls: "bad", text: `saturated: ${(100 * sat).toFixed(0)}% of units at layer ${L}` };
  const r = res.q[last] / res.q[0], gr = res.grad_var[0] / res.grad_var[last];
  const tag = `q_${L}/q_1 = ${fmt(r)}, Var(dL/dh_1)/Var(dL/dh_${L}) = ${fmt(gr)}`;
  if (r < 1e-2) return { cls: "bad", text: `vanishing: ${tag}` };
  if (r > 1e2) return { cls: "bad", text: `exploding: ${tag}` };
  if (gr < 1e-2) return { cls: "bad", text: `vanishing gradients: ${tag}` };
  if (gr > 1e2) return { cls: "bad", text: `exploding gradients: ${tag}` };
  return { cls: "good", text: `stable: ${tag}` };
}

// ---------------------------------------------------------------- drawing
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
function niceLogTicks(lo, hi) {
  const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi)), step = Math.max(1, Math.ceil((b - a) / 6));
  const t = [];
  for (let e = a; e <= b; e += step) t.push(Math.pow(10, e));
  return t;
}
function linTicks(lo, hi) {
  const span = hi - lo, raw = span / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
  const t = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) t.push(Math.abs(v) < 1e-12 ? 0 : v);
  return t;
}
function setupCanvas(cv) {
  const dpr = window.devicePixelRatio || 1, w = cv.clientWidth, h = cv.clientHeight;
  if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
  const ctx = cv.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return [ctx, w, h];
}

// series: [{y: [], color, dash, label, band: {lo, hi}}]; x = layer 1..L
function plot(cv, opts) {
  const [ctx, W, H] = setupCanvas(cv);
  const m = { l: 52, r: 10, t: 18, b: 28 }, pw = W - m.l - m.r, ph = H - m.t - m.b;
  const xs = opts.x;
  // hidden (predict first): a fixed range, so the axes do not give the answer away
  if (opts.hidden && opts.log) opts.ylim = [1e-8, 1e8];
  let ylo = opts.ylim ? opts.ylim[0] : Infinity, yhi = opts.ylim ? opts.ylim[1] : -Infinity;
  if (!opts.ylim) {
    for (const s of opts.series) for (const arr of [s.y, s.band && s.band.lo, s.band && s.band.hi]) {
      if (!arr) continue;
      arr.forEach((v, i) => { if (s.hide && s.hide[i]) return; if (isFinite(v) && (!opts.log || v > 0)) { ylo = Math.min(ylo, v); yhi = Math.max(yhi, v); } });
    }
    if (!isFinite(ylo)) { ylo = opts.log ? 0.1 : 0; yhi = opts.log ? 10 : 1; }
    if (opts.log) { if (yhi / ylo < 10) { const g = Math.sqrt(10 * ylo / yhi); ylo /= g; yhi *= g; } }
    else if (yhi - ylo < 1e-9) { ylo -= 0.5; yhi += 0.5; }
  }
  const ty = v => opts.log ? Math.log10(v) : v;
  const Y = v => m.t + ph * (1 - (ty(v) - ty(ylo)) / (ty(yhi) - ty(ylo)));
  const x0 = xs[0], x1 = xs[xs.length - 1] === x0 ? x0 + 1 : xs[xs.length - 1];
  const X = v => m.l + pw * (v - x0) / (x1 - x0);
  ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#444"; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const t of (opts.log ? niceLogTicks(ylo, yhi) : linTicks(ylo, yhi))) {
    if (t < ylo * (1 - 1e-9) || t > yhi * (1 + 1e-9) + (opts.log ? 0 : 1e-12)) continue;
    ctx.beginPath(); ctx.moveTo(m.l, Y(t)); ctx.lineTo(m.l + pw, Y(t)); ctx.stroke();
    ctx.fillText(opts.log ? "1e" + Math.round(Math.log10(t)) : String(+t.toPrecision(3)), m.l - 4, Y(t));
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const t of linTicks(x0, x1)) { if (t % 1 === 0 && t >= x0) ctx.fillText(String(t), X(t), m.t + ph + 4); }
  ctx.strokeStyle = "#888"; ctx.strokeRect(m.l, m.t, pw, ph);
  ctx.textAlign = "left"; ctx.fillStyle = "#222"; ctx.font = "bold 12px system-ui, sans-serif";
  ctx.fillText(opts.title, m.l, 2);
  ctx.font = "11px system-ui, sans-serif";
  ctx.save(); ctx.beginPath(); ctx.rect(m.l, m.t, pw, ph); ctx.clip();
  const clampY = v => Math.max(m.t - 5, Math.min(m.t + ph + 5, Y(v)));
  if (!opts.hidden) for (const s of opts.series) {
    if (s.band) {
      ctx.fillStyle = s.bandColor || "rgba(31,119,180,0.18)"; ctx.beginPath();
      s.band.lo.forEach((v, i) => { const p = [X(xs[i]), clampY(v)]; i ? ctx.lineTo(...p) : ctx.moveTo(...p); });
      for (let i = s.band.hi.length - 1; i >= 0; i--) ctx.lineTo(X(xs[i]), clampY(s.band.hi[i]));
      ctx.closePath(); ctx.fill();
    }
    if (!s.y) continue;
    ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.8; ctx.setLineDash(s.dash || []);
    ctx.beginPath(); let pen = false;
    s.y.forEach((v, i) => {
      const ok = isFinite(v) && (!opts.log || v > 0) && !(s.hide && s.hide[i]);
      if (!ok) { pen = false; return; }
      const p = [X(xs[i]), clampY(v)];
      pen ? ctx.lineTo(...p) : ctx.moveTo(...p); pen = true;
    });
    ctx.stroke(); ctx.setLineDash([]);
    if (xs.length <= 40) { ctx.fillStyle = s.color; s.y.forEach((v, i) => { if (isFinite(v) && (!opts.log || v > 0)) { ctx.beginPath(); ctx.arc(X(xs[i]), clampY(v), 2, 0, 7); ctx.fill(); } }); }
  }
  if (opts.marker) {
    ctx.fillStyle = "#000"; ctx.strokeStyle = "#000";
    const [mx, my] = [X(opts.marker.x), clampY(opts.marker.y)];
    ctx.beginPath(); ctx.moveTo(mx - 6, my - 6); ctx.lineTo(mx + 6, my + 6); ctx.moveTo(mx + 6, my - 6); ctx.lineTo(mx - 6, my + 6); ctx.lineWidth = 2; ctx.stroke();
  }
  ctx.restore();
  // legend
  let lx = m.l + pw - 4;
  ctx.textAlign = "right"; ctx.textBaseline = "top";
  for (const s of opts.series.slice().reverse()) {
    if (!s.label) continue;
    ctx.fillStyle = s.color || "#444"; ctx.fillText(s.label, lx, m.t + 3);
    lx -= ctx.measureText(s.label).width + 12;
  }
  cv._axes = { X, Y, m, pw, ph, x0, x1, ylo, yhi, log: opts.log };
}

function drawHistogram(cv, state, res) {
  const [ctx, W, H] = setupCanvas(cv);
  const m = { l: 40, r: 10, t: 18, b: 28 }, pw = W - m.l - m.r, ph = H - m.t - m.b;
  const l = Math.min(state.hlayer, state.depth) - 1, q = res.q[l], s = Math.sqrt(q);
  ctx.fillStyle = "#222"; ctx.font = "bold 12px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "top";
  ctx.fillText(`h at layer ${l + 1} / sqrt(q_l), sqrt(q_l) = ${fmt(s)}`, m.l, 2);
  ctx.font = "11px system-ui, sans-serif";
  const zmax = 4, X = z => m.l + pw * (z + zmax) / (2 * zmax);
  const dens = z => Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
  let top = 0.45;
  const preset = matchingPreset(state);
  const hist = preset && preset.mc.hist ? preset.mc.hist[l] : null;
  if (hist) { const bw = 2 * zmax / hist.length, tot = hist.reduce((a, b) => a + b, 0); top = Math.max(top, ...hist.map(c => c / tot / bw)); }
  const Y = d => m.t + ph * (1 - d / (top * 1.05));
  ctx.strokeStyle = "#888"; ctx.strokeRect(m.l, m.t, pw, ph);
  ctx.fillStyle = "#444"; ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (let z = -zmax; z <= zmax; z++) ctx.fillText(String(z), X(z), m.t + ph + 4);
  if (state.hidden) return;
  if (hist) {
    const bw = 2 * zmax / hist.length, tot = hist.reduce((a, b) => a + b, 0);
    ctx.fillStyle = "rgba(255,127,14,0.45)";
    hist.forEach((c, i) => { const z = -zmax + i * bw, d = c / tot / bw; ctx.fillRect(X(z), Y(d), X(z + bw) - X(z) - 1, m.t + ph - Y(d)); });
  }
  const cut = acts()[state.act].saturation_cutoffs;
  if (cut) {
    ctx.fillStyle = "rgba(214,39,40,0.12)";
    const a = Math.max(-zmax, cut[0] / s), b = Math.min(zmax, cut[1] / s);
    if (a > -zmax) ctx.fillRect(m.l, m.t, X(a) - m.l, ph);
    if (b < zmax) ctx.fillRect(X(b), m.t, m.l + pw - X(b), ph);
  }
  ctx.strokeStyle = COLORS[0]; ctx.lineWidth = 2; ctx.beginPath();
  for (let i = 0; i <= 200; i++) { const z = -zmax + 2 * zmax * i / 200; i ? ctx.lineTo(X(z), Y(dens(z))) : ctx.moveTo(X(z), Y(dens(z))); }
  ctx.stroke();
  ctx.textAlign = "right"; ctx.fillStyle = COLORS[0];
  ctx.fillText("theory N(0, q_l)", m.l + pw - 4, m.t + 3);
  if (hist) { ctx.fillStyle = "#c65f00"; ctx.fillText(`Monte Carlo (${preset.mc.networks} networks)`, m.l + pw - 4, m.t + 16); }
  else { ctx.fillStyle = "#777"; ctx.fillText("Monte Carlo samples: choose a preset", m.l + pw - 4, m.t + 16); }
  if (cut) { ctx.fillStyle = "#d62728"; ctx.fillText("saturated region", m.l + pw - 4, m.t + 29); }
}

const PHASE = { sw: [0.05, 4], sb: [0, 2], n: 32, cache: {} };
function phaseGrid(name) {
  if (PHASE.cache[name]) return PHASE.cache[name];
  const act = acts()[name], grid = [];
  for (let j = 0; j < PHASE.n; j++) {
    const sb = PHASE.sb[0] + (PHASE.sb[1] - PHASE.sb[0]) * (j + 0.5) / PHASE.n, row = [];
    for (let i = 0; i < PHASE.n; i++) {
      const sw = PHASE.sw[0] + (PHASE.sw[1] - PHASE.sw[0]) * (i + 0.5) / PHASE.n;
      row.push(chiAtFixedPoint(act, sw, sb));
    }
    grid.push(row);
  }
  return (PHASE.cache[name] = grid);
}

function about() {
  const e = DATA.errors, worstM = Math.max(...Object.values(e).map(x => x.moments_rel)),
        worstK = Math.max(...Object.values(e).map(x => x.kernel_abs)), T = DATA.tables;
  $("about").innerHTML = `<b>How these numbers are made.</b> The recursion of <code>sigprop.theory.predict</code>
   (formulas printed from sigprop's sympy derivations) runs here on tables made by <code>sigprop.theory</code>:
   E[φ²], E[φ'²], Var φ on ${T.per_decade_1d} points per decade of q in [${fmt(T.moment_q[0])}, ${fmt(T.moment_q[1])}],
   the correlation kernel on a (log q, angle) grid (${T.per_decade_2d} per decade, q ≤ ${fmt(T.kernel_q[1])}), 6-point
   Lagrange interpolation. Largest interpolation error at cell midpoints: ${fmt(worstM)} relative (moments; SELU's
   closed form is itself noisy below q = 1e-9), ${fmt(worstK)} absolute (kernel). Tested against
   <code>theory.predict</code> in headless Chromium to 1e-3 relative, depth up to 200.`;
}

function drawPhase(cv, state, res) {
  const [ctx, W, H] = setupCanvas(cv);
  const m = { l: 40, r: 10, t: 18, b: 28 }, pw = W - m.l - m.r, ph = H - m.t - m.b;
  const grid = phaseGrid(state.act);
  const X = sw => m.l + pw * (sw - PHASE.sw[0]) / (PHASE.sw[1] - PHASE.sw[0]);
  const Y = sb => m.t + ph * (1 - (sb - PHASE.sb[0]) / (PHASE.sb[1] - PHASE.sb[0]));
  const cw = pw / PHASE.n, chh = ph / PHASE.n;
  for (let j = 0; j < PHASE.n; j++) for (let i = 0; i < PHASE.n; i++) {
    const chi = grid[j][i];
    // log chi_1: blue (ordered) .. white (critical) .. red (chaotic)
    const t = Math.max(-1, Math.min(1, Math.log(chi) / Math.log(4)));
    const col = !isFinite(chi) ? "#bbb" : t < 0 ? `rgb(${Math.round(255 * (1 + t))},${Math.round(255 * (1 + 0.6 * t))},255)`
                                                : `rgb(255,${Math.round(255 * (1 - t))},${Math.round(255 * (1 - t))})`;
    ctx.fillStyle = col; ctx.fillRect(m.l + i * cw, m.t + (PHASE.n - 1 - j) * chh, cw + 0.5, chh + 0.5);
  }
  const edge = DATA.edge_of_chaos[state.act];
  ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.beginPath();
  edge.sigma_w.forEach((sw, i) => { const p = [X(sw), Y(edge.sigma_b[i])]; i ? ctx.lineTo(...p) : ctx.moveTo(...p); });
  ctx.stroke();
  const sw = res.sigma_w;
  ctx.fillStyle = "#000"; ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5;
  const px = X(Math.min(sw, PHASE.sw[1])), py = Y(Math.min(state.sb, PHASE.sb[1]));
  ctx.beginPath(); ctx.arc(px, py, 5, 0, 7); ctx.fill(); ctx.stroke();
  if (sw > PHASE.sw[1]) { ctx.fillStyle = "#000"; ctx.textAlign = "right"; ctx.fillText(`σw = ${fmt(sw)} →`, px - 8, py - 8); }
  ctx.strokeStyle = "#888"; ctx.lineWidth = 1; ctx.strokeRect(m.l, m.t, pw, ph);
  ctx.fillStyle = "#222"; ctx.font = "bold 12px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "top";
  ctx.fillText("χ1 at q*: ordered (blue), chaotic (red), edge", m.l, 2);
  ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#444"; ctx.textAlign = "center";
  for (const t of linTicks(0, 4)) ctx.fillText(String(t), X(t), m.t + ph + 4);
  ctx.fillText("σw", m.l + pw / 2, m.t + ph + 14);
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const t of linTicks(0, 2)) ctx.fillText(String(t), m.l - 4, Y(t));
  ctx.save(); ctx.translate(10, m.t + ph / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center"; ctx.fillText("σb", 0, 0); ctx.restore();
}

// ---------------------------------------------------------------- state, controls, rendering
const $ = id => document.getElementById(id);
const STATE = { act: "tanh", init: "kaiming_in", std: 0.1, sb: 0, depth: 50, width: 256, c0: 0.5, hlayer: 50,
                predict: false, guess: null, hidden: false };
let RESULT = null;

function readControls() {
  STATE.act = $("act").value;
  STATE.init = $("init").value;
  STATE.std = Math.pow(10, +$("std").value);
  STATE.sb = +$("sb").value;
  STATE.depth = +$("depth").value;
  STATE.width = DATA.widths[+$("width").value];
  STATE.c0 = +$("c0").value;
  STATE.hlayer = Math.min(+$("hlayer").value, STATE.depth);
  STATE.predict = $("predict").checked;
}

function writeControls(s) {
  $("act").value = s.act; $("init").value = s.init; $("std").value = Math.log10(s.std);
  $("sb").value = s.sb; $("depth").value = s.depth; $("width").value = DATA.widths.indexOf(s.width);
  $("c0").value = s.c0; $("hlayer").value = s.hlayer || s.depth;
}

function labels() {
  $("std-out").textContent = fmt(STATE.std);
  $("std-row").style.opacity = STATE.init === "scaled" ? 1 : 0.45;
  $("sb-out").textContent = STATE.sb.toFixed(2);
  $("depth-out").textContent = STATE.depth;
  $("width-out").textContent = STATE.width;
  $("c0-out").textContent = STATE.c0.toFixed(3);
  $("hlayer").max = STATE.depth;
  $("hlayer-out").textContent = STATE.hlayer;
}

const SERIES = ["q", "act_var", "grad_var", "corr", "chi1", "saturated", "dead"];
function writeTable(res) {
  const L = STATE.depth, rows = [];
  const cell = (v, bad) => bad ? `<td class="flag">${fmt(v, 6)}</td>` : `<td>${fmt(v, 6)}</td>`;
  for (let l = 0; l < L; l++) {
    rows.push(`<tr><td>${l + 1}</td>` + cell(res.q[l], res.flag[l]) + cell(res.act_var[l], res.flag[l]) +
              cell(res.grad_var[l], res.grad_flag[l]) + cell(res.corr[l], res.corr_flag[l]) +
              cell(res.chi1[l], res.flag[l]) + cell(res.saturated[l], res.flag[l]) + cell(res.dead[l], res.flag[l]) + "</tr>");
  }
  $("numbers").innerHTML = rows.join("");
}

function render() {
  const t0 = performance.now();
  readControls(); labels();
  const res = propagate(STATE);
  RESULT = res;
  const L = STATE.depth, xs = Array.from({ length: L }, (_, i) => i + 1);
  const hidden = STATE.predict && STATE.guess === null;
  STATE.hidden = hidden;
  const v = verdict(STATE, res);
  $("verdict").textContent = hidden ? "predict first: click in the activation-variance panel where you expect layer " + L + " to land" : v.text;
  $("verdict").className = hidden ? "ask" : v.cls;
  $("sigma-w").textContent = fmt(res.sigma_w, 4);
  const flagged = res.flag.map((f, i) => f);
  plot($("p-q"), { title: "pre-activation variance q_l", x: xs, log: true, hidden,
                   series: [{ y: res.q, color: COLORS[0], hide: flagged }] });
  const band = finiteBand(STATE, res);
  const guess = STATE.guess;
  plot($("p-act"), { title: "activation variance Var[φ(h_l)]", x: xs, log: true, hidden,
                     series: [{ y: res.act_var, color: COLORS[0], hide: flagged, label: "mean field" }],
                     marker: guess ? { x: L, y: guess } : null });
  plot($("p-grad"), { title: "gradient variance Var(dL/dh_l)", x: xs, log: true, hidden,
                      series: [{ y: res.grad_var, color: COLORS[1], hide: res.grad_flag }] });
  plot($("p-corr"), { title: "correlation c_l of two inputs", x: xs, log: false, ylim: [-1, 1], hidden,
                      series: [{ y: res.corr, color: COLORS[2], hide: res.corr_flag }] });
  plot($("p-frac"), { title: "saturated and dead fractions", x: xs, log: false, ylim: [0, 1], hidden,
                      series: [{ y: res.saturated, color: COLORS[1], label: "saturated", hide: flagged },
                               { y: res.dead, color: "#555", dash: [5, 3], label: "dead", hide: flagged }] });
  const fwSeries = [{ y: res.act_sq, color: COLORS[0], label: "mean field E[x²]", hide: flagged }];
  if (band) fwSeries.unshift({ y: band.mid, color: COLORS[4], dash: [4, 3], label: "median", band: { lo: band.lo, hi: band.hi }, bandColor: "rgba(255,127,14,0.25)" });
  plot($("p-fw"), { title: "finite width: ||x_l||²/n, 10–90% band", x: xs, log: true, hidden, series: fwSeries });
  $("fw-note").textContent = band ? `band: ${band.source}` :
    "band: derived for ReLU/linear with Gaussian weights and σb = 0; Monte Carlo for the presets";
  drawHistogram($("p-hist"), STATE, res);
  drawPhase($("p-phase"), STATE, res);
  if (STATE.predict && guess !== null) {
    const ans = res.act_var[L - 1], ratio = guess / ans;
    $("guess-out").textContent = `your guess ${fmt(guess)}, answer ${fmt(ans)} (off by ×${fmt(ratio >= 1 ? ratio : 1 / ratio)})`;
  } else $("guess-out").textContent = "";
  writeTable(res);
  const ms = performance.now() - t0;
  window.sigpropLastUpdateMs = ms;
  $("timing").textContent = `updated in ${ms.toFixed(1)} ms`;
}

function onControl(e) {
  if (e && e.target && e.target.id !== "hlayer") STATE.guess = null;
  render();
}

function init() {
  if (!DATA.activations[STATE.act]) STATE.act = Object.keys(DATA.activations)[0];
  const sel = $("act");
  for (const name of Object.keys(DATA.activations)) sel.add(new Option(name, name));
  const isel = $("init");
  for (const [key, d] of Object.entries(DATA.inits)) isel.add(new Option(d.label, key));
  const psel = $("preset");
  DATA.presets.forEach((p, i) => psel.add(new Option(p.label, String(i))));
  $("width").max = DATA.widths.length - 1;
  writeControls(STATE);
  for (const id of ["act", "init", "std", "sb", "depth", "width", "c0", "hlayer", "predict"]) {
    $(id).addEventListener("input", onControl);
    $(id).addEventListener("change", onControl);
  }
  psel.addEventListener("change", () => {
    if (psel.value === "") return;
    const p = DATA.presets[+psel.value];
    writeControls(Object.assign({}, STATE, p.state, { hlayer: p.state.depth }));
    STATE.guess = null; render();
  });
  $("p-act").addEventListener("click", e => {
    if (!STATE.predict) return;
    const a = $("p-act")._axes, r = $("p-act").getBoundingClientRect(), y = e.clientY - r.top;
    const f = 1 - (y - a.m.t) / a.ph;
    STATE.guess = Math.pow(10, Math.log10(a.ylo) + f * (Math.log10(a.yhi) - Math.log10(a.ylo)));
    render();
  });
  window.addEventListener("resize", render);
  render();
  about();
  // the phase diagrams of the other activations are computed while the page is idle
  const todo = Object.keys(DATA.activations).filter(a => !PHASE.cache[a]);
  const next = () => { const a = todo.shift(); if (a === undefined) return; phaseGrid(a); setTimeout(next, 0); };
  setTimeout(next, 0);
  document.body.dataset.ready = "1";
}
window.addEventListener("DOMContentLoaded", init);
