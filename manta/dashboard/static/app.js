// Manta's dashboard: one page, a view per location hash (#/jobs/ID, ...), every figure
// fetched from the JSON APIs with the session cookie. Text from the cluster (names, logs,
// tracebacks) is only ever set as text, never parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const PAGE_SIZES = [50, 100, 500, 1000];
const CHANGES = new Set(["submit", "admin"]); // roles that may stop jobs and kill actors
const main = document.getElementById("main");
let me = { name: "", role: "read" };
let timer = null; // the current view's refresh
let socket = null; // a followed job log
let follow = null; // the AbortController of a followed log file
let metrics = null; // the metrics view's samples and charts, kept across refreshes
let navigation = 0; // bumped by every route(): a view whose answers come later is stale

// -- building blocks --------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick" || key === "onchange" || key === "onsubmit") el[key] = value;
    else if (value !== null && value !== undefined && value !== false) el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}
class Stale extends Error {} // another route() began while this view waited: it must not draw

async function api(path, options) {
  const started = navigation;
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const reading = !options || !options.method || options.method === "GET"; // a change is always answered
  if (reading && started !== navigation) throw new Stale();
  if (response.status === 401) { location.assign("/login"); throw new HttpError(401, "logged out"); }
  const body = response.headers.get("Content-Type", "").includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new HttpError(response.status, (body && body.error) || String(body));
  return body;
}

// A state-API listing: {rows, total, matched, offset}.
async function listing(resource, { filters = [], limit = 100, detail = false, offset = 0 } = {}) {
  const query = new URLSearchParams({ limit: String(limit), detail: String(detail), offset: String(offset) });
  for (const [key, op, value] of filters) {
    query.append("filter_keys", key); query.append("filter_predicates", op); query.append("filter_values", value);
  }
  const body = await api(`/api/v0/${resource}?${query}`);
  const result = body.data.result;
  return { rows: result.result, total: result.total, matched: result.num_filtered, offset };
}

function stateCell(state) { return h("td", { class: `state-${state}` }, state); }
function short(id) { return id ? h("span", { class: "id", title: id }, id.slice(0, 12)) : "—"; }
function when(ms) { return ms ? new Date(ms).toLocaleString() : "—"; }
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function duration(startMs, endMs) {
  if (!startMs) return "—";
  const s = Math.max(((endMs || Date.now()) - startMs) / 1000, 0);
  return s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}
function resources(map) {
  // (A placement group's bundles show as resources of their own: they are on its page.)
  return Object.entries(map || {}).filter(([k]) => !k.startsWith("node:") && !/_group_/.test(k))
    .map(([k, v]) => (k.includes("memory") ? `${k}: ${bytes(v)}` : `${k}: ${v}`)).join(", ");
}
function bar(used, total) {
  const pct = total ? Math.min(100, (100 * used) / total) : 0;
  const fill = h("span", {});
  fill.style.width = `${pct}%`; // through the CSSOM: the policy refuses style attributes
  return h("span", {}, h("span", { class: "bar", title: `${pct.toFixed(0)}%` }, fill), ` ${pct.toFixed(0)}%`);
}
function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))), h("tbody", {}, rows));
}
function card(label, value, extra) {
  return h("div", { class: "card" }, h("div", { class: "value" }, value), h("div", { class: "label" }, label), extra || null);
}
function show(...nodes) { main.replaceChildren(...nodes.flat(2).filter((n) => n !== null && n !== undefined)); }

