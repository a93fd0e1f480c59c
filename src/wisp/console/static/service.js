import { age, api, clock, feed, h, link, noteLag, num, readyBadge } from "./common.js";

const [, , , namespace, name] = location.pathname.split("/").map(decodeURIComponent);
document.title = `${name} · wisp`;
document.getElementById("title").textContent = `Service ${namespace}/${name}`;

const FIELDS = ["t", "desired", "ready", "stable", "panic", "panicking", "rps", "p50", "p99", "inFlight"];
const KEEP = 300;
const series = Object.fromEntries(FIELDS.map(f => [f, []]));

// -- summary and revisions ------------------------------------------------------------------------------------
function showService(service) {
  const summary = document.getElementById("summary");
  if (!service) { summary.replaceChildren(h("dt", {}, "State"), h("dd", {}, "deleted")); return; }
  const items = [["URL", service.url ? link(service.url) : "–"],
    ["Ready", readyBadge(service.ready.status, service.ready.reason, service.ready.message)],
    ["Message", service.ready.message || "–"], ["Latest revision", service.latestRevision || "–"]];
  for (const [key, value] of Object.entries(service.annotations)) items.push([`annotation ${key}`, value]);
  summary.replaceChildren(...items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { className: "value" }, v)]));
  document.getElementById("revisions").replaceChildren(...service.revisions.map(r => h("tr", {},
    h("td", {}, r.name), h("td", { className: "n" }, num(r.percent, "Traffic percent"), "%"),
    h("td", {}, r.tags.join(", ")),
    h("td", {}, r.conditions.filter(c => c.status !== "Unknown" || c.type === "Ready").map(c =>
      h("div", { title: c.message }, `${c.type}: ${c.status}${c.reason ? " (" + c.reason + ")" : ""}`))),
    h("td", {}, r.created))));
}

// -- charts ---------------------------------------------------------------------------------------------------
// Panic mode as shaded spans, scale-to-zero as dashed lines, on every chart.
const markers = {
  hooks: {
    drawClear: [(u) => {
      const { ctx } = u;
      const { left, top, width, height } = u.bbox;
      const t = series.t;
      ctx.save();
      ctx.fillStyle = "rgba(179, 38, 30, 0.10)";
      for (let i = 0; i < t.length; i++) {
        if (!series.panicking[i]) continue;
        const x0 = u.valToPos(t[i], "x", true);
        const x1 = u.valToPos(t[Math.min(i + 1, t.length - 1)], "x", true);
        ctx.fillRect(Math.max(left, x0), top, Math.max(2, Math.min(left + width, x1) - x0), height);
      }
      ctx.strokeStyle = "#5b6673";
      ctx.setLineDash([4, 4]);
      for (let i = 1; i < t.length; i++) {
        if (series.ready[i - 1] > 0 && series.ready[i] === 0) {
          const x = u.valToPos(t[i], "x", true);
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
        }
      }
      ctx.restore();
    }],
  },
};

const CHARTS = [
  { id: "chart-instances", title: "Instances", lines: [["desired", "Desired", "#1f5fbf"], ["ready", "Ready", "#2b8a3e"]] },
  { id: "chart-concurrency", title: "Observed concurrency", lines: [["stable", "Stable window", "#7c3aed"],
    ["panic", "Panic window", "#c2410c"]] },
  { id: "chart-rps", title: "Requests/s", lines: [["rps", "Requests/s", "#0e7490"]] },
  { id: "chart-latency", title: "Latency (ms)", lines: [["p50", "p50", "#1f5fbf"], ["p99", "p99", "#b3261e"]] },
];
const plots = [];

function makeCharts() {
  const root = document.getElementById("charts");
  for (const chart of CHARTS) {
    const holder = h("div", { className: "chart", id: chart.id, role: "img",
      "aria-label": `${chart.title} over the last minutes` }, h("h3", {}, chart.title));
    root.append(holder);
    const opts = {
      width: 600, height: 170, plugins: [markers], legend: { live: false },
      scales: { x: { time: true } },
      series: [{}, ...chart.lines.map(([, label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false }))],
      axes: [{}, { size: 44 }],
    };
    plots.push({ chart, plot: new uPlot(opts, data(chart), holder) });
  }
}

function data(chart) {
  return [series.t, ...chart.lines.map(([field]) => series[field])];
}

