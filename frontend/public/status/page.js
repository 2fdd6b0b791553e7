// A public status page: /status/<slug> loads /status/<slug>.json (with the dashboard's API
// token when this browser has one, so a page that is not public can be previewed) and draws it
// with DOM methods only (no HTML from the data).

const TOKEN_KEY = "pingpipe.apiToken";
const REFRESH_MS = 60_000;

const STATES = {
  up: "Operational",
  degraded: "Degraded",
  pending: "Checking",
  down: "Down",
  maintenance: "Maintenance",
  unknown: "No data yet",
  paused: "Paused",
};

const SUMMARIES = {
  operational: "All systems operational",
  degraded: "Degraded performance",
  partial_outage: "Partial outage",
  major_outage: "Major outage",
  maintenance: "Maintenance in progress",
  unknown: "Status unknown",
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child != null) node.append(child);
  }
  return node;
}

const percent = (ratio) =>
  ratio == null ? "no data" : `${(Math.floor(ratio * 10000) / 100).toFixed(2)} %`;

const when = (iso) =>
  new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

function duration(fromIso, untilIso) {
  const minutes = Math.max(0, Math.round((new Date(untilIso) - new Date(fromIso)) / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

function level(bar) {
  if (!bar.checks) return "none";
  if (bar.uptime >= 0.999) return "ok";
  if (bar.uptime >= 0.99) return "minor";
  if (bar.uptime >= 0.95) return "major";
  return "down";
}

function barTitle(day, bar) {
  if (!bar.checks) return `${day}: no data`;
  const parts = [`${bar.checks} checks`];
  if (bar.down) parts.push(`${bar.down} down`);
  if (bar.degraded) parts.push(`${bar.degraded} degraded`);
  return `${day}: ${percent(bar.uptime)} up (${parts.join(", ")})`;
}

function service(target, days) {
  const bars = el("div", {
    className: "bars",
    role: "img",
    "aria-label": `${target.name}: ${percent(target.uptime)} up over ${days.length} days`,
  });
  // Each bar is [checks, up (degraded included), degraded, down].
  target.bars.forEach(([checks, up, degraded, down], i) => {
    const bar = { checks, up, degraded, down, uptime: checks ? up / checks : null };
    bars.append(
      el("span", {
        className: "bar",
        title: barTitle(days[i], bar),
        dataset: { level: level(bar), day: days[i] },
      }),
    );
  });
  return el(
    "li",
    { className: "service" },
    el(
      "div",
      { className: "service-head" },
      el("span", { className: "service-name" }, target.name),
      target.url ? el("span", { className: "service-url" }, target.url) : null,
      el(
        "span",
        { className: "state", dataset: { state: target.state } },
        STATES[target.state] ?? target.state,
      ),
    ),
    bars,
    el(
      "div",
      { className: "bars-foot" },
      el("span", { className: "long" }, `${days.length} days ago`),
      el("span", { className: "short" }, "30 days ago"),
      el("span", { className: "uptime" }, `${percent(target.uptime)} uptime in ${days.length} days`),
      el("span", {}, "Today"),
    ),
  );
}

function incident(item) {
  const open = !item.resolvedAt;
  const lines = [
    el(
      "p",
      {},
      open
        ? `Ongoing since ${when(item.openedAt)}`
        : `${when(item.openedAt)} – ${when(item.resolvedAt)} (${duration(item.openedAt, item.resolvedAt)})`,
    ),
  ];
  if (item.cause) lines.push(el("p", { className: "muted" }, item.cause));
  return el(
    "li",
    { className: "event", dataset: { open: String(open) } },
    el("p", { className: "event-title" }, `${item.target} ${open ? "is down" : "was down"}`),
    ...lines,
  );
}

function maintenance(item) {
  return el(
    "li",
    { className: "event" },
    el("p", { className: "event-title" }, item.name),
    el("p", {}, `${when(item.start)} – ${when(item.end)}`),
    el("p", { className: "muted" }, `Affects ${item.targets.join(", ")}`),
  );
}

function draw(view) {
  document.title = `${view.title} status`;
  $("title").textContent = view.title;
  $("description").textContent = view.description;
  $("description").hidden = !view.description;
  const summary = $("summary");
  summary.dataset.status = view.status;
  summary.textContent = SUMMARIES[view.status] ?? view.status;
  $("services").replaceChildren(...view.targets.map((t) => service(t, view.days)));
  $("incidents").replaceChildren(...view.incidents.map(incident));
  $("no-incidents").hidden = view.incidents.length > 0;
  $("maintenance").replaceChildren(...view.maintenance.map(maintenance));
  $("maintenance-section").hidden = view.maintenance.length === 0;
  const updated = $("updated");
  updated.dateTime = view.generatedAt;
  updated.textContent = when(view.generatedAt);
  document.body.dataset.loaded = "true";
}

/** Says what went wrong; `clear`: what was drawn before is no longer to be shown. */
function problem(status, message, { clear = false } = {}) {
  if (clear) {
    for (const id of ["services", "incidents", "maintenance"]) $(id).replaceChildren();
    $("maintenance-section").hidden = true;
    $("no-incidents").hidden = true;
    $("description").hidden = true;
    $("updated").textContent = "";
    document.title = "Status page not found";
  }
  const summary = $("summary");
  summary.dataset.status = status;
  summary.textContent = message;
  document.body.dataset.loaded = "true";
}

const slug = decodeURIComponent(location.pathname.replace(/^\/status\//, "").replace(/\/$/, ""));

// Loads overlap (the minute's and a tab shown again): only the latest one draws.
let latest = 0;

async function load() {
  const mine = ++latest;
  const headers = {};
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(`/status/${encodeURIComponent(slug)}.json`, { headers });
  } catch {
    if (mine === latest) problem("error", "The status cannot be loaded right now; retrying in a minute.");
    return;
  }
  if (mine !== latest) return;
  if (response.status === 404) {
    // Removed or no longer public: nothing of it stays on screen.
    $("title").textContent = "Status page not found";
    problem("missing", "There is no public status page at this address.", { clear: true });
    return;
  }
  if (!response.ok) {
    problem("error", "The status cannot be loaded right now; retrying in a minute.");
    return;
  }
  const view = await response.json().catch(() => null);
  if (mine !== latest) return;
  if (!view) {
    problem("error", "The status cannot be loaded right now; retrying in a minute.");
    return;
  }
  draw(view);
}

load();
setInterval(load, REFRESH_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") load();
});