// -- views ----------------------------------------------------------------------------------
async function overview() {
  const failures = [["state", "=", "FAILED"]];
  const recently = `/api/v0/metrics/history?since=${Date.now() / 1000 - 60}`; // the last sample is all it shows
  let [nodes, jobs, history, counted] = await Promise.all([
    listing("nodes", { limit: 10000 }),
    api("/api/jobs/"),
    api(recently),
    listing("tasks", { filters: failures, limit: 0 }), // how many, to ask for the last ten only
  ]);
  const failed = await listing("tasks", { filters: failures, limit: 10, offset: Math.max(counted.matched - 10, 0) });
  if (!history.samples.length) history = await api("/api/v0/metrics/history"); // this browser's clock is off
  const alive = nodes.rows.filter((n) => n.state === "ALIVE");
  const last = history.samples[history.samples.length - 1];
  const total = (key) => alive.reduce((sum, n) => sum + ((n.resources_total || {})[key] || 0), 0);
  const running = jobs.filter((j) => j.status === "RUNNING");
  const cards = h("div", { class: "cards", id: "overview-cards" },
    card("nodes alive", alive.length, h("div", { class: "muted" }, `${nodes.rows.length - alive.length} dead`)),
    card("CPUs", total("CPU"), last ? h("div", {}, "used ", bar(last.cpu_percent, 100)) : null),
    card("GPUs", total("GPU")),
    card("memory", last ? bytes(last.mem_total_bytes) : "—", last ? h("div", {}, "used ", bar(last.mem_used_bytes, last.mem_total_bytes)) : null),
    card("object store", last ? bytes(last.object_store_capacity_bytes) : "—",
      last ? h("div", {}, "used ", bar(last.object_store_used_bytes, last.object_store_capacity_bytes), ` · spilled ${bytes(last.spilled_bytes)}`) : null),
    card("running jobs", running.length));
  const recent = failed.rows.reverse();
  show(h("h1", {}, "Overview"), cards,
    h("h2", {}, "Running jobs"),
    running.length ? jobTable(running) : h("p", { class: "muted" }, "No job is running."),
    h("h2", {}, "Recent failures"),
    recent.length ? table(["task", "name", "error", "job"], recent.map((t) => h("tr", {},
      h("td", {}, h("a", { href: `#/tasks/${t.task_id}` }, short(t.task_id))), h("td", {}, t.name),
      h("td", { class: "error" }, t.error_type || "—"), h("td", {}, t.job_id || "—"))))
      : h("p", { class: "muted" }, "No task has failed."));
}

async function nodesView() {
  const [nodes, workers, use] = await Promise.all([
    listing("nodes", { limit: 10000 }), listing("workers", { limit: 10000 }), api("/api/v0/metrics/nodes")]);
  const count = {};
  for (const w of workers.rows) if (w.is_alive) count[w.node_id] = (count[w.node_id] || 0) + 1;
  const usage = (n, render) => (use[n.node_id] ? render(use[n.node_id]) : "—");
  show(h("h1", {}, "Nodes"), table(["node", "address", "state", "resources", "CPU", "memory", "object store", "spilled", "workers", "labels"],
    nodes.rows.map((n) => h("tr", { "data-node": n.node_id }, h("td", {}, short(n.node_id), n.is_head_node ? " (head)" : ""), h("td", {}, n.node_ip),
      stateCell(n.state), h("td", {}, resources(n.resources_total)),
      h("td", {}, usage(n, (u) => bar(u.cpu_percent || 0, 100))),
      h("td", {}, usage(n, (u) => h("span", {}, bar(u.mem_used_bytes, u.mem_total_bytes), ` of ${bytes(u.mem_total_bytes)}`))),
      h("td", {}, usage(n, (u) => h("span", {}, bar(u.object_store_used_bytes, u.object_store_capacity_bytes), ` of ${bytes(u.object_store_capacity_bytes)}`))),
      h("td", { class: "num" }, usage(n, (u) => bytes(u.spilled_bytes || 0))),
      h("td", { class: "num" }, count[n.node_id] || 0),
      h("td", {}, Object.entries(n.labels || {}).filter(([k]) => !k.startsWith("ray.io/")).map(([k, v]) => `${k}=${v}`).join(", "))))));
}

