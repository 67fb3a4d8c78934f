#include "server/playground.h"

namespace tokenlora::server {

// The page talks to this server only (relative URLs). Query parameters fill
// the form (?prompt=...&model=...&max_tokens=...) and ?run=1 submits it at
// load, which the headless-browser test uses.
const char* PlaygroundHtml() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tokenlora playground</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:960px;margin:1.5em auto;padding:0 1em;color:#222}
textarea{width:100%;height:7em;font:inherit}
fieldset{border:1px solid #ccc;margin:.6em 0;display:flex;flex-wrap:wrap;gap:.8em;align-items:center}
label{white-space:nowrap}
#band{display:flex;height:48px;margin-top:1em;border:1px solid #ddd;background:#fafafa}
#band div.col{display:flex;flex-direction:column-reverse;flex:1 1 0;min-width:1px}
#out{white-space:pre-wrap;font-family:ui-monospace,monospace;line-height:1.6;border:1px solid #ddd;padding:.6em;min-height:4em}
#legend span{display:inline-block;margin-right:1em}
#legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
#status{color:#666;font-size:.9em}
</style></head><body>
<h1>tokenlora playground</h1>
<textarea id="prompt">Question: A baker made 24 muffins and sold 3/4 of them. How many are left?

Answer:</textarea>
<fieldset>
<label>model <select id="model"></select></label>
<label>route every <input id="every" type="number" min="1" value="2" style="width:4em"></label>
<label>KV policy <select id="kv"><option>keep</option><option>recompute</option></select></label>
<label>max tokens <input id="max_tokens" type="number" min="1" value="64" style="width:5em"></label>
<label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0" style="width:4em"></label>
<label><input id="chat" type="checkbox"> chat template</label>
<label>API key <input id="key" type="password" style="width:8em"></label>
<button id="go">Generate</button> <button id="stop" disabled>Stop</button>
</fieldset>
<div id="legend"></div>
<div id="band" title="adapter weights per token"></div>
<div id="out"></div>
<p id="status"></p>
<script>
"use strict";
const colors = ["#4e79a7","#f28e2b","#59a14f","#e15759","#b07aa1","#76b7b2","#edc948","#ff9da7","#9c755f","#bab0ac"];
const $ = id => document.getElementById(id);
let tasks = [], controller = null;
function colorOf(task) { const i = tasks.indexOf(task); return colors[(i < 0 ? 0 : i) % colors.length]; }
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}
function legend() {
  $("legend").innerHTML = "";
  for (const t of tasks) {
    const s = document.createElement("span");
    s.innerHTML = '<i style="background:' + colorOf(t) + '"></i>' + t;
    $("legend").appendChild(s);
  }
}
function addToken(text, weights) {
  const span = document.createElement("span");
  span.className = "tok";
  span.textContent = text;
  if (weights) {
    let top = null;
    for (const [t, w] of Object.entries(weights)) if (top === null || w > weights[top]) top = t;
    span.style.background = colorOf(top) + "55";
    span.title = Object.entries(weights).map(([t, w]) => t + " " + w.toFixed(2)).join(", ");
    const col = document.createElement("div");
    col.className = "col";
    for (const t of tasks) {
      const seg = document.createElement("div");
      seg.style.flex = String(weights[t] || 0);
      seg.style.background = colorOf(t);
      col.appendChild(seg);
    }
    $("band").appendChild(col);
  }
  $("out").appendChild(span);
}
async function loadModels() {
  const r = await fetch("/v1/models", {headers: headers()});
  const j = await r.json();
  $("model").innerHTML = "";
  for (const m of (j.data || [])) {
    if (m.tokenlora_kind === "embedder") continue;
    if (m.tokenlora_kind === "routed") tasks = m.adapters || [];
    const o = document.createElement("option");
    o.value = o.textContent = m.id;
    $("model").appendChild(o);
  }
  const routed = [...$("model").options].find(o => o.value === "routed");
  if (routed) routed.selected = true;
  legend();
}
async function generate() {
  $("out").innerHTML = ""; $("band").innerHTML = ""; $("status").textContent = "generating…";
  $("go").disabled = true; $("stop").disabled = false;
  const model = $("model").value, routed = model === "routed";
  const body = {model, max_tokens: +$("max_tokens").value, temperature: +$("temperature").value, stream: true,
                stream_options: {include_usage: true}};
  if (routed) { body.routing = {every: +$("every").value, kv_policy: $("kv").value}; body.routing_trace = true; }
  let url = "/v1/completions";
  if ($("chat").checked) { url = "/v1/chat/completions"; body.messages = [{role: "user", content: $("prompt").value}]; }
  else body.prompt = $("prompt").value;
  controller = new AbortController();
  const t0 = performance.now();
  let n = 0;
  try {
    const r = await fetch(url, {method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal});
    if (!r.ok) { const e = await r.json(); throw new Error(e.error ? e.error.message : r.statusText); }
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ")) continue;
        const data = ev.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.usage) $("status").textContent = j.usage.completion_tokens + " tokens in " + ((performance.now() - t0) / 1000).toFixed(2) + " s";
        for (const c of (j.choices || [])) {
          const trace = c.routing_trace;
          if (trace && trace.tasks && !tasks.length) { tasks = trace.tasks; legend(); }
          if (trace && trace.steps && trace.steps.length) {
            for (const s of trace.steps) { addToken(s.text, s.weights); n++; }
          } else {
            const text = c.text !== undefined ? c.text : (c.delta && c.delta.content) || "";
            if (text) { addToken(text, null); n++; }
          }
        }
      }
    }
    if (!$("status").textContent.includes("tokens in")) $("status").textContent = "done";
  } catch (e) {
    $("status").textContent = e.name === "AbortError" ? "stopped" : "error: " + e.message;
  }
  $("out").dataset.done = "1";
  $("go").disabled = false; $("stop").disabled = true;
}
$("go").onclick = generate;
$("stop").onclick = () => controller && controller.abort();
const q = new URLSearchParams(location.search);
for (const k of ["prompt", "max_tokens", "temperature", "every", "key"]) if (q.has(k)) $(k).value = q.get(k);
loadModels().then(() => {
  if (q.has("model")) $("model").value = q.get("model");
  if (q.get("run") === "1") generate();
}).catch(e => { $("status").textContent = "cannot list models: " + e.message; });
</script></body></html>
)HTML";
}

}  // namespace tokenlora::server
