import { api, apiJSON, h } from "./common.js";

const kindSelect = document.getElementById("kind");
const namespaceInput = document.getElementById("namespace");
const listRoot = document.getElementById("object-list");
const yamlView = document.getElementById("yaml");
const message = document.getElementById("object-message");
const result = document.getElementById("apply-result");
let kinds = [];
let selected = null; // {kind, namespace, name, path}

function kind() {
  return kinds.find(k => k.plural === kindSelect.value);
}

async function loadList() {
  const k = kind();
  const query = new URLSearchParams({ plural: k.plural });
  if (k.namespaced && namespaceInput.value.trim()) query.set("namespace", namespaceInput.value.trim());
  const body = await apiJSON(`/ui/api/objects?${query}`);
  listRoot.replaceChildren(...body.items.map(item => h("button", {
    type: "button", "aria-pressed": "false", "data-name": item.name,
    onclick: (e) => select(item, e.currentTarget) }, k.namespaced ? `${item.namespace}/${item.name}` : item.name)));
  if (!body.items.length) listRoot.append(h("p", {}, `No ${k.plural}.`));
  if (body.truncated) listRoot.append(h("p", {}, "(list truncated)"));
}

async function select(item, button) {
  listRoot.querySelectorAll("button").forEach(b => b.setAttribute("aria-pressed", "false"));
  button.setAttribute("aria-pressed", "true");
  const k = kind();
  const query = new URLSearchParams({ plural: k.plural, namespace: item.namespace, name: item.name });
  message.textContent = "";
  try {
    const body = await apiJSON(`/ui/api/yaml?${query}`);
    yamlView.textContent = body.yaml;
    selected = { kind: k, namespace: item.namespace, name: item.name, path: body.path };
    document.getElementById("yaml-title").textContent = `YAML: ${k.kind} ${item.namespace ? item.namespace + "/" : ""}${item.name}`;
  } catch (e) {
    yamlView.textContent = "";
    message.textContent = e.message;
    selected = null;
  }
  document.getElementById("delete").disabled = !selected || k.virtual;
  document.getElementById("edit").disabled = !selected || k.virtual;
}

function confirmDelete() {
  if (!selected) return;
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent =
    `Delete ${selected.kind.kind} ${selected.namespace ? selected.namespace + "/" : ""}${selected.name}? This cannot be undone.`;
  dialog.returnValue = "";
  dialog.showModal();
}

document.getElementById("confirm").addEventListener("close", async (event) => {
  if (event.target.returnValue !== "delete" || !selected) return;
  const target = selected;
  const response = await api(target.path, { method: "DELETE" });
  const body = await response.json().catch(() => ({}));
  message.textContent = response.ok ? `${target.kind.kind} ${target.name} deleted` : `delete failed: ${body.message}`;
  message.className = response.ok ? "ok-text" : "error";
  if (response.ok) { yamlView.textContent = ""; selected = null; document.getElementById("delete").disabled = true; }
  await loadList();
});

function showErrors(title, status) {
  const causes = status?.details?.causes || [];
  result.className = "errors";
  result.replaceChildren(h("p", {}, title), h("p", {}, status?.message || ""),
    h("ul", {}, causes.map(c => h("li", {}, h("code", { className: "field" }, c.field || "(document)"), ": ", c.message))));
}

async function applyText() {
  result.replaceChildren(h("p", {}, "Applying…"));
  result.className = "";
  const text = document.getElementById("apply-text").value;
  const parsed = await api("/ui/api/parse", { method: "POST", body: text, headers: { "content-type": "text/plain" } });
  const parsedBody = await parsed.json().catch(() => ({}));
  if (!parsed.ok) { showErrors("The document could not be read:", parsedBody); return; }
  const applied = await api("/apply", { method: "POST", body: JSON.stringify(parsedBody),
    headers: { "content-type": "application/json" } });
  const appliedBody = await applied.json().catch(() => ({}));
  if (!applied.ok) { showErrors("Refused; nothing was applied:", appliedBody); return; }
  result.className = "ok-text";
  result.replaceChildren(h("ul", {}, appliedBody.items.map(i =>
    h("li", {}, `${i.kind.toLowerCase()}${i.group ? "." + i.group : ""}/${i.name} ${i.action}`,
      i.warnings?.length ? ` (warning: ${i.warnings.join("; ")})` : ""))));
  await loadList();
}

async function start() {
  kinds = (await apiJSON("/ui/api/kinds")).items;
  kindSelect.replaceChildren(...kinds.map(k => h("option", { value: k.plural }, `${k.kind} (${k.apiVersion})`)));
  const params = new URLSearchParams(location.search);
  kindSelect.value = params.get("plural") || "services";
  if (params.has("namespace")) namespaceInput.value = params.get("namespace");
  await loadList();
  if (params.get("name")) {
    const button = [...listRoot.querySelectorAll("button")].find(b => b.dataset.name === params.get("name"));
    if (button) await select({ namespace: namespaceInput.value, name: params.get("name") }, button);
  }
  document.getElementById("status").textContent = "";
}

kindSelect.addEventListener("change", loadList);
document.getElementById("refresh").addEventListener("click", loadList);
namespaceInput.addEventListener("change", loadList);
document.getElementById("delete").addEventListener("click", confirmDelete);
document.getElementById("apply").addEventListener("click", applyText);
document.getElementById("edit").addEventListener("click", () => {
  document.getElementById("apply-text").value = yamlView.textContent;
  document.getElementById("apply-text").focus();
});
start();
