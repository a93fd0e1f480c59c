import { apiJSON, h, num } from "./common.js";

const list = document.getElementById("trace-list");
const error = document.getElementById("trace-error");
const params = new URLSearchParams(location.search);

async function loadList() {
  const service = document.getElementById("service").value;
  const query = new URLSearchParams({ limit: "50", spans: "false" });
  if (service) query.set("service", service);
  const body = await apiJSON(`/traces?${query}`);
  const select = document.getElementById("service");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, "any"),
    ...body.services.map(s => h("option", { value: s, selected: s === chosen }, s)));
  list.replaceChildren(...body.items.map(t => h("tr", { className: t.errorCount ? "err" : "" },
    h("td", {}, h("a", { href: `/ui/traces?trace=${t.traceId}`, "data-trace": t.traceId,
      onclick: (e) => { e.preventDefault(); openTrace(t.traceId); } }, t.traceId)),
    h("td", {}, `${t.rootService}: ${t.rootName}`), h("td", {}, t.services.join(", ")),
    h("td", { className: "n" }, num(t.spanCount, "Spans")), h("td", { className: "n" }, num(t.errorCount, "Errors")),
    h("td", { className: "n" }, num(t.durationMs, "Duration in milliseconds", 1)),
    h("td", {}, new Date(t.startTimeUnixNano / 1e6).toLocaleTimeString()))));
  if (!body.items.length) list.append(h("tr", {}, h("td", { colspan: 7 }, "No traces.")));
}

function depthOf(spans) {
  const byId = new Map(spans.map(s => [s.spanId, s]));
  const depth = new Map();
  const find = (span, seen = 0) => {
    if (depth.has(span.spanId)) return depth.get(span.spanId);
    const parent = span.parentSpanId && byId.get(span.parentSpanId);
    const d = parent && seen < 64 ? find(parent, seen + 1) + 1 : 0;
    depth.set(span.spanId, d);
    return d;
  };
  spans.forEach(s => find(s));
  return depth;
}

function showAttributes(span, row) {
  document.querySelectorAll("#waterfall tr.selected").forEach(r => r.classList.remove("selected"));
  row.classList.add("selected");
  const items = [["span", `${span.service}: ${span.name}`], ["kind", span.kind], ["span id", span.spanId],
    ["status", span.status.code + (span.status.message ? ` — ${span.status.message}` : "")],
    ...Object.entries(span.attributes).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])];
  document.getElementById("attributes").replaceChildren(...items.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function openTrace(id) {
  error.textContent = "";
  let trace;
  try {
    trace = await apiJSON(`/traces/${encodeURIComponent(id.trim().toLowerCase())}`);
  } catch (e) {
    error.textContent = e.message;
    document.getElementById("trace-view").hidden = true;
    return;
  }
  history.replaceState(null, "", `/ui/traces?trace=${trace.traceId}`);
  const start = Math.min(...trace.spans.map(s => s.startTimeUnixNano));
  const end = Math.max(...trace.spans.map(s => s.endTimeUnixNano));
  const total = Math.max(1, end - start);
  const depth = depthOf(trace.spans);
  document.getElementById("trace-title").textContent =
    `Trace ${trace.traceId} · ${trace.spanCount} spans · ${trace.durationMs} ms`;
  const rows = trace.spans.map(span => {
    const failed = span.status.code === "ERROR";
    const left = ((span.startTimeUnixNano - start) / total) * 100;
    const width = ((span.endTimeUnixNano - span.startTimeUnixNano) / total) * 100;
    const row = h("tr", { className: failed ? "err" : "", "data-span": span.name, tabindex: 0 },
      h("td", {}, span.service),
      h("td", { style: { paddingLeft: `${8 + 14 * depth.get(span.spanId)}px` } }, span.name, failed ? " (error)" : ""),
      h("td", { className: "bar" }, h("div", { className: "wbar", "aria-hidden": "true" },
        h("span", { style: { left: `${left}%`, width: `${Math.max(width, 0.3)}%` } }))),
      h("td", { className: "n" }, num(span.durationMs, "Duration in milliseconds", 2)));
    row.addEventListener("click", () => showAttributes(span, row));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); showAttributes(span, row); } });
    return row;
  });
  document.getElementById("waterfall").replaceChildren(...rows);
  document.getElementById("trace-view").hidden = false;
  if (trace.spans.length) showAttributes(trace.spans[0], rows[0]);
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = document.getElementById("trace-id").value.trim();
  if (id) openTrace(id); else loadList().catch(e => { error.textContent = e.message; });
});
document.getElementById("service").addEventListener("change", () => loadList());

loadList().catch(e => { error.textContent = e.message; });
if (params.get("trace")) {
  document.getElementById("trace-id").value = params.get("trace");
  openTrace(params.get("trace"));
}
document.getElementById("status").textContent = "";
