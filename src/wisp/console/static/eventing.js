import { feed, h, num, readyBadge } from "./common.js";

const root = document.getElementById("flows");

function counters(c) {
  if (!c) return null;
  const parts = [num(c.delivered, "Delivered"), " delivered · ", num(c.retried, "Retried"), " retried · ",
    num(c.deadLettered, "Dead-lettered"), " dead-lettered · ", num(c.dropped, "Dropped"), " dropped"];
  if (c.lag !== null && c.lag !== undefined) {
    parts.push(" · lag ", num(c.lag, "Consumer lag, all partitions"),
      h("span", { title: "wisp reports the lag summed over the source's partitions" }, " (all partitions)"));
  }
  return h("div", { className: "counters" }, parts);
}

function hop(node) {
  const name = node.kind === "Service"
    ? h("a", { href: `/ui/services/${encodeURIComponent(node.namespace)}/${encodeURIComponent(node.name)}` }, node.name)
    : h("strong", {}, node.name);
  return h("li", {},
    h("span", { className: "kind" }, node.kind + (node.namespace ? ` · ${node.namespace}` : "")),
    name, node.ready ? [" ", readyBadge(node.ready, node.reason, "")] : null,
    node.detail ? h("div", { className: "counters" }, node.detail) : null,
    counters(node.counters));
}

feed("/ui/feed/eventing", (message) => {
  const flows = message.flows || [];
  root.replaceChildren(...(flows.length
    ? flows.map((flow, i) => h("ol", { className: "flow", "aria-label": `Event path ${i + 1}` }, flow.map(hop)))
    : [h("p", {}, "No sources, brokers or triggers yet.")]));
});
