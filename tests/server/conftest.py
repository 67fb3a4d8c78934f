"""Starts `tokenlora serve` with the default model, the four adapters and the
router on a free loopback port; the tests talk to it with the official
openai client and with raw sockets."""
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TOKENLORA_BUILD_DIR", os.path.join(ROOT, "build"))
BINARY = os.path.join(BUILD, "tools", "tokenlora")
TASKS = ["gsm8k", "arc_challenge", "squad", "codealpaca"]
BASE = "SmolLM2-135M-Instruct.Q4_1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_args(port=0, extra=()):
    args = [BINARY, "serve", "--port", str(port), "--router", os.path.join(ROOT, "adapters", "router.json"),
            "--parallel", "8", "--max-queue", "32"]
    for t in TASKS:
        args += ["--adapter", f"{t}={os.path.join(ROOT, 'adapters', t)}"]
    return args + list(extra)


class Server:
    def __init__(self, extra=(), log_name="serve.log"):
        self.log_path = os.path.join(BUILD, "server-tests", log_name)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(server_args(0, extra), stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.port = None
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited early:\n" + open(self.log_path).read())
            m = re.search(r"listening on http://[^:]+:(\d+)", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.1)
        assert self.port, "serve did not print its port"
        self.url = f"http://127.0.0.1:{self.port}"
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited early:\n" + open(self.log_path).read())
            time.sleep(0.2)
        raise RuntimeError("serve never became healthy:\n" + open(self.log_path).read())

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def metrics(self):
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    if not os.path.exists(BINARY):
        pytest.fail(f"{BINARY} is not built (scripts/build)")
    s = Server()
    yield s
    rc = s.stop()
    assert rc == 0, "serve did not exit cleanly:\n" + open(s.log_path).read()[-4000:]


@pytest.fixture(scope="session")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
