"""Run-time adapters: POST /v1/adapters {name, path} loads from under
--adapter-dir only (no '..', no symlinks out, the base's shapes), DELETE
/v1/adapters/NAME unloads, GET /v1/models follows, and a request in flight
keeps its adapter until it finishes. Without --adapter-dir the routes say
how to turn them on."""
import json
import os
import shutil
import socket
import struct
import threading
import time

import openai
import pytest

from conftest import BASE, BUILD, ROOT, Server

PROMPT = "Question: What is 12 times 7?\n\nAnswer:"


def write_wrong_shape_adapter(src, dst):
    """A copy of `src` whose layer-0 q_proj lora_A has half the base's width."""
    os.makedirs(dst, exist_ok=True)
    shutil.copy(os.path.join(src, "adapter_config.json"), dst)
    with open(os.path.join(src, "adapter_model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    out_header, blobs, offset = {}, [], 0
    for name in sorted(header):
        t = header[name]
        blob = data[t["data_offsets"][0]:t["data_offsets"][1]]
        if name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
            t = dict(t, shape=[t["shape"][0], t["shape"][1] // 2])
            blob = bytes(len(blob) // 2)
        out_header[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if meta is not None:
        out_header["__metadata__"] = meta
    h = json.dumps(out_header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(dst, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


@pytest.fixture(scope="module")
def adapter_dir():
    d = os.path.join(BUILD, "server-tests", "adapter-dir")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copytree(os.path.join(ROOT, "adapters", "gsm8k"), os.path.join(d, "math"))
    os.symlink(os.path.join(ROOT, "adapters", "squad"), os.path.join(d, "escape"))  # a symlink out
    os.makedirs(os.path.join(d, "sneaky"))
    shutil.copy(os.path.join(ROOT, "adapters", "squad", "adapter_config.json"), os.path.join(d, "sneaky"))
    os.symlink(os.path.join(ROOT, "adapters", "squad", "adapter_model.safetensors"),
               os.path.join(d, "sneaky", "adapter_model.safetensors"))  # a file inside that leads out
    write_wrong_shape_adapter(os.path.join(ROOT, "adapters", "codealpaca"), os.path.join(d, "wrong"))
    os.makedirs(os.path.join(d, "empty"))
    return d


@pytest.fixture(scope="module")
def dyn(adapter_dir):
    s = Server(extra=["--adapter-dir", adapter_dir], log_name="serve-adapters.log")
    yield s
    assert s.stop() == 0, open(s.log_path).read()[-4000:]


def call(server, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    head, _, payload = out.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload) if payload else None


def models(client):
    return {m.id for m in client.models.list().data}


def complete(client, model, **kw):
    kw.setdefault("max_tokens", 12)
    return client.completions.create(model=model, prompt=PROMPT, temperature=0, **kw)


def test_without_adapter_dir_the_routes_say_how(server):
    status, body = call(server, "POST", "/v1/adapters", {"name": "x", "path": "y"})
    assert status == 400 and body["error"]["code"] == "adapters_disabled"
    assert "--adapter-dir" in body["error"]["message"]
    status, body = call(server, "DELETE", "/v1/adapters/gsm8k")
    assert status == 400 and "--adapter-dir" in body["error"]["message"]


def test_load_use_unload(dyn):
    client = openai.OpenAI(base_url=dyn.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    assert "math" not in models(client)
    status, body = call(dyn, "POST", "/v1/adapters", {"name": "math", "path": "math"})
    assert status == 200, body
    assert body["id"] == "math" and body["object"] == "model"
    assert "math" in models(client)
    # The same weights as the --adapter gsm8k: the same greedy text.
    assert complete(client, "math").choices[0].text == complete(client, "gsm8k").choices[0].text
    assert complete(client, BASE, extra_body={"routing": {"weights": {"math": 1.0}}}).choices[0].text == \
        complete(client, "gsm8k").choices[0].text
    status, body = call(dyn, "POST", "/v1/adapters", {"name": "math", "path": "math"})
    assert status == 409 and body["error"]["code"] == "adapter_exists"
    status, body = call(dyn, "DELETE", "/v1/adapters/math")
    assert status == 200 and body["deleted"] is True
    assert "math" not in models(client)
    with pytest.raises(openai.NotFoundError):
        complete(client, "math")
    status, body = call(dyn, "DELETE", "/v1/adapters/math")
    assert status == 404
    # Routed requests still work with the extra adapter gone or present.
    assert complete(client, "routed", max_tokens=4).choices[0].text is not None


def test_bad_paths_and_names(dyn):
    cases = [
        ({"name": "a", "path": "../gsm8k"}, "path", "path_outside_adapter_dir"),
        ({"name": "a", "path": "/etc"}, "path", "path_outside_adapter_dir"),
        ({"name": "a", "path": "escape"}, "path", "path_outside_adapter_dir"),
        ({"name": "a", "path": "sneaky"}, "path", "path_outside_adapter_dir"),
        ({"name": "a", "path": "no-such-dir"}, "path", "adapter_not_found"),
        ({"name": "a", "path": "empty"}, "path", "invalid_adapter"),
        ({"name": "a", "path": "wrong"}, "path", None),
        ({"name": "../x", "path": "math"}, "name", None),
        ({"name": BASE, "path": "math"}, "name", "name_taken"),
        ({"name": "a"}, "path", "missing"),
        ({"name": "a", "path": "math", "extra": 1}, "extra", "unknown_field"),
    ]
    for body, param, code in cases:
        status, out = call(dyn, "POST", "/v1/adapters", body)
        assert status in (400, 409), (body, status, out)
        err = out["error"]
        assert err["param"] == param, (body, err)
        if code:
            assert err["code"] == code, (body, err)
    status, out = call(dyn, "POST", "/v1/adapters", {"name": "a", "path": "wrong"})
    assert "576" in out["error"]["message"] and "base" in out["error"]["message"], out
    status, out = call(dyn, "DELETE", "/v1/adapters/gsm8k")
    assert status == 409 and out["error"]["code"] == "adapter_in_router"
    assert dyn.proc.poll() is None


def test_in_flight_request_keeps_its_adapter(dyn):
    client = openai.OpenAI(base_url=dyn.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    want = complete(client, "gsm8k", max_tokens=200).choices[0].text
    assert call(dyn, "POST", "/v1/adapters", {"name": "math2", "path": "math"})[0] == 200
    got, first = [], threading.Event()

    def run():
        for chunk in complete(client, "math2", max_tokens=200, stream=True):
            got.append(chunk.choices[0].text if chunk.choices else "")
            first.set()
    t = threading.Thread(target=run)
    t.start()
    assert first.wait(30)
    status, body = call(dyn, "DELETE", "/v1/adapters/math2")
    assert status == 200 and body["tokenlora_in_use"] is True, body
    assert "math2" not in models(client)
    # The name is free at once; the old weights stay for the running request.
    assert call(dyn, "POST", "/v1/adapters", {"name": "math2", "path": "math"})[0] == 200
    t.join(60)
    assert "".join(got) == want
    assert call(dyn, "DELETE", "/v1/adapters/math2")[0] == 200
    with open(dyn.log_path, errors="replace") as f:
        assert "retired" in f.read()
