// The SPLAI dashboard: plain JS over the public API (no build step). Hash routes:
// #/jobs, #/job/ID, #/workers, #/charts. Polls every 2 s; the token (when auth is on) lives in
// localStorage and goes out as a bearer token.
"use strict";

const app = document.getElementById("app");
const samples = { workers: {} }; // worker id -> [[t, cpu%]], sampled while the page is open
let timer = null;

function token() { return localStorage.getItem("splai-token") || ""; }
document.getElementById("token").value = token();
document.getElementById("auth").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("splai-token", document.getElementById("token").value.trim());
  route();
});

async function api(path, text) {
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const r = await fetch(path, { headers });
  if (!r.ok) {
    let body = {};
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    throw new Error(`${r.status} ${body.code || ""}: ${body.message || r.statusText}`);
  }
  return text ? r.text() : r.json();
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
const badge = (s) => `<span class="badge s-${esc(s)}">${esc(s)}</span>`;
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "—");
const secs = (a, b) => (a && b ? ((b - a) / 1000).toFixed(1) + " s" : "—");

function show(html) { app.innerHTML = html; }
function fail(e) { show(`<p class="error">${esc(e.message)}</p>`); }

async function jobsPage() {
  const { jobs } = await api("/v1/jobs?limit=100");
  const rows = jobs.map((j) => {
    const pct = j.tasks_total ? Math.round((100 * j.tasks_succeeded) / j.tasks_total) : 0;
    return `<tr><td><a href="#/job/${encodeURIComponent(j.job_id)}">${esc(j.job_id)}</a></td><td>${esc(j.type)}</td>
      <td>${badge(j.state)}</td><td><div class="bar"><span style="width:${pct}%"></span></div>
      <span class="muted">${j.tasks_succeeded}/${j.tasks_total}</span></td>
      <td>${when(j.submitted_at_ms)}</td><td class="num">${secs(j.submitted_at_ms, j.finished_at_ms)}</td></tr>`;
  }).join("");
  show(`<h1>Jobs</h1><table id="jobs"><thead><tr><th>Job</th><th>Type</th><th>State</th><th>Progress</th>
    <th>Submitted</th><th>Took</th></tr></thead><tbody>${rows || '<tr><td colspan="6" class="muted">No jobs yet.</td></tr>'}</tbody></table>`);
}

// Layered DAG: a task's column is its longest distance from a root.
function dagSvg(tasks) {
  const byId = Object.fromEntries(tasks.map((t) => [t.task_id, t]));
  const depth = {};
  const d = (id, seen = new Set()) => {
    if (depth[id] !== undefined) return depth[id];
    if (seen.has(id)) return 0;
    seen.add(id);
    const ps = (byId[id]?.parents || []).filter((p) => byId[p]);
    return (depth[id] = ps.length ? 1 + Math.max(...ps.map((p) => d(p, seen))) : 0);
  };
  tasks.forEach((t) => d(t.task_id));
  const cols = {};
  tasks.forEach((t) => (cols[depth[t.task_id]] = cols[depth[t.task_id]] || []).push(t));
  const W = 200, H = 46, GX = 50, GY = 16, pos = {};
  Object.entries(cols).forEach(([c, ts]) => ts.forEach((t, i) => (pos[t.task_id] = { x: 10 + c * (W + GX), y: 10 + i * (H + GY) })));
  const width = 20 + (Object.keys(cols).length) * (W + GX);
  const height = 20 + Math.max(...Object.values(cols).map((ts) => ts.length)) * (H + GY);
  const color = { succeeded: "#2e7d32", running: "#1565c0", assigned: "#1565c0", runnable: "#f9a825", failed: "#c62828",
    dead_lettered: "#c62828", cancelled: "#6d4c41" };
  const edges = tasks.flatMap((t) => (t.parents || []).filter((p) => pos[p]).map((p) => {
    const a = pos[p], b = pos[t.task_id];
    return `<path d="M${a.x + W},${a.y + H / 2} C${a.x + W + GX / 2},${a.y + H / 2} ${b.x - GX / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}" fill="none" stroke="#aaa"/>`;
  })).join("");
  const nodes = tasks.map((t) => {
    const p = pos[t.task_id];
    return `<g class="node" data-task="${esc(t.task_id)}" data-state="${esc(t.state)}"><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="6"
      fill="#fff" stroke="${color[t.state] || "#8e8e93"}" stroke-width="2"/>
      <text x="${p.x + 8}" y="${p.y + 18}" font-weight="600">${esc(t.task_id)}</text>
      <text x="${p.x + 8}" y="${p.y + 36}" fill="${color[t.state] || "#6e6e73"}">${esc(t.kind)} · ${esc(t.state)}</text></g>`;
  }).join("");
  return `<svg width="${width}" height="${height}">${edges}${nodes}</svg>`;
}

