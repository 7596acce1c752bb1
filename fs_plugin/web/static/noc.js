// NOC page: live decisions over SSE, filters, rates, charts, drill-down. No build step.
"use strict";

const MAX_ROWS = 500; // rows kept in the table: a live view, not an archive
const $ = (id) => document.getElementById(id);
let source = null;
let filter = {};

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(path, opts) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  if (resp.status === 401) { showLogin(); throw new Error("unauthenticated"); }
  if (!resp.ok) throw new Error((await resp.json()).reason || resp.statusText);
  return resp.json();
}

function showLogin() {
  $("login").hidden = false;
  $("main").hidden = true;
  if (source) { source.close(); source = null; }
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  const resp = await fetch("/api/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value }),
  });
  $("token").value = "";
  if (!resp.ok) { $("login-error").textContent = "token refused"; return; }
  start(await resp.json());
}

function pill(id, text, state) {
  const p = $(id);
  p.textContent = text;
  p.className = "pill" + (state ? " " + state : "");
}

function showStatus(s) {
  pill("st-policy", "policy: " + s.policy);
  pill("st-esl", s.esl_connected === -1 ? "switch: no ESL" :
    "switch: " + (s.esl_connected ? "connected" : "DISCONNECTED"),
    s.esl_connected === 0 ? "bad" : (s.esl_connected === 1 ? "ok" : ""));
  pill("st-accepting", "accepting: " + (s.accepting ? "yes" : "NO"), s.accepting ? "ok" : "bad");
  pill("st-store", "counters: " + (s.counter_store_up ? "up" : "DOWN/slow"),
    s.counter_store_up ? "ok" : "bad");
  pill("st-lag", "lag: " + s.lag_ms + " ms", s.lag_ms > 50 ? "warn" : "");
}

function matches(e) {
  if (filter.verdict && e.verdict !== filter.verdict) return false;
  if (filter.trunk && e.trunk !== filter.trunk) return false;
  if (filter.rule && e.rule !== filter.rule &&
      !(e.shadow || []).some((h) => h.rule === filter.rule)) return false;
  if (filter.shadow && !(e.shadow || []).length) return false;
  return true; // number filtering is done by the server on the unmasked numbers
}

function addRow(e, fresh) {
  if (!matches(e)) return;
  const tr = el("tr", null, "decision" + (fresh ? " fresh" : ""));
  tr.dataset.uuid = e.uuid;
  tr.dataset.verdict = e.verdict;
  tr.dataset.trunk = e.trunk || "";
  const t = new Date(e.at * 1000);
  tr.append(
    el("td", t.toLocaleTimeString()),
    el("td", e.switch || ""),
    el("td", e.verdict + (e.fallback ? " (fallback)" : ""), "v-" + e.verdict),
    el("td", e.trunk || "?"),
    el("td", e.rule || ""),
    el("td", e.caller || ""),
    el("td", e.callee || ""),
    el("td", e.reason || "", "reason"),
    el("td", (e.shadow || []).map((h) => h.rule + "→" + h.verdict).join(", ")),
    el("td", e.policy),
    el("td", e.latency_ms),
  );
  tr.addEventListener("click", () => drill(e.uuid));
  const body = $("log-body");
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  $("count").textContent = body.rows.length + " shown";
}

function policyEvent(p) {
  const li = el("li", new Date(p.at * 1000).toLocaleTimeString() + " " + p.trigger + ": " +
    p.result + " " + p.old + " → " + p.new + (p.error ? " — " + p.error : ""),
    p.result === "refused" ? "error" : "");
  $("policy-events").prepend(li);
}

function connect() {
  if (source) source.close();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v === true ? "true" : v);
  source = new EventSource("/api/stream?" + q.toString());
  source.onopen = () => pill("st-stream", "stream: live", "ok");
  source.onerror = () => pill("st-stream", "stream: reconnecting", "bad");
  source.addEventListener("decision", (m) => addRow(JSON.parse(m.data), true));
  source.addEventListener("status", (m) => showStatus(JSON.parse(m.data)));
  source.addEventListener("policy", (m) => policyEvent(JSON.parse(m.data)));
}