function jobTable(jobs) {
  const env = (j) => (j.runtime_env && Object.keys(j.runtime_env).length ? JSON.stringify(j.runtime_env).slice(0, 120) : "");
  return table(["job", "status", "entrypoint", "runtime env", "started", "duration"], jobs.map((j) => h("tr", {},
    h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(j.submission_id || j.job_id)}` }, j.submission_id || j.job_id)),
    stateCell(j.status), h("td", {}, h("code", {}, j.entrypoint || "")), h("td", {}, h("code", {}, env(j))),
    h("td", {}, when(j.start_time)), h("td", {}, duration(j.start_time, j.end_time)))));
}

async function jobsView() {
  const jobs = await api("/api/jobs/");
  jobs.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
  show(h("h1", {}, "Jobs"), jobs.length ? jobTable(jobs) : h("p", { class: "muted" }, "No job has been submitted."));
}

async function jobView(id) {
  const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
  let provenance = {};
  try { provenance = await api(`/api/jobs/${encodeURIComponent(id)}/provenance`); }
  catch (e) { if (e instanceof Stale) throw e; } // (a driver's own job has none)
  const ended = ["SUCCEEDED", "FAILED", "STOPPED"].includes(job.status);
  const stop = !ended && CHANGES.has(me.role) && job.type === "SUBMISSION"
    ? h("button", { class: "danger", id: "stop-job", onclick: () => stopJob(id) }, "Stop job") : null;
  const facts = [["status", h("span", { class: `state-${job.status}`, id: "job-status" }, job.status)],
    ["entrypoint", h("code", {}, job.entrypoint || "")], ["submitter", provenance.submitter || "—"],
    ["runtime env", h("code", {}, JSON.stringify(job.runtime_env || {}))], ["started", when(job.start_time)],
    ["duration", duration(job.start_time, job.end_time)], ["message", job.message || ""]];
  const log = document.getElementById("job-log");
  if (log && log.dataset.job === id) { // refreshed: keep the followed log as it is
    document.getElementById("job-facts").replaceWith(factsTable(facts));
    const old = document.getElementById("stop-job");
    if (old && !stop) old.remove();
    return;
  }
  show(h("h1", {}, `Job ${id}`), factsTable(facts), stop, h("h2", {}, "Log"),
    h("pre", { id: "job-log", "data-job": id }, ""));
  if (job.type === "SUBMISSION") followLog(id);
}

function factsTable(facts) {
  return h("table", { id: "job-facts" }, facts.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))));
}

function followLog(id) {
  if (socket) socket.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const pre = document.getElementById("job-log");
  socket = new WebSocket(`${scheme}://${location.host}/api/jobs/${encodeURIComponent(id)}/logs/tail`);
  socket.onmessage = (event) => {
    if (!pre.isConnected) return; // the page moved on
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(event.data);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
}

async function stopJob(id) {
  if (!confirm(`Stop job ${id}?`)) return;
  try { await api(`/api/jobs/${encodeURIComponent(id)}/stop`, { method: "POST" }); }
  catch (e) { if (!(e instanceof Stale)) alert(`Could not stop the job: ${e.message}`); }
  route();
}

async function actorsView(params) {
  const filters = [];
  if (params.get("state")) filters.push(["state", "=", params.get("state")]);
  if (params.get("name")) filters.push(["class_name", "=", params.get("name")]);
  const limit = Number(params.get("limit")) || 100;
  const actors = await listing("actors", { filters, limit, detail: true, offset: Number(params.get("offset")) || 0 });
  show(h("h1", {}, "Actors"), filterForm("actors", params, [["state", ["", "ALIVE", "PENDING_CREATION", "RESTARTING", "DEAD"]], ["name", null]]),
    pager("actors", params, actors, limit),
    table(["actor", "class", "name", "state", "restarts", "node", "pid", "death cause", ""], actors.rows.map((a) => h("tr", {},
      h("td", {}, short(a.actor_id)), h("td", {}, a.class_name), h("td", {}, a.name || ""), stateCell(a.state),
      h("td", { class: "num" }, a.num_restarts), h("td", {}, short(a.node_id)), h("td", { class: "num" }, a.pid || ""),
      h("td", {}, a.death_cause ? h("pre", {}, typeof a.death_cause === "string" ? a.death_cause : JSON.stringify(a.death_cause, null, 1)) : ""),
      h("td", {}, CHANGES.has(me.role) && a.state !== "DEAD"
        ? h("button", { class: "danger", "data-kill": a.actor_id, onclick: () => killActor(a) }, "Kill") : "")))));
}

async function killActor(actor) {
  if (!confirm(`Kill actor ${actor.class_name} ${actor.actor_id}?`)) return;
  try { await api(`/api/v0/actors/${actor.actor_id}/kill`, { method: "POST" }); }
  catch (e) { if (!(e instanceof Stale)) alert(`Could not kill the actor: ${e.message}`); }
  route();
}

async function tasksView(params) {
  const filters = [];
  for (const key of ["state", "name", "job_id"]) if (params.get(key)) filters.push([key, "=", params.get(key)]);
  const limit = Number(params.get("limit")) || 100;
  const tasks = await listing("tasks", { filters, limit, offset: Number(params.get("offset")) || 0 });
  show(h("h1", {}, "Tasks"),
    filterForm("tasks", params, [["state", ["", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED", "FAILED"]], ["name", null], ["job_id", null]]),
    pager("tasks", params, tasks, limit),
    table(["task", "attempt", "name", "state", "type", "node", "pid", "error"], tasks.rows.map((t) => h("tr", {},
      h("td", {}, h("a", { href: `#/tasks/${t.task_id}` }, short(t.task_id))), h("td", { class: "num" }, t.attempt_number),
      h("td", {}, t.name), stateCell(t.state), h("td", {}, t.type), h("td", {}, short(t.node_id)),
      h("td", { class: "num" }, t.worker_pid || ""), h("td", { class: "error" }, t.error_type || "")))));
}

async function taskView(id) {
  const attempts = (await listing("tasks", { filters: [["task_id", "=", id]], detail: true })).rows;
  if (!attempts.length) throw new HttpError(404, `The task-event store has no task ${id}.`);
  const task = attempts[attempts.length - 1];
  const parts = [h("h1", {}, `Task ${task.name}`), factsTable([["task id", h("code", {}, task.task_id)], ["attempt", task.attempt_number],
    ["state", h("span", { class: `state-${task.state}` }, task.state)], ["function", task.func_or_class_name], ["job", task.job_id],
    ["node", task.node_id || "—"], ["worker pid", task.worker_pid || "—"], ["resources", resources(task.required_resources)]])];
  if (task.error_message) parts.push(h("h2", {}, `Error: ${task.error_type}`), h("pre", { id: "traceback", class: "error" }, task.error_message));
  if (!["FINISHED", "FAILED"].includes(task.state)) {
    const why = await api(`/api/v0/tasks/${encodeURIComponent(id)}/explain`);
    const lines = why.data.result;
    parts.push(h("h2", {}, "Why it has not finished"), h("pre", { id: "explanation" }, Array.isArray(lines) ? lines.join("\n") : String(lines)));
  }
  show(...parts);
}

async function groupsView() {
  const groups = await listing("placement_groups", { limit: 10000, detail: true });
  show(h("h1", {}, "Placement groups"), table(["group", "name", "state", "bundles"], groups.rows.map((g) => h("tr", {},
    h("td", {}, short(g.placement_group_id)), h("td", {}, g.name || ""), stateCell(g.state),
    h("td", {}, (g.bundles || []).map((b) => h("div", {}, `${resources(b.unit_resources)} on `, short(b.node_id))))))));
}

// -- metrics: charts of the head's history, extended every refresh ---------------------
const COLORS = ["#1565c0", "#2e7d32", "#c62828", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#455a64"];
const GIB = 2 ** 30;
const CHARTS = [
  ["cpu", "CPU used (%)", () => [["all hosts", (s) => s.cpu_percent]]],
  ["memory", "Memory (GiB)", () => [["used", (s) => s.mem_used_bytes / GIB], ["total", (s) => s.mem_total_bytes / GIB]]],
  ["store", "Object store (GiB)", () => [["used", (s) => s.object_store_used_bytes / GIB], ["spilled", (s) => s.spilled_bytes / GIB]]],
  ["tasks", "Tasks by state", (samples) => byState(samples, "tasks")],
  ["actors", "Actors by state", (samples) => byState(samples, "actors")],
];

function byState(samples, key) {
  const states = [...new Set(samples.flatMap((s) => Object.keys(s[key] || {})))].sort();
  return states.map((state) => [state, (s) => (s[key] || {})[state] || 0]);
}

async function metricsView() {
  const fresh = !document.getElementById("charts");
  if (fresh) metrics = { samples: [], charts: {} };
  const since = metrics.samples.length ? `?since=${metrics.samples[metrics.samples.length - 1].time}` : "";
  const history = await api(`/api/v0/metrics/history${since}`);
  metrics.samples.push(...history.samples);
  const keep = metrics.samples.length - Math.ceil(history.window_s / history.interval_s);
  if (keep > 0) metrics.samples.splice(0, keep);
  if (fresh) {
    show(h("h1", {}, "Metrics"), h("p", { class: "muted" },
      `The cluster sampled every ${history.interval_s} s, for the last ${history.window_s / 60} min; live.`),
      h("div", { id: "charts", class: "charts" }, CHARTS.map(([id, title]) => h("div", { class: "chart", id: `chart-${id}` }, h("h2", {}, title)))));
  }
  for (const [id, , lines] of CHARTS) drawChart(id, lines(metrics.samples));
}

function drawChart(id, lines) {
  const box = document.getElementById(`chart-${id}`);
  const data = [metrics.samples.map((s) => s.time), ...lines.map(([, get]) => metrics.samples.map(get))];
  box.dataset.points = String(metrics.samples.length);
  const labels = lines.map(([label]) => label).join("|");
  const chart = metrics.charts[id];
  if (chart && chart.labels === labels) { chart.plot.setData(data); return; }
  if (chart) chart.plot.destroy();
  const series = [{}, ...lines.map(([label], i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 }))];
  const plot = new uPlot({ width: Math.max(box.clientWidth - 8, 300), height: 220, series, scales: { x: { time: true } } }, data, box);
  metrics.charts[id] = { plot, labels };
}

// -- logs: any node's files, and one followed as it grows ---------------------------------
async function logsView(params) {
  const nodes = (await listing("nodes", { limit: 10000 })).rows.filter((n) => n.state === "ALIVE");
  const nodeId = params.get("node_id") || (nodes.find((n) => n.is_head_node) || nodes[0] || {}).node_id;
  const body = await api(`/api/v0/logs?node_id=${encodeURIComponent(nodeId)}`);
  const picker = h("select", { onchange: (e) => { location.hash = `#/logs?node_id=${e.target.value}`; } },
    nodes.map((n) => h("option", { value: n.node_id, selected: n.node_id === nodeId ? "" : null }, `${n.node_id.slice(0, 12)} (${n.node_ip})`)));
  const groups = Object.entries(body.data.result).filter(([, names]) => names.length);
  show(h("h1", {}, "Logs"), h("p", {}, "Node ", picker),
    groups.map(([category, names]) => [h("h2", {}, category), h("ul", {}, names.map((name) => h("li", {},
      h("a", { href: `#/logs/${encodeURIComponent(nodeId)}/${encodeURIComponent(name)}` }, name))))]));
}

async function logFileView(_match, params) {
  const [nodeId, name] = [params.get("node"), params.get("file")];
  show(h("h1", {}, name), h("p", { class: "muted" }, `node ${nodeId}: the last 1000 lines, then what is written to it`),
    h("pre", { id: "log-file" }, ""));
  follow = new AbortController();
  const query = new URLSearchParams({ node_id: nodeId, filename: name, lines: "1000" });
  const response = await fetch(`/api/v0/logs/stream?${query}`, { credentials: "same-origin", signal: follow.signal });
  if (response.status === 401) { location.assign("/login"); throw new HttpError(401, "logged out"); }
  if (!response.ok) throw new HttpError(response.status, (await response.json()).error);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const pre = document.getElementById("log-file");
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ done: true }));
    if (done) break;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(decoder.decode(value, { stream: true }));
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
}

// "rows 101-200 of 5,000 matching (100,000 in all)", with the pages before and after.
function pager(view, params, list, limit) {
  const page = (offset) => { const q = new URLSearchParams(params); q.set("offset", String(Math.max(offset, 0))); return `#/${view}?${q}`; };
  const first = list.rows.length ? list.offset + 1 : 0;
  return h("div", { class: "pager" },
    list.offset > 0 ? h("a", { href: page(list.offset - limit), id: "previous-page" }, "← previous") : null,
    h("span", { class: "muted", id: "shown" }, `rows ${first}-${list.offset + list.rows.length} of ${list.matched.toLocaleString()} matching (${list.total.toLocaleString()} in all)`),
    list.offset + list.rows.length < list.matched ? h("a", { href: page(list.offset + limit), id: "next-page" }, "next →") : null);
}

function filterForm(view, params, fields) {
  const inputs = fields.map(([name, options]) => options
    ? h("select", { name }, options.map((o) => h("option", { value: o, selected: params.get(name) === o ? "" : null }, o || `any ${name}`)))
    : h("input", { name, placeholder: name, value: params.get(name) || "" }));
  const size = h("select", { name: "limit" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: Number(params.get("limit") || 100) === n ? "" : null }, `${n} rows`)));
  return h("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const el of event.target.elements) if (el.name && el.value) query.set(el.name, el.value);
    location.hash = `#/${view}?${query}`;
  } }, inputs, size, h("button", { type: "submit" }, "Filter"));
}