async function jobPage(id) {
  const [job, { tasks }] = await Promise.all([api(`/v1/jobs/${encodeURIComponent(id)}`), api(`/v1/jobs/${encodeURIComponent(id)}/tasks?limit=500`)]);
  const rows = tasks.map((t) => {
    const attempts = (t.attempts || []).map((a) => `#${a.attempt} ${esc(a.worker_id)} ${esc(a.state)}${a.duration_ms != null ? " " + a.duration_ms + " ms" : ""}${a.error ? " — " + esc(a.error) : ""}`).join("<br>");
    const art = t.artifact ? `<a href="/v1/jobs/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(t.task_id)}/${t.attempt}">output.json</a>` : "—";
    const why = t.reason && t.state === "runnable" ? `<div class="waiting">${esc(t.reason)}</div>` : "";
    const x = t.expansion;
    const grew = x ? `<div class="expansion">appended ${x.added.length} task(s)${x.fallback_reason ? ` from its fallback — ${esc(x.fallback_reason)}` : ""}</div>` : "";
    return `<tr><td>${esc(t.task_id)}</td><td>${esc(t.kind)}</td><td>${badge(t.state)}${why}${grew}</td><td>${attempts || "—"}</td><td>${art}</td></tr>`;
  }).join("");
  const table = Array.isArray(job.result?.table) ? resultTable(job.result.table) : "";
  const result = job.result ? `<h2>Result</h2><pre>${esc(job.result.text ?? JSON.stringify(job.result, null, 2))}</pre>` : "";
  show(`<h1>Job ${esc(job.job_id)} ${badge(job.state)}</h1>
    <div class="grid">
      <div class="card"><b>Type</b>${esc(job.type)}</div><div class="card"><b>Tenant</b>${esc(job.tenant)}</div>
      <div class="card"><b>Tasks</b>${job.tasks_succeeded}/${job.tasks_total} succeeded${job.tasks_failed ? `, ${job.tasks_failed} failed` : ""}</div>
      <div class="card"><b>Submitted</b>${when(job.submitted_at_ms)}</div><div class="card"><b>Took</b>${secs(job.submitted_at_ms, job.finished_at_ms)}</div>
      <div class="card"><b>Trace id</b><code>${esc(job.trace_id || "—")}</code></div>
    </div>
    ${job.reason ? `<p class="error">${esc(job.reason)}</p>` : ""}
    ${(job.waiting || []).map((w) => `<p class="waiting">Task ${esc(w.task_id)} waits: ${esc(w.reason)}</p>`).join("")}
    <h2>DAG</h2><div class="dag">${dagSvg(tasks)}</div>
    ${table}
    <h2>Tasks</h2><table id="tasks"><thead><tr><th>Task</th><th>Kind</th><th>State</th><th>Attempts</th><th>Artifact</th></tr></thead><tbody>${rows}</tbody></table>
    ${result}`);
}

