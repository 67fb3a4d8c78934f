"""Faults: malformed, truncated, mistyped and huge bodies; clients that hang
up mid-stream; slow readers; 200 requests from 16 clients with random
disconnects (the server never crashes, every slot is freed, RSS stays
within 10%); auth; bind rules; SIGTERM drain."""
import concurrent.futures
import json
import os
import random
import re
import signal
import socket
import subprocess
import time

import openai
import pytest

from conftest import BASE, BINARY, ROOT, Server


def raw(port, data, read=True, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except socket.timeout:
            pass
    s.close()
    return out


def post(port, path, body, extra_headers=""):
    if isinstance(body, str):
        body = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n{extra_headers}\r\n").encode()
    resp = raw(port, head + body)
    status = int(resp.split(b" ", 2)[1])
    return status, resp.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in resp else b""


def gauge(server, name):
    m = re.search(rf"^{name} (\S+)$", server.metrics(), re.M)
    return float(m.group(1))


def wait_idle(server, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if gauge(server, "tokenlora_batch_size") == 0 and gauge(server, "tokenlora_queue_length") == 0 and \
                gauge(server, "tokenlora_requests_in_flight") == 0:
            return True
        time.sleep(0.1)
    return False


def test_bad_bodies_get_openai_errors(server):
    for body in ["{not json", '{"model": "x", "prompt": ', "[]", '{"model": 5, "prompt": "x"}',
                 '{"model": "%s", "prompt": "x", "max_tokens": "many"}' % BASE, "\xff\xfe"]:
        status, out = post(server.port, "/v1/completions", body)
        assert status == 400, (body, status, out)
        err = json.loads(out)["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["type"] == "invalid_request_error"
    status, out = post(server.port, "/v1/nope", "{}")
    assert status == 404 and "error" in json.loads(out)
    # 200 KB of nested lists (under --max-body): copying them once parsed used to
    # overflow the HTTP thread's stack and kill the server.
    for path in ["/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/adapters"]:
        status, out = post(server.port, path, '{"model": "%s", "prompt": %s}' % (BASE, "[" * 100000 + "]" * 100000))
        assert 400 <= status < 500, (path, status, out)  # /v1/adapters: refused without --adapter-dir
        err = json.loads(out)["error"]
        assert path == "/v1/adapters" or err["code"] == "invalid_json", (path, err)
        if err["code"] == "invalid_json":
            assert "nested more than 512 deep" in err["message"], err
    assert b" 200 " in raw(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def test_huge_body_is_413(server):
    # 2 MiB, over --max-body's 1 MiB (httplib reads and drops the body, then answers).
    status, out = post(server.port, "/v1/completions", b'{"model": "x", "prompt": "' + b"a" * (2 << 20) + b'"}')
    assert status == 413
    assert json.loads(out)["error"]["code"] == "request_too_large"
    assert wait_idle(server)


def test_truncated_body_and_hangups(server):
    # Content-Length promises more than arrives, then the client leaves.
    raw(server.port, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"model\"", read=False)
    raw(server.port, b"GET /health HTTP/1.1\r\n", read=False)  # half a request head
    raw(server.port, b"", read=False)
    assert wait_idle(server)


def stream_body(max_tokens=200, model=BASE):
    return json.dumps({"model": model, "prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 0,
                       "stream": True})


def test_disconnect_mid_stream_frees_the_sequence(server):
    body = stream_body(400).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while got.count(b"data:") < 3:
        got += s.recv(4096)
    assert gauge(server, "tokenlora_batch_size") >= 1
    s.close()
    assert wait_idle(server, 10), "the cancelled sequence was not freed"


def test_disconnect_before_a_non_streamed_answer_frees_the_sequence(server):
    # No stream: the server writes nothing until the end, so it has to notice
    # the hang-up on the socket itself (cpp-httplib 0.11 cannot tell it).
    body = json.dumps({"model": BASE, "prompt": "Once upon a time", "max_tokens": 2000, "temperature": 0,
                       "stream": False}).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    deadline = time.time() + 10
    while gauge(server, "tokenlora_batch_size") < 1 and time.time() < deadline:
        time.sleep(0.02)
    assert gauge(server, "tokenlora_batch_size") >= 1, "the request never ran"
    t0 = time.time()
    s.close()
    assert wait_idle(server, 5), "the sequence of a client that hung up was not freed"
    freed_s = time.time() - t0
    assert freed_s < 2, f"freed only after {freed_s:.1f} s"
    with open(server.log_path, errors="replace") as f:
        log = f.read()
    assert re.search(r"status=499 .*client_gone", log), "no 499 line in the server log"
    assert 'status="499"' in server.metrics()


def test_slow_reader_gets_everything(server):
    body = stream_body(60).encode()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while True:
        b = s.recv(64)
        if not b:
            break
        got += b
        time.sleep(0.005)
    s.close()
    assert b"data: [DONE]" in got


def one_random_client(port, rng):
    kind = rng.choice(["whole", "stream", "hangup", "hangup_early", "bad"])
    model = rng.choice([BASE, "routed", "gsm8k"])
    if kind == "bad":
        return post(port, "/v1/completions", '{"model": "%s", "prompt": 7}' % model)[0]
    body = json.dumps({"model": model, "prompt": f"Question: count to {rng.randint(2, 9)}.\n\nAnswer:",
                       "max_tokens": rng.randint(1, 12), "temperature": 0.7, "seed": rng.randint(0, 99),
                       "stream": kind != "whole"}).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    if kind == "hangup_early":
        raw(port, head + body[: len(body) // 2], read=False)
        return 0
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(head + body)
    if kind == "hangup":
        s.recv(rng.randint(1, 300))
        s.close()
        return 0
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return int(got.split(b" ", 2)[1])


def test_200_requests_16_clients_random_disconnects(server):
    rng = random.Random(16)
    # Warm-up: every route and model once, 16 at a time.
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: one_random_client(server.port, random.Random(i)), range(32)))
    assert wait_idle(server)
    rss_warm = server.rss_kib()
    seeds = [rng.randint(0, 1 << 30) for _ in range(200)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda s: one_random_client(server.port, random.Random(s)), seeds))
    assert all(s in (0, 200, 400, 429) for s in statuses), statuses
    assert wait_idle(server), "slots still busy after the run"
    assert server.proc.poll() is None, "the server died"
    rss_after = server.rss_kib()
    assert rss_after <= rss_warm * 1.10, f"RSS grew from {rss_warm} KiB to {rss_after} KiB"


def test_api_key_and_bind_rules():
    s = Server(extra=["--api-key", "sekrit"], log_name="serve-auth.log")
    try:
        bad = openai.OpenAI(base_url=s.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        good = openai.OpenAI(base_url=s.url + "/v1", api_key="sekrit", max_retries=0)
        assert good.completions.create(model=BASE, prompt="Hi", max_tokens=2, temperature=0).choices
    finally:
        assert s.stop() == 0
    r = subprocess.run([BINARY, "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 2 and "--api-key" in r.stderr


def test_sigterm_drains_in_flight_requests():
    s = Server(extra=["--drain-seconds", "20"], log_name="serve-drain.log")
    body = stream_body(40).encode()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    sock.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = sock.recv(4096)
    s.proc.send_signal(signal.SIGTERM)
    while True:
        b = sock.recv(65536)
        if not b:
            break
        got += b
    sock.close()
    assert b"data: [DONE]" in got, got[-500:]
    assert s.proc.wait(timeout=30) == 0
    s.log.close()
    assert "shutting down" in open(s.log_path).read()