// -- routing --------------------------------------------------------------------------------
const VIEWS = [
  [/^\/?$/, overview, true], [/^\/nodes$/, nodesView, true], [/^\/jobs$/, jobsView, true],
  [/^\/jobs\/(.+)$/, jobView, true], [/^\/actors$/, actorsView, true], [/^\/tasks$/, tasksView, false],
  [/^\/tasks\/(.+)$/, taskView, true], [/^\/placement-groups$/, groupsView, true],
  [/^\/metrics$/, metricsView, true], [/^\/logs$/, logsView, false], [/^\/logs\/([^/]+)\/(.+)$/, logFileView, false],
];

async function route() {
  clearTimeout(timer);
  navigation++;
  const [path, query] = location.hash.slice(1).split("?");
  if (socket && !path.startsWith("/jobs/")) { socket.close(); socket = null; }
  if (follow) { follow.abort(); follow = null; }
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.getAttribute("href") === `#${path.split("/").slice(0, 2).join("/")}`);
  for (const [pattern, view, refresh] of VIEWS) {
    const match = pattern.exec(path || "/");
    if (!match) continue;
    const params = new URLSearchParams(query || "");
    if (match[2]) { params.set("node", decodeURIComponent(match[1])); params.set("file", decodeURIComponent(match[2])); }
    try {
      await view(match[1] ? decodeURIComponent(match[1]) : params, params);
    } catch (e) {
      if (e instanceof Stale || e.status === 401) return; // a newer view draws; or, to the login
      show(h("h1", {}, "Error"), h("p", { class: "error" }, e.message)); // tried again below
    }
    if (refresh) timer = setTimeout(refreshView, REFRESH_MS);
    return;
  }
  show(h("h1", {}, "Not found"), h("p", {}, "There is no such page."));
}

function refreshView() {
  // Redrawing would replace a filter form the user is typing in: wait until they leave it.
  if (document.querySelector("form.filters :focus")) timer = setTimeout(refreshView, REFRESH_MS);
  else route();
}

async function start() {
  me = await api("/api/session");
  document.getElementById("who").textContent = `${me.name} (${me.role})`;
  window.addEventListener("hashchange", () => { if (socket) { socket.close(); socket = null; } route(); });
  route();
}

start();
