"""The server through the official openai client: completions and chat,
streaming and not, n, stop, model selection, the routing extension,
embeddings, models, metrics, and errors as the client's own exceptions."""
import concurrent.futures
import math

import openai
import pytest

from conftest import BASE, TASKS

PROMPT = "Question: What is the capital of France?\n\nAnswer:"


def complete(client, model=BASE, prompt=PROMPT, **kw):
    kw.setdefault("max_tokens", 12)
    kw.setdefault("temperature", 0)
    return client.completions.create(model=model, prompt=prompt, **kw)


def test_models_list_base_adapters_routed_embedder(client):
    models = {m.id: m for m in client.models.list().data}
    for name in [BASE, "routed", "all-MiniLM-L6-v2"] + TASKS:
        assert name in models, f"{name} missing from {sorted(models)}"
        assert models[name].owned_by
        assert models[name].created > 0


def test_completion_non_stream(client):
    r = complete(client)
    assert r.object == "text_completion"
    assert r.model == BASE
    assert len(r.choices) == 1 and r.choices[0].index == 0
    assert r.choices[0].text.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 5
    assert 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_completion_stream_equals_non_stream(client):
    whole = complete(client).choices[0].text
    chunks = list(complete(client, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_chat_stream_and_not(client):
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a color."}]
    r = client.chat.completions.create(model=BASE, messages=messages, max_tokens=10, temperature=0)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    stream = client.chat.completions.create(model=BASE, messages=messages, max_tokens=10, temperature=0, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_n_choices_seeded(client):
    a = complete(client, n=3, temperature=0.9, seed=11, max_tokens=8)
    b = complete(client, n=3, temperature=0.9, seed=11, max_tokens=8)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    streamed = list(complete(client, n=2, temperature=0.9, seed=11, max_tokens=8, stream=True))
    texts = ["", ""]
    for c in streamed:
        for ch in c.choices:
            texts[ch.index] += ch.text
    assert texts == [c.text for c in a.choices[:2]]


def test_stop_and_length(client):
    full = complete(client, max_tokens=20).choices[0].text
    assert len(full) > 6
    stop = full[3:6]
    r = complete(client, max_tokens=20, stop=[stop])
    assert r.choices[0].text == full[: full.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    one = complete(client, max_tokens=1)
    assert one.choices[0].finish_reason == "length" and one.usage.completion_tokens == 1


def test_model_selects_mixture(client):
    adapter = complete(client, model="gsm8k", max_tokens=16).choices[0].text
    fixed = complete(client, model=BASE, max_tokens=16, extra_body={"routing": {"weights": {"gsm8k": 1.0}}})
    assert fixed.choices[0].text == adapter
    routed = complete(client, model="routed", max_tokens=16)
    assert routed.model == "routed" and routed.choices[0].text


def test_routing_trace(client):
    r = complete(client, model="routed", max_tokens=8, extra_body={"routing": {"every": 2}, "routing_trace": True})
    trace = r.choices[0].model_extra["routing_trace"]
    assert trace["tasks"] == TASKS or sorted(trace["tasks"]) == sorted(TASKS)
    assert len(trace["steps"]) == r.usage.completion_tokens
    for s in trace["steps"]:
        assert math.isclose(sum(s["weights"].values()), 1.0, abs_tol=1e-3)
    chunks = list(complete(client, model="routed", max_tokens=8, stream=True, extra_body={"routing_trace": True}))
    steps = [s for c in chunks for ch in c.choices for s in (ch.model_extra.get("routing_trace") or {}).get("steps", [])]
    assert len(steps) == r.usage.completion_tokens


def test_routing_policy_and_window_per_request(client):
    # A sharp softmax on the last 8 word pieces weighs differently from the
    # server's default (the paper's policy on the whole text).
    base = complete(client, model="routed", max_tokens=6, extra_body={"routing": {"every": 1}, "routing_trace": True})
    sharp = complete(client, model="routed", max_tokens=6, extra_body={
        "routing": {"every": 1, "policy": "softmax", "temperature": 0.01, "window": "last:8"}, "routing_trace": True})
    w_base = base.choices[0].model_extra["routing_trace"]["steps"][0]["weights"]
    w_sharp = sharp.choices[0].model_extra["routing_trace"]["steps"][0]["weights"]
    assert max(w_sharp.values()) > max(w_base.values())
    assert max(w_sharp.values()) > 0.9


def test_presence_and_frequency_penalties(client):
    # Greedy on a prompt that invites repeats: a strong frequency penalty
    # changes the text and repeats tokens less; 0 is the plain answer.
    prompt = "Repeat after me: la la la la la la la la"
    plain = complete(client, prompt=prompt, max_tokens=24, logprobs=0)
    zero = complete(client, prompt=prompt, max_tokens=24, presence_penalty=0, frequency_penalty=0)
    assert zero.choices[0].text == plain.choices[0].text
    pen = complete(client, prompt=prompt, max_tokens=24, frequency_penalty=2, presence_penalty=1, logprobs=0)
    assert pen.choices[0].text != plain.choices[0].text

    def most_repeated(r):
        toks = r.choices[0].logprobs.tokens
        return max(toks.count(t) for t in toks)
    assert most_repeated(pen) < most_repeated(plain)
    # Chat takes them too; negative values favour repeats.
    chat = client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": prompt}], max_tokens=8,
                                          temperature=0, frequency_penalty=-1.5)
    assert chat.choices[0].message.content is not None


def test_routing_among_a_subset_of_adapters(client):
    r = complete(client, model="routed", max_tokens=6, extra_body={
        "routing": {"every": 1, "adapters": ["gsm8k", "squad"]}, "routing_trace": True})
    for step in r.choices[0].model_extra["routing_trace"]["steps"]:
        w = step["weights"]
        assert w["arc_challenge"] == 0 and w["codealpaca"] == 0
        assert math.isclose(w["gsm8k"] + w["squad"], 1.0, abs_tol=1e-3)
    # One adapter: that adapter alone, as its own model gives.
    one = complete(client, model=BASE, max_tokens=12, extra_body={"routing": {"adapters": ["gsm8k"]}})
    assert one.choices[0].text == complete(client, model="gsm8k", max_tokens=12).choices[0].text
    for bad, code in [(["nope"], "unknown_adapter"), ([], "invalid_type"), (["gsm8k", "gsm8k"], "invalid_value")]:
        with pytest.raises(openai.BadRequestError) as e:
            complete(client, model="routed", extra_body={"routing": {"adapters": bad}})
        assert e.value.body["param"] == "routing.adapters" and e.value.body["code"] == code, e.value.body
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, extra_body={"routing": {"adapters": ["gsm8k"], "weights": {"gsm8k": 1}}})
    assert e.value.body["param"] == "routing.weights"


def test_mix_mode_per_request(client):
    # The four adapters share rank 64, so the linear modes can mix them.
    weights = {"gsm8k": 0.6, "squad": 0.4}
    exact = complete(client, max_tokens=16, extra_body={"routing": {"weights": weights}})
    same = complete(client, max_tokens=16, extra_body={"routing": {"weights": weights, "mix_mode": "exact"}})
    assert same.choices[0].text == exact.choices[0].text
    lin = complete(client, max_tokens=16, extra_body={"routing": {"weights": weights, "mix_mode": "peft04-linear"}},
                   logprobs=0)
    lin_ex = complete(client, max_tokens=16, extra_body={"routing": {"weights": weights}}, logprobs=0)
    assert lin.choices[0].logprobs.token_logprobs != lin_ex.choices[0].logprobs.token_logprobs
    routed = complete(client, model="routed", max_tokens=8,
                      extra_body={"routing": {"every": 2, "mix_mode": "peft04-linear"}})
    assert routed.choices[0].text
    # Requests in different modes run side by side in one batch.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(complete, client, max_tokens=16,
                            extra_body={"routing": {"weights": weights, "mix_mode": m}})
                for m in ["exact", "peft04-linear", "exact", "peft04-linear"]]
        texts = [f.result().choices[0].text for f in futs]
    assert texts[0] == texts[2] == exact.choices[0].text and texts[1] == texts[3] == lin.choices[0].text
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, extra_body={"routing": {"weights": weights, "mix_mode": "cat"}})
    assert e.value.body["param"] == "routing.mix_mode" and "exact, peft-linear or peft04-linear" in e.value.body["message"]


