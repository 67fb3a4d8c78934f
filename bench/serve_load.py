#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers: `tokenlora serve` and, in the
same run, llama.cpp's `llama-server` (give its binary with --llama-server).

For each concurrency level (default 1, 4, 16 streams) it keeps that many
streaming /v1/completions requests in flight for --requests requests and
reports requests/s, aggregate output tokens/s, time to first token (TTFT)
and inter-token latency (ITL, the gaps between streamed chunks) at p50/p99.
With --llama-server both servers stay up and each level runs on one, then
the other, so load from elsewhere on the machine hits both alike; the end
prints a Markdown table and the tokens/s ratio at each level. Standard
library only.

llama-server is built with OpenMP: its threads spin at every barrier, which
on a machine shared with other jobs costs it an order of magnitude; run with
OMP_WAIT_POLICY=passive in the environment (it reaches llama-server only) to
measure it fairly there. On a VM whose CPU lists AMX but does not run
ggml's AMX kernels (llama-server crashes in ggml_backend_amx_mul_mat), give
--llama-arg=--no-repack.

  bench/serve_load.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --tokenlora build/tools/tokenlora [--llama-server PATH/llama-server] \\
      [--llama-arg=--no-repack] [--concurrency 1,4,16] [--requests 32] [--max-tokens 64]

  bench/serve_load.py --url http://127.0.0.1:8080 --served-model NAME   # a running server
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

