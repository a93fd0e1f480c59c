// Shared helpers for the console's pages. User text only ever reaches the page as text nodes or attribute
// values (h() never parses markup), and the Content-Security-Policy allows no inline script.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "className") el.className = value;
    else if (name === "style" && typeof value === "object") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Only http(s) links: a URL from an object must not become a javascript: link.
export function link(url, text) {
  try {
    const parsed = new URL(url, location.href);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") return h("a", { href: parsed.href }, text ?? url);
  } catch (_) { /* not a URL: shown as text */ }
  return h("span", {}, text ?? url);
}

// A number with the label a screen reader reads with it.
export function num(value, label, digits = 0) {
  const text = value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits);
  return h("span", { className: "num", "aria-label": `${label}: ${text}`, title: label }, text);
}

export function readyBadge(status, reason, message) {
  const cls = status === "True" ? "ok" : status === "False" ? "bad" : "wait";
  const text = status === "True" ? "Ready" : status === "False" ? `Not ready${reason ? ": " + reason : ""}`
    : `Pending${reason ? ": " + reason : ""}`;
  return h("span", { className: `badge ${cls}`, title: message || text }, text);
}

export function trafficBar(traffic) {
  const bar = h("div", { className: "traffic", role: "img",
    "aria-label": "Traffic: " + (traffic.map(t => `${t.revision}${t.tag ? " (" + t.tag + ")" : ""} ${t.percent}%`)
      .join(", ") || "none") });
  traffic.forEach((t, i) => {
    if (!t.percent && !t.tag) return;
    const label = `${t.revision}${t.tag ? " @" + t.tag : ""} ${t.percent}%`;
    bar.append(h("span", { className: `seg c${i % 6}`, title: label, style: { flexGrow: String(Math.max(t.percent, 0)) } },
      t.percent >= 15 ? label : ""));
  });
  return bar;
}

function csrf() {
  const found = document.cookie.split("; ").find(c => c.startsWith("wisp_csrf="));
  return found ? decodeURIComponent(found.slice("wisp_csrf=".length)) : "";
}

export function signIn() {
  location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
}

// fetch() for the API: the CSRF header on changes; 401 (no or expired session) → the sign-in page.
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const method = (options.method || "GET").toUpperCase();
  if (method !== "GET" && method !== "HEAD") headers.set("X-Wisp-CSRF", csrf());
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (response.status === 401) { signIn(); throw new Error("sign-in required"); }
  return response;
}

export async function apiJSON(path, options) {
  const response = await api(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || `${response.status} ${response.statusText}`);
    error.status = body;
    throw error;
  }
  return body;
}

// A server-sent events feed; reconnects by itself (the server starts each connection with a snapshot).
export function feed(url, onMessage) {
  const source = new EventSource(url);
  const status = document.getElementById("status");
  source.onmessage = (event) => {
    const message = JSON.parse(event.data);
    onMessage(message);
    if (status) status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  };
  source.onerror = async () => {
    // CLOSED: the server refused the feed (e.g. 404: the object is gone); otherwise the browser reconnects.
    const closed = source.readyState === EventSource.CLOSED;
    if (status) status.textContent = closed ? "not live: the feed was refused (reload to retry)" : "reconnecting…";
    const check = await fetch("/ui/api/kinds", { credentials: "same-origin" }).catch(() => null);
    if (check && check.status === 401) { source.close(); signIn(); }
  };
  return source;
}

// Delay from the daemon's change to the page showing it, kept for the benchmark (bench/console.py).
export const lags = [];
window.wispConsole = { lags };
export function noteLag(changedAt) {
  if (!changedAt) return;
  lags.push(Date.now() / 1000 - changedAt);
  if (lags.length > 5000) lags.splice(0, lags.length - 5000);
}

export function age(timestamp) {
  if (!timestamp) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

export function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}
