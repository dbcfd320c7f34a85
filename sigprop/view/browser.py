"""Drive the system's headless Chromium over the DevTools protocol (for the page's tests and timing).

No browser download and no driver: :func:`find_chromium` looks for the Debian
``chromium`` package's binary, :class:`Browser` starts it headless with a fresh
profile and ``--remote-debugging-port=0`` and talks to one tab over a websocket
(the ``websocket-client`` package, in the ``test`` extra).

Examples
--------
>>> find_chromium() is None or isinstance(find_chromium(), str)
True
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

#: Headless flags: no GPU, no sandbox (containers run as root), nothing that phones home.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$SIGPROP_CHROMIUM``, then ``chromium`` / ``chromium-browser`` on PATH)."""
    env = os.environ.get("SIGPROP_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium with one tab; use as a context manager.

    Events the tab sends are kept in :attr:`events` (``(method, params)``); enable a
    domain (``send("Network.enable")``) to receive its events.
    """

    def __init__(self, binary: str | None = None, width: int = 1400, height: int = 900, timeout: float = 30.0):
        import websocket
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise RuntimeError("no chromium found (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="sigprop-chromium-")
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            tabs = [t for t in json.load(r) if t.get("type") == "page"]
        self.ws = websocket.create_connection(tabs[0]["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self._id = 0
        self.events: list = []

    # --- protocol --------------------------------------------------------------------------
    def send(self, method: str, **params):
        """Call a DevTools method and return its result (events arriving meanwhile are kept)."""
        self._id += 1
        my = self._id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {})))

    def evaluate(self, expression: str, await_promise: bool = False):
        """Value of a JavaScript expression in the tab (exceptions raise RuntimeError)."""
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in r:
            raise RuntimeError(f"JavaScript error: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready === '1'",
             timeout: float = 30.0):
        """Navigate and wait until ``ready`` is true."""
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        deadline = time.time() + timeout
        while not self.evaluate(f"!!({ready})"):
            if time.time() > deadline:
                raise RuntimeError(f"page {url} did not become ready")
            time.sleep(0.05)

    def click(self, x: float, y: float):
        """A left mouse click at page coordinates, as a person makes it (press, release)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# The page's controls, driven as a person drives them
# ---------------------------------------------------------------------------------------------
def set_control(browser: Browser, element_id: str, value) -> float:
    """Set a select / slider / checkbox and fire the events a person's input fires; returns the
    milliseconds the page took to recompute and redraw (its handler runs synchronously)."""
    js = f"""(() => {{
      const el = document.getElementById({json.dumps(element_id)});
      const t0 = performance.now();
      if (el.type === 'checkbox') el.checked = {json.dumps(bool(value))}; else el.value = {json.dumps(str(value))};
      el.dispatchEvent(new Event('input', {{bubbles: true}}));
      el.dispatchEvent(new Event('change', {{bubbles: true}}));
      return performance.now() - t0;
    }})()"""
    return float(browser.evaluate(js))


def read_numbers(browser: Browser) -> dict:
    """The per-layer table the page shows: ``{column: [(value, flagged), ...]}``."""
    rows = browser.evaluate("""Array.from(document.querySelectorAll('#numbers tr')).map(
        tr => Array.from(tr.children).map(td => [td.textContent, td.classList.contains('flag')]))""")
    cols = ("layer", "q", "act_var", "grad_var", "corr", "chi1", "saturated", "dead")
    out = {c: [] for c in cols}
    for r in rows:
        for c, (text, flag) in zip(cols, r):
            out[c].append((_parse(text), flag))
    return out


def _parse(text: str) -> float:
    t = text.strip().replace("\u2212", "-")
    if t in ("–", "-", ""):
        return float("nan")
    if t in ("∞", "-∞"):
        return float("inf") if t == "∞" else float("-inf")
    return float(t)


def random_settings(n: int, seed: int = 12) -> list:
    """``n`` settings a person could make with the controls (values on the sliders' steps),
    cycling through the activations; half of them at depth 200."""
    import numpy as np
    from . import INITS, WIDTHS
    from .tables import ACTIVATIONS
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append({
            "act": ACTIVATIONS[i % len(ACTIVATIONS)],
            "init": list(INITS)[rng.integers(len(INITS))],
            "std_exp": round(float(rng.uniform(-4, 1)), 2),
            "sb": 0.0 if rng.random() < 0.3 else round(float(rng.uniform(0, 2)), 2),
            "depth": 200 if rng.random() < 0.5 else int(rng.integers(1, 201)),
            "width_index": int(rng.integers(len(WIDTHS))),
            "c0": round(float(rng.uniform(-0.99, 0.999)), 3),
        })
    return out


def spec_of(setting: dict):
    """The :class:`~sigprop.spec.NetSpec` a setting of the page describes (built from sigprop.init)."""
    from ..spec import NetSpec
    from . import INITS, WIDTHS
    s = setting
    name = INITS[s["init"]][1] if s["init"] != "scaled" else f"scaled({10 ** s['std_exp']!r})"
    return NetSpec.uniform(depth=s["depth"], width=WIDTHS[s["width_index"]], activation=s["act"], init=name,
                           sigma_b=s["sb"])


def apply_setting(browser: Browser, s: dict) -> list:
    """Move the controls to setting ``s``; the milliseconds each of the 7 changes took."""
    return [set_control(browser, "act", s["act"]), set_control(browser, "init", s["init"]),
            set_control(browser, "std", s["std_exp"]), set_control(browser, "sb", s["sb"]),
            set_control(browser, "depth", s["depth"]), set_control(browser, "width", s["width_index"]),
            set_control(browser, "c0", s["c0"])]