PROMPTS = [
    "Question: A baker made 24 muffins and sold 3/4 of them. How many are left?\n\nAnswer:",
    "Question: What is the capital of Australia?\n\nAnswer:",
    "Write a Python function that reverses a string.\n\n",
    "Once upon a time in a small village,",
    "Question: Which gas do plants absorb from the air?\n\nAnswer:",
    "Explain what a hash table is in one paragraph.\n\n",
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_healthy(url, proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became healthy")


def one_request(url, model, prompt, max_tokens):
    """Streams one completion; returns (ttft, [gaps], output tokens, seconds)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    ttft, last, gaps, tokens, chunks = None, None, [], None, 0
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        obj = json.loads(data)
        if obj.get("usage"):
            tokens = obj["usage"]["completion_tokens"]
        if not obj.get("choices") or not (obj["choices"][0].get("text") or ""):
            continue
        now = time.perf_counter()
        chunks += 1
        if ttft is None:
            ttft = now - t0
        else:
            gaps.append(now - last)
        last = now
    conn.close()
    return ttft or 0.0, gaps, tokens if tokens is not None else chunks, time.perf_counter() - t0


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run_level(url, model, concurrency, n_requests, max_tokens):
    jobs = [PROMPTS[i % len(PROMPTS)] for i in range(n_requests)]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: one_request(url, model, p, max_tokens), jobs))
    wall = time.perf_counter() - t0
    ttfts = [r[0] for r in results]
    gaps = [g for r in results for g in r[1]]
    tokens = sum(r[2] for r in results)
    return {"concurrency": concurrency, "requests": n_requests, "seconds": wall,
            "requests_per_s": n_requests / wall, "output_tokens_per_s": tokens / wall, "output_tokens": tokens,
            "ttft_p50_ms": pct(ttfts, 50) * 1e3, "ttft_p99_ms": pct(ttfts, 99) * 1e3,
            "itl_p50_ms": pct(gaps, 50) * 1e3, "itl_p99_ms": pct(gaps, 99) * 1e3}


def encoder_seconds(url):
    """tokenlora's /metrics: seconds its router encoder has run so far."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("tokenlora_encoder_seconds_total "):
                return float(line.split()[1])
    return 0.0


def bench_level(name, url, model, c, n_requests, max_tokens):
    before = encoder_seconds(url) if name == "tokenlora routed" else 0.0
    row = run_level(url, model, c, max(n_requests, c), max_tokens)
    row["server"] = name
    if name == "tokenlora routed":
        row["router_share"] = (encoder_seconds(url) - before) / row["seconds"]
    print(f"{name:>14} c={c:<3} {row['requests_per_s']:7.2f} req/s {row['output_tokens_per_s']:8.1f} tok/s  "
          f"TTFT p50 {row['ttft_p50_ms']:7.1f} p99 {row['ttft_p99_ms']:7.1f} ms  "
          f"ITL p50 {row['itl_p50_ms']:6.1f} p99 {row['itl_p99_ms']:6.1f} ms  ({row['output_tokens']} tokens)"
          + (f"  router {100 * row['router_share']:.0f}% of the time" if "router_share" in row else ""),
          flush=True)
    return row


def print_table(rows):
    """A Markdown table, llama-server beside tokenlora at each level when both ran."""
    by = {(r["server"], r["concurrency"]): r for r in rows}
    print("\n| streams | server | requests/s | output tokens/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | router share |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        share = f"{100 * r['router_share']:.0f}%" if "router_share" in r else ""
        print(f"| {r['concurrency']} | {r['server']} | {r['requests_per_s']:.2f} | {r['output_tokens_per_s']:.1f} | "
              f"{r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f} | {r['itl_p50_ms']:.1f} / {r['itl_p99_ms']:.1f} | {share} |")
    for c in sorted({r["concurrency"] for r in rows}):
        t, l = by.get(("tokenlora", c)), by.get(("llama-server", c))
        if t and l:
            print(f"streams {c}: tokens/s ratio tokenlora / llama-server {t['output_tokens_per_s'] / l['output_tokens_per_s']:.2f}x, "
                  f"ITL p99 {t['itl_p99_ms']:.1f} vs {l['itl_p99_ms']:.1f} ms")


def start(cmd, port):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except Exception:
        proc.kill()
        raise
    return proc, url


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server instead of starting one")
    ap.add_argument("--served-model", help="`model` to ask a running server for")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf", help="GGUF both servers load")
    ap.add_argument("--tokenlora", default="build/tools/tokenlora", help="the tokenlora binary")
    ap.add_argument("--llama-server", help="llama.cpp's llama-server binary, benchmarked beside tokenlora")
    ap.add_argument("--llama-arg", action="append", default=[],
                    help="an extra llama-server argument (repeat), e.g. --llama-arg=--no-repack on a VM whose CPU "
                         "lists AMX but does not run ggml's AMX kernels")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads each server uses")
    ap.add_argument("--parallel", type=int, default=16, help="sequences each server batches")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=32, help="requests per level (at least the concurrency)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--routed", action="store_true",
                    help="also run every level on tokenlora with model 'routed': the four committed adapters and "
                         "adapters/router.json, re-routed every 2 tokens (reports the router encoder's share of "
                         "the wall time, from /metrics)")
    ap.add_argument("--embedder-precision", default="auto", help="tokenlora's router encoder (with --routed)")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    rows = []
    if a.url:
        url = a.url.rstrip("/")
        one_request(url, a.served_model or "default", PROMPTS[0], 4)  # warm-up
        for c in levels:
            rows.append(bench_level("server", url, a.served_model or "default", c, a.requests, a.max_tokens))
    else:
        # Both servers stay up and each level runs on one then the other, so
        # a change in the machine's load hits both alike (an idle server
        # sleeps: neither takes CPU from the other's turn).
        servers = []
        try:
            port = free_port()
            routing = ["--no-embedder"]
            if a.routed:
                adapters = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "adapters")
                routing = ["--router", os.path.join(adapters, "router.json"), "--route-every", "2",
                           "--embedder-precision", a.embedder_precision]
                for task in ("gsm8k", "arc_challenge", "squad", "codealpaca"):
                    routing += ["--adapter", f"{task}={os.path.join(adapters, task)}"]
            proc, url = start([a.tokenlora, "serve", "-m", a.model, "--port", str(port), "--parallel", str(a.parallel),
                               "-t", str(a.threads)] + routing, port)
            model = os.path.basename(a.model)
            servers.append(("tokenlora", proc, url, model[:-5] if model.endswith(".gguf") else model))
            if a.routed:
                servers.append(("tokenlora routed", proc, url, "routed"))
            if a.llama_server:
                port = free_port()
                # -c: the whole KV cache, shared by the -np slots (each gets -c / -np).
                ctx = a.parallel * 1024
                proc, url = start([a.llama_server, "-m", a.model, "--port", str(port), "--host", "127.0.0.1",
                                   "-np", str(a.parallel), "-c", str(ctx), "-t", str(a.threads), "-tb",
                                   str(a.threads), "-cb", "--no-webui"] + a.llama_arg, port)
                servers.append(("llama-server", proc, url, "default"))
            for name, _, url, model in servers:
                one_request(url, model, PROMPTS[0], 4)  # warm-up
            for c in levels:
                for name, _, url, model in servers:
                    rows.append(bench_level(name, url, model, c, a.requests, a.max_tokens))
        finally:
            for proc in {id(p): p for _, p, _, _ in servers}.values():
                stop(proc)
    print_table(rows)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