function addSeries(incoming) {
  const last = series.t.length ? series.t[series.t.length - 1] : -Infinity;
  incoming.t.forEach((t, i) => {
    if (t <= last) return;
    for (const f of FIELDS) series[f].push(incoming[f][i]);
  });
  const extra = series.t.length - KEEP;
  if (extra > 0) for (const f of FIELDS) series[f].splice(0, extra);
}

function redraw() {
  for (const { chart, plot } of plots) plot.setData(data(chart));
}

// -- decisions and pods ---------------------------------------------------------------------------------------
const decisions = [];

function showDecisions() {
  document.getElementById("decisions").replaceChildren(...decisions.slice(-20).reverse().map(d => h("tr", {},
    h("td", {}, clock(d.t)), h("td", {}, d.revision), h("td", { className: "n" }, num(d.desired, "Desired")),
    h("td", { className: "n" }, num(d.ready, "Ready")), h("td", {}, d.mode),
    h("td", { className: "n" }, num(d.stable, "Stable concurrency", 2)),
    h("td", { className: "n" }, num(d.panic, "Panic concurrency", 2)),
    h("td", { className: "n" }, num(d.target, "Target", 2)),
    h("td", { className: "n" }, num(d.stableDesired, "Stable pods")),
    h("td", { className: "n" }, num(d.panicDesired, "Panic pods")),
    h("td", { className: "n" }, num(d.excessBurstCapacity, "Excess burst capacity")), h("td", {}, d.reason))));
}

const knownPods = new Set();

function showPods(pods) {
  document.getElementById("pods").replaceChildren(...pods.map(p => h("tr", { "data-pod": p.name },
    h("td", {}, p.name), h("td", {}, p.revision), h("td", {}, p.phase + (p.ready ? " · ready" : "")),
    h("td", { className: "n" }, num(p.inFlight, "In-flight requests")),
    h("td", { className: "n" }, num(p.restarts, "Restarts")), h("td", {}, age(p.created)))));
  const select = document.getElementById("log-instance");
  for (const p of pods) {
    if (knownPods.has(p.name)) continue;
    knownPods.add(p.name);
    select.append(h("option", { value: p.name }, p.name));
  }
}

// -- logs -----------------------------------------------------------------------------------------------------
const MAX_LINES = 2000;
const lines = [];
let reader = null;

function logMatches(line) {
  const wanted = document.getElementById("log-instance").value;
  return !wanted || line.startsWith(`[${wanted}] `);
}

function showLogs() {
  const pre = document.getElementById("logs");
  pre.textContent = lines.filter(logMatches).join("\n");
  pre.scrollTop = pre.scrollHeight;
}

async function followLogs() {
  if (reader) { reader.cancel(); reader = null; }
  const follow = document.getElementById("log-follow").checked;
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(name)}/logs`;
  const response = await api(`${path}?tailLines=200&follow=${follow}`);
  if (!response.ok) { document.getElementById("logs").textContent = `logs: ${response.status}`; return; }
  lines.length = 0;
  const current = response.body.pipeThrough(new TextDecoderStream()).getReader();
  reader = current;
  let rest = "";
  let pending = false;
  for (;;) {
    const { value, done } = await current.read().catch(() => ({ done: true }));
    if (done) break;
    const parts = (rest + value).split("\n");
    rest = parts.pop();
    for (const line of parts) {
      lines.push(line);
      const match = /^\[([^\]]+)\] /.exec(line);
      if (match && !knownPods.has(match[1])) {
        knownPods.add(match[1]);
        document.getElementById("log-instance").append(h("option", { value: match[1] }, match[1]));
      }
    }
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; showLogs(); }); }
  }
  showLogs();
}

document.getElementById("log-instance").addEventListener("change", showLogs);
document.getElementById("log-follow").addEventListener("change", followLogs);

// -- the feed -------------------------------------------------------------------------------------------------
function start() {
  makeCharts();
  feed(`/ui/feed/services/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, (message) => {
    if (message.type === "snapshot") {
      for (const f of FIELDS) series[f].length = 0;
      decisions.length = 0;
    }
    if ("service" in message) showService(message.service);
    addSeries(message.series);
    const seen = new Set(decisions.map(d => `${d.t}/${d.revision}`));
    decisions.push(...message.decisions.filter(d => !seen.has(`${d.t}/${d.revision}`)));
    if (decisions.length > 50) decisions.splice(0, decisions.length - 50);
    showDecisions();
    showPods(message.pods);
    redraw();
    if (message.type === "update") noteLag(message.changedAt);
  });
  followLogs();
}

if (window.uPlot) start(); else window.addEventListener("load", start);
