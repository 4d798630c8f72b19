"""Load a page in headless Chromium at a given window size and report what its layout hides.

Usage: layout.py CHROMIUM URL WIDTH HEIGHT READY_JS

Drives the browser over the DevTools protocol (an ordinary client: the `websockets` package),
waits until READY_JS (a JavaScript expression) is true, then prints one JSON object:
  clipped: drawn things (SVG text, bars, lines; the cards' own children) whose box reaches outside
           what shows them: an SVG's drawing area (its content box, inside any padding), the card
           around them, or the window's width;
  bars:    the labels of every `[data-bar]` group, in order, per chart (`h2` before it).
Exits non-zero (with the reason on stderr) when the page never gets ready.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

from websockets.sync.client import connect

CHECK = r"""
(() => {
  const px = (v) => parseFloat(v) || 0;
  const inner = (el) => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return { left: r.left + px(s.borderLeftWidth) + px(s.paddingLeft),
             right: r.right - px(s.borderRightWidth) - px(s.paddingRight),
             top: r.top + px(s.borderTopWidth) + px(s.paddingTop),
             bottom: r.bottom - px(s.borderBottomWidth) - px(s.paddingBottom) };
  };
  const outside = (r, box) => r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 ||
                                              r.top < box.top - 1 || r.bottom > box.bottom + 1);
  const name = (el) => (el.textContent || "").trim().slice(0, 40) || el.tagName.toLowerCase();
  const clipped = [];
  const view = { left: 0, right: document.documentElement.clientWidth, top: -1e9, bottom: 1e9 };
  document.querySelectorAll("main svg").forEach((svg) => {
    const area = inner(svg);
    svg.querySelectorAll("text, rect, polyline, line").forEach((el) => {
      const r = el.getBoundingClientRect();
      if (outside(r, area)) clipped.push(`${name(el)} (outside its chart's drawing area)`);
      if (outside(r, view)) clipped.push(`${name(el)} (outside the window)`);
    });
  });
  document.querySelectorAll("main .card").forEach((card) => {
    const box = card.getBoundingClientRect();
    [...card.children].forEach((el) => {
      if (outside(el.getBoundingClientRect(), box)) clipped.push(`${name(el)} (outside its card)`);
    });
    if (outside(box, view)) clipped.push(`${name(card)} (card outside the window)`);
  });
  const bars = {};
  document.querySelectorAll("main h2").forEach((h) => {
    const next = h.nextElementSibling;
    if (next) bars[h.textContent.trim()] = [...next.querySelectorAll("[data-bar]")].map((g) => g.dataset.bar);
  });
  return JSON.stringify({ clipped, bars });
})()
"""


class Page:
    """One page target of the browser, over a flattened DevTools session."""

    def __init__(self, ws):
        self.ws, self.next_id, self.session = ws, 0, None

    def call(self, method, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv(timeout=30))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def main():
    chromium, url, width, height, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    profile = tempfile.mkdtemp(prefix="splai-layout-")
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         f"--window-size={width},{height}", "about:blank"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        endpoint = None
        for line in browser.stderr:
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                endpoint = m.group(1)
                break
        if not endpoint:
            sys.exit("chromium did not open its DevTools endpoint")
        with connect(endpoint, max_size=None) as ws:
            page = Page(ws)
            target = page.call("Target.createTarget", url="about:blank")["targetId"]
            page.session = page.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            page.call("Page.navigate", url=url)
            deadline = time.monotonic() + 20
            while not page.evaluate(f"Boolean({ready})"):
                if time.monotonic() > deadline:
                    sys.exit(f"the page never got ready ({ready}); its text: "
                             f"{page.evaluate('document.body && document.body.innerText')!r}")
                time.sleep(0.1)
            print(page.evaluate(CHECK))
    finally:
        browser.kill()
        browser.wait()
        subprocess.run(["rm", "-rf", profile], check=False)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
