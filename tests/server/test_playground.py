"""GET / serves the playground (one static page, no CDN); headless Chromium
loads it against the running server, submits, and sees streamed tokens
tinted with their adapter weights."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import free_port


def test_page_is_self_contained(server):
    with urllib.request.urlopen(server.url + "/", timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        page = r.read().decode()
    assert "/v1/completions" in page and "<textarea" in page
    assert "http://" not in page and "https://" not in page, "the page must not load anything from elsewhere"


class Browser:
    """Headless Chromium driven over the DevTools protocol (websocket-client)."""

    def __init__(self, chromium, profile):
        import websocket
        port = free_port()
        self.proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                      f"--remote-debugging-port={port}", "--remote-allow-origins=*",
                                      f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [p for p in json.load(r) if p.get("type") == "page"]
                if pages:
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium did not open its debugging port")
            time.sleep(0.2)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                return msg.get("result", {})

    def eval(self, expression):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self):
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_playground_streams_in_headless_chromium(server):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/setup installs it)")
        pytest.skip("chromium is not installed (scripts/setup installs it): the playground's browser test is skipped")
    profile = os.path.join(server.log_path + ".chromium")
    b = Browser(chromium, profile)
    try:
        b.call("Page.enable")
        query = urllib.parse.urlencode({"max_tokens": "24", "model": "routed",
                                        "prompt": "Question: What is 7 plus 5?\n\nAnswer:"})
        b.call("Page.navigate", url=f"{server.url}/?{query}")
        deadline = time.time() + 30
        while b.eval("document.getElementById('model') ? document.getElementById('model').options.length : 0") < 2:
            assert time.time() < deadline, "the page did not list the models"
            time.sleep(0.1)
        b.eval("document.getElementById('go').click()")
        counts = []
        deadline = time.time() + 90
        while b.eval("document.getElementById('out').dataset.done") != "1":
            counts.append(b.eval("document.querySelectorAll('#out .tok').length"))
            assert time.time() < deadline, "the answer never finished"
            time.sleep(0.02)
        n_tokens = b.eval("document.querySelectorAll('#out .tok').length")
        n_cols = b.eval("document.querySelectorAll('#band .col').length")
        status = b.eval("document.getElementById('status').textContent")
        tinted = b.eval("[...document.querySelectorAll('#out .tok')].filter(s => s.style.background).length")
    finally:
        b.close()
    assert n_tokens >= 3 and n_cols == n_tokens and tinted == n_tokens, (n_tokens, n_cols, tinted)
    assert "tokens in" in status, status
    # Streamed: the page showed some tokens before it had them all.
    assert any(0 < c < n_tokens for c in counts), counts