// A `batch_analysis` records result: the ranked groups with their counts and sums.
function resultTable(rows) {
  const sums = rows.length ? Object.keys(rows[0].sums || {}).filter((k) => typeof rows[0].sums[k] === "number") : [];
  const head = `<tr><th>#</th><th>Records</th>${sums.map((s) => `<th>${esc(s)}</th>`).join("")}<th>Group (its most central record)</th><th>Ids</th></tr>`;
  const body = rows.map((r) => `<tr data-rank="${esc(String(r.rank))}" data-count="${esc(String(r.count))}"><td>${esc(String(r.rank))}</td><td>${esc(String(r.count))}</td>${sums.map((s) => `<td>${esc(String(r.sums[s]))}</td>`).join("")}<td>${esc(r.label)}</td><td>${esc((r.ids || []).join(", "))}</td></tr>`).join("");
  return `<h2>Table</h2><table id="result-table"><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

function lineChart(series, yMax, unit) {
  const W = 760, H = 200, P = 34;
  const all = Object.values(series).flat();
  if (!all.length) return `<p class="muted">Collecting samples…</p>`;
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - 2 * P), y = (v) => H - P - (Math.min(v, yMax) / yMax) * (H - 2 * P);
  const palette = ["#3451b2", "#2e7d32", "#c62828", "#f9a825", "#6d4c41", "#00838f"];
  const lines = Object.entries(series).map(([name, pts], i) =>
    `<polyline fill="none" stroke="${palette[i % palette.length]}" stroke-width="2" points="${pts.map((p) => `${x(p[0])},${y(p[1])}`).join(" ")}"/>
     <text x="${W - P - 150}" y="${16 + i * 14}" fill="${palette[i % palette.length]}">${esc(name)}</text>`).join("");
  return chart(W, H, `<line x1="${P}" y1="${H - P}" x2="${W - P}" y2="${H - P}" stroke="#ccc"/>
    <text x="4" y="${P}">${yMax}${unit}</text><text x="4" y="${H - P}">0</text>${lines}`);
}

// A chart in a card: the card's padding sits around the SVG, never inside its drawing area (an
// SVG that is itself the padded card loses its bottom and right edge to the padding), and the
// viewBox scales the drawing down on a narrow window instead of cutting it.
function chart(W, H, body) {
  return `<div class="card chart"><svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${body}</svg></div>`;
}

async function workersPage() {
  const { workers } = await api("/v1/workers");
  const now = Date.now();
  workers.filter((w) => w.live).forEach((w) => {
    const h = (samples.workers[w.worker_id] = samples.workers[w.worker_id] || []);
    h.push([now, (w.cpu_pct || 0) / Math.max(1, w.cores)]);
    if (h.length > 300) h.shift();
  });
  const rows = workers.map((w) => `<tr><td>${esc(w.worker_id)}</td><td>${w.live ? badge("running").replace(">running<", ">live<") : badge("cancelled").replace(">cancelled<", ">gone<")}</td>
    <td class="num">${w.running}/${w.slots}</td><td class="num">${(w.cpu_pct || 0).toFixed(0)}%</td><td class="num">${w.memory_used_mb ?? "—"} MiB</td>
    <td>${esc((w.models || []).join(", "))}</td><td>${esc((w.warm_models || []).join(", "))}</td><td>${when(w.last_beat_ms)}</td></tr>`).join("");
  show(`<h1>Workers</h1><h2>CPU utilization per worker (% of its cores)</h2>${lineChart(samples.workers, 100, "%")}
    <h2>Workers</h2><table id="workers"><thead><tr><th>Worker</th><th>Live</th><th>Slots in use</th><th>CPU</th><th>Memory</th><th>Models</th><th>Warm</th><th>Last beat</th></tr></thead>
    <tbody>${rows || '<tr><td colspan="8" class="muted">No workers.</td></tr>'}</tbody></table>`);
}

// Charts from /metrics (Prometheus text): job latency histogram, retries, dead letters.
function parseMetrics(text) {
  const out = [];
  text.split("\n").forEach((l) => {
    const m = l.match(/^([a-z_]+)(\{([^}]*)\})? ([0-9.eE+-]+|NaN)$/);
    if (!m) return;
    const labels = {};
    (m[3] || "").replace(/(\w+)="((?:[^"\\]|\\.)*)"/g, (_, k, v) => (labels[k] = v));
    out.push({ name: m[1], labels, value: Number(m[4]) });
  });
  return out;
}

function bars(pairs, unit) {
  if (!pairs.length) return `<p class="muted">No data yet.</p>`;
  const max = Math.max(1, ...pairs.map((p) => p[1])), W = 760, BH = 22;
  // Labels longer than the 144 px before the bars are shortened; the whole one is the tooltip.
  const short = (l) => (l.length > 22 ? `${l.slice(0, 21)}…` : l);
  return chart(W, pairs.length * BH + 10, pairs.map(([label, v], i) =>
    `<g data-bar="${esc(label)}"><title>${esc(label)}: ${v}${unit}</title><text x="6" y="${i * BH + 18}">${esc(short(label))}</text>
     <rect x="150" y="${i * BH + 6}" height="14" width="${(v / max) * (W - 260)}" fill="#3451b2"/>
     <text x="${156 + (v / max) * (W - 260)}" y="${i * BH + 18}">${v}${unit}</text></g>`).join(""));
}

// Per tenant and model, the figures the scheduler's dataflow keeps and writes to the `metrics`
// topic (GET /v1/metrics/live reads the newest of each from the read model: live, and the same
// after a restart); the job latency histogram and CPU from /metrics (Prometheus text).
async function chartsPage() {
  const live = await api("/v1/metrics/live");
  const scopes = live.scopes || [], cluster = live.cluster || {};
  const total = (f) => scopes.reduce((a, s) => a + (s[f] || 0), 0);
  const name = (s) => `${s.tenant}${s.model ? " · " + s.model : ""}`;
  const window = scopes.length ? `last ${Math.round(scopes[0].window_ms / 1000)} s` : "window";
  const pct = (s, f, q) => (s[f] && s[f][q] != null ? s[f][q] : 0);
  let m = [];
  try { m = parseMetrics(await api("/metrics", true)); } catch (e) { m = []; }
  const buckets = m.filter((s) => s.name === "splai_job_latency_seconds_bucket");
  const bounds = [...new Set(buckets.map((b) => b.labels.le))];
  let prev = 0;
  const latency = bounds.map((le) => {
    const total = buckets.filter((b) => b.labels.le === le).reduce((a, b) => a + b.value, 0);
    const n = total - prev; prev = total;
    return [le === "+Inf" ? "> 600 s" : `≤ ${le} s`, n];
  }).filter((p) => p[1] > 0);
  const util = m.filter((s) => s.name === "splai_worker_cpu_percent").map((s) => [s.labels.worker, Math.round(s.value)]);
  show(`<h1>Charts</h1>
    <div class="grid" id="live-cards"><div class="card"><b>Runnable</b>${total("runnable")}</div>
    <div class="card"><b>Running</b>${total("running")}</div>
    <div class="card"><b>Succeeded (${window})</b>${total("succeeded")}</div>
    <div class="card"><b>Failed (${window})</b>${total("failed")}</div>
    <div class="card"><b>Retries (${window})</b>${total("retries")}</div>
    <div class="card"><b>Dead letters (${window})</b>${total("dead_letters")}</div>
    <div class="card"><b>Live workers</b>${cluster.live_workers ?? 0}</div>
    <div class="card"><b>Free slots</b>${cluster.free_slots ?? 0}</div></div>
    <h2>Runnable and running per tenant and model (from the metrics stream)</h2>${bars(scopes.flatMap((s) => [[`${name(s)} runnable`, s.runnable], [`${name(s)} running`, s.running]]), "")}
    <h2>Queue wait p50 / p95 (${window})</h2>${bars(scopes.flatMap((s) => [[`${name(s)} p50`, pct(s, "queue_wait_ms", "p50")], [`${name(s)} p95`, pct(s, "queue_wait_ms", "p95")]]), " ms")}
    <h2>Run time p50 / p95 (${window})</h2>${bars(scopes.flatMap((s) => [[`${name(s)} p50`, pct(s, "run_ms", "p50")], [`${name(s)} p95`, pct(s, "run_ms", "p95")]]), " ms")}
    <h2>Job latency (submit → done)</h2>${bars(latency, "")}
    <h2>Worker CPU utilization now</h2>${bars(util, "%")}`);
}

async function route() {
  clearInterval(timer);
  const hash = location.hash || "#/jobs";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", hash.startsWith(a.getAttribute("href"))));
  const job = hash.match(/^#\/job\/(.+)$/);
  const page = job ? () => jobPage(decodeURIComponent(job[1]))
    : hash.startsWith("#/workers") ? workersPage
    : hash.startsWith("#/charts") ? chartsPage : jobsPage;
  const run = () => page().catch(fail);
  await run();
  timer = setInterval(run, 2000);
}
window.addEventListener("hashchange", route);
route();
