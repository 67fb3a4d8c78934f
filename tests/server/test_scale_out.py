"""Scale-out: two replicas behind nginx (docs/nginx-serve.conf, least_conn,
SSE unbuffered) on loopback; the openai client through nginx sees the same
greedy text as from one replica, streams arrive in pieces, and both replicas
answer."""
import concurrent.futures
import os
import re
import shutil
import subprocess
import time
import urllib.request

import openai
import pytest

from conftest import BASE, BUILD, ROOT, Server, free_port


def test_two_replicas_behind_nginx(server):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (scripts/setup installs it)")
        pytest.skip("nginx is not installed (scripts/setup installs it): the scale-out test is skipped")
    second = Server(log_name="serve-replica2.log")
    d = os.path.join(BUILD, "server-tests", "nginx")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(d, 0o777)
    port = free_port()
    conf = open(os.path.join(ROOT, "docs", "nginx-serve.conf")).read()
    conf = conf.replace("@DIR@", d).replace("@PORT1@", str(server.port)).replace("@PORT2@", str(second.port))
    conf = conf.replace("@PORT@", str(port))
    if os.geteuid() == 0:
        conf = "user root;\n" + conf  # the workers may read the root-owned paths above
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    proc = subprocess.Popen([nginx, "-e", os.path.join(d, "startup-error.log"), "-c", os.path.join(d, "nginx.conf"), "-p", d])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        direct = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        proxied = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        prompts = [f"Question: What is {i} times 3?\n\nAnswer:" for i in range(8)]

        def run(client, p, stream=False):
            r = client.completions.create(model=BASE, prompt=p, max_tokens=12, temperature=0, stream=stream)
            if not stream:
                return r.choices[0].text
            return [c.choices[0].text for c in r if c.choices]

        want = [run(direct, p) for p in prompts]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda p: run(proxied, p), prompts))
        assert got == want
        pieces = run(proxied, prompts[0], stream=True)
        assert len(pieces) > 2 and "".join(pieces) == want[0]
        with pytest.raises(openai.NotFoundError):
            proxied.completions.create(model="nope", prompt="x", max_tokens=1)
        second.log.flush()
        served_by_second = len(re.findall(r"status=200", open(second.log_path).read()))
        assert served_by_second > 0, "least_conn never used the second replica"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert second.stop() == 0
