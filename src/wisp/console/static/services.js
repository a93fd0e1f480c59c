import { feed, h, link, noteLag, num, readyBadge, trafficBar } from "./common.js";

const body = document.getElementById("services-body");
const rows = new Map();

function render(row) {
  const serviceUrl = `/ui/services/${encodeURIComponent(row.namespace)}/${encodeURIComponent(row.name)}`;
  return h("tr", { "data-key": row.key },
    h("td", {}, h("a", { href: serviceUrl, className: "name" }, row.name)),
    h("td", {}, row.namespace),
    h("td", { className: "url" }, row.url ? link(row.url) : ""),
    h("td", {}, readyBadge(row.ready, row.reason, row.message)),
    h("td", {}, row.latestRevision),
    h("td", {}, trafficBar(row.traffic)),
    h("td", { className: "n instances", title: `desired ${row.desired}` }, num(row.instances, "Instances")),
    h("td", { className: "n rps" }, num(row.rps, "Requests per second", 1)));
}

const desired = new Map();

function upsert(row) {
  // A change of desired instances is a scale event: how long it took to get here is kept (common.js lags).
  if (desired.has(row.key) && desired.get(row.key) !== row.desired) noteLag(row.changedAt);
  desired.set(row.key, row.desired);
  const tr = render(row);
  const old = rows.get(row.key);
  rows.set(row.key, tr);
  if (old) { old.replaceWith(tr); return; }
  const after = [...rows.keys()].sort().find(key => key > row.key && rows.get(key).isConnected);
  body.insertBefore(tr, after ? rows.get(after) : null);
}

function remove(key) {
  rows.get(key)?.remove();
  rows.delete(key);
  desired.delete(key);
}

feed("/ui/feed/services", (message) => {
  if (message.type === "snapshot") {
    rows.clear();
    desired.clear();
    body.replaceChildren();
    message.rows.forEach(upsert);
    if (!message.rows.length) body.append(h("tr", { id: "empty" }, h("td", { colspan: 8 }, "No Services yet.")));
    return;
  }
  document.getElementById("empty")?.remove();
  message.rows.forEach(upsert);
  message.removed.forEach(remove);
});