function applyFilters(ev) {
  if (ev) ev.preventDefault();
  filter = {
    verdict: $("f-verdict").value, trunk: $("f-trunk").value.trim(),
    rule: $("f-rule").value.trim(), number: $("f-number").value.trim(),
    shadow: $("f-shadow").checked,
  };
  $("log-body").textContent = "";
  connect(); // the server sends the matching backlog first
}

function fillTable(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.textContent = "";
  for (const r of rows) {
    const tr = el("tr");
    for (const c of r) tr.append(el("td", c));
    body.append(tr);
  }
}

async function refreshRates() {
  try {
    const r = await api("/api/rates?window=300");
    fillTable("rates-trunk", Object.entries(r.by_trunk).map(([t, c]) =>
      [t, c.total, c.per_min, c.block, c.warn, Math.round(c.block_share * 100) + "%"]));
    fillTable("rates-rule", Object.entries(r.by_rule).map(([t, c]) =>
      [t, c.block, c.warn, c.per_min]));
    fillTable("rates-shadow", Object.entries(r.shadow));
  } catch (err) { /* shown by the status pills */ }
}

function drawChart(id, series) {
  const cv = $(id);
  const ctx = cv.getContext("2d");
  const w = cv.width, h = cv.height - 14;
  ctx.clearRect(0, 0, cv.width, cv.height);
  const pts = series.points;
  const max = Math.max(1, ...pts.map((p) => p.pass + p.warn + p.block));
  const bw = w / pts.length;
  pts.forEach((p, i) => {
    let y = h;
    for (const [k, colour] of [["block", "#b3261e"], ["warn", "#e09a1c"], ["pass", "#9cc7a4"]]) {
      const bh = (p[k] / max) * (h - 4);
      ctx.fillStyle = colour;
      ctx.fillRect(i * bw, y - bh, Math.max(1, bw - 1), bh);
      y -= bh;
    }
    if (p.shadow) {
      ctx.fillStyle = "#6a5acd";
      ctx.fillRect(i * bw, h + 2, Math.max(1, bw - 1), 3);
    }
  });
  ctx.fillStyle = "#687086";
  ctx.font = "10px sans-serif";
  ctx.fillText("max " + max + " per " + series.step_s / 60 + " min", 2, cv.height - 2);
}

async function refreshCharts() {
  try {
    drawChart("chart-hour", await api("/api/series?span=hour"));
    drawChart("chart-day", await api("/api/series?span=day"));
  } catch (err) { /* shown by the status pills */ }
}

async function drill(uuid) {
  const d = await api("/api/decisions/" + encodeURIComponent(uuid));
  $("detail").hidden = false;
  $("d-uuid").textContent = uuid;
  const e = d.event || {};
  $("d-summary").textContent = [e.verdict, e.rule, e.cause, e.sip_status, e.reason]
    .filter((x) => x !== undefined && x !== null && x !== "").join(" · ");
  fillTable("d-trail", (d.trail || []).map((r) =>
    [r.rule, r.fired ? "yes" : "", r.verdict, r.mode, r.reason]));
  $("d-journal").textContent = d.journal.length ? JSON.stringify(d.journal, null, 1) :
    "(not in the journal yet, or no journal configured)";
  $("detail").scrollIntoView({ behavior: "smooth" });
}

async function start(who) {
  $("login").hidden = true;
  $("main").hidden = false;
  pill("st-who", who.name + " (" + who.role + ")");
  applyFilters();
  refreshRates();
  refreshCharts();
  setInterval(refreshRates, 5000);
  setInterval(refreshCharts, 5000); // one cheap request each; keeps the bars current
  try {
    const p = await api("/api/policy");
    (p.history || []).slice().reverse().forEach(policyEvent);
  } catch (err) { /* editors' history is informative only */ }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", login);
  $("filters").addEventListener("submit", applyFilters);
  $("f-clear").addEventListener("click", () => { $("filters").reset(); applyFilters(); });
  $("d-close").addEventListener("click", () => { $("detail").hidden = true; });
  try { start(await api("/api/whoami")); } catch (err) { showLogin(); }
});