def test_embeddings(client):
    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat", "a dog"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 384
    assert math.isclose(sum(x * x for x in r.data[0].embedding), 1.0, rel_tol=1e-3)
    f = client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat", encoding_format="float")
    assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(f.data[0].embedding, r.data[0].embedding))
    assert r.usage.prompt_tokens > 0
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model=BASE, input="x")


def test_errors_are_the_clients_exceptions(client):
    with pytest.raises(openai.NotFoundError) as e:
        complete(client, model="no-such-model")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, temperature=5)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, extra_body={"bogus": 1})
    assert e.value.body["param"] == "bogus"
    for field, value in [("presence_penalty", 2.5), ("frequency_penalty", -2.1)]:
        with pytest.raises(openai.BadRequestError) as e:
            complete(client, **{field: value})
        assert e.value.body["param"] == field and e.value.body["code"] == "invalid_value"
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, prompt="word " * 9000)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        complete(client, model=BASE, extra_body={"routing_trace": True})
    with pytest.raises(openai.BadRequestError):
        complete(client, extra_body={"routing": {"weights": {"nope": 1}}})


def test_concurrent_equals_sequential(client):
    jobs = [(m, f"Question: What is {i} plus {i + 3}?\n\nAnswer:") for i, m in
            enumerate([BASE, "gsm8k", "routed", "squad", BASE, "routed", "codealpaca", BASE])]
    one_by_one = [complete(client, model=m, prompt=p, max_tokens=16).choices[0].text for m, p in jobs]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda mp: complete(client, model=mp[0], prompt=mp[1], max_tokens=16).choices[0].text, jobs))
    assert together == one_by_one


def test_metrics(server, client):
    complete(client, max_tokens=3)
    text = server.metrics()
    for name in ["tokenlora_requests_total", "tokenlora_completion_tokens_total", "tokenlora_queue_length",
                 "tokenlora_batch_size", "tokenlora_time_per_output_token_seconds_bucket",
                 "tokenlora_router_calls_total"]:
        assert name in text


def test_logprobs(client):
    r = complete(client, max_tokens=6, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == r.usage.completion_tokens
    assert "".join(lp.tokens) == r.choices[0].text
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert len(top) == 2 and chosen <= 0
        assert math.isclose(chosen, max(top.values()), abs_tol=1e-5)  # greedy picks the most likely
    c = client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": "Say hi."}], max_tokens=5,
                                       temperature=0, logprobs=True, top_logprobs=3)
    content = c.choices[0].logprobs.content
    assert len(content) == c.usage.completion_tokens
    assert all(len(t.top_logprobs) == 3 and t.logprob <= 0 for t in content)
    streamed = list(complete(client, max_tokens=6, logprobs=1, stream=True))
    tokens = [t for ch in streamed for x in ch.choices if x.logprobs for t in x.logprobs.tokens]
    assert tokens == lp.tokens
