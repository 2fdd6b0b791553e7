// Pingpipe's dashboard: targets with their latest state, per-frequency reports, a target's
// chart. Talks only to the GraphQL API; new results arrive through the subscription.

import uPlot from "./vendor/uPlot.esm.js";
import { ApiError, Unreachable, gql, subscribeResults, token } from "./api.js";
import { checkEditor, describeAssertion } from "./check-editor.js";

const $ = (selector) => document.querySelector(selector);
const RESULT = "id httpStatus up outcome failureClass durationMs scheduledAt startTime";
// What a target's page shows of each result: its phases and failed assertions too.
const PHASES = "dnsMs connectMs tlsMs ttfbMs transferMs";
const RESULT_DETAIL = `${RESULT} ${PHASES} assertionFailures { index expected found }`;
const TLS = "tls { version certNotAfter certIssuer certSubject certExpiresInDays }";
const CHECK = `check {
  assertions { source property comparison value }
  degradedAfterMs method headerNames body tlsVerify caBundle
}`;
const PAGE = 50;
const SPARK_POINTS = 30;
const RANGES = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };
const FAILURES = {
  DNS: "DNS lookup failed",
  CONNECT: "connection failed",
  TLS: "TLS failed",
  TIMEOUT: "timed out",
  REDIRECT_LIMIT: "too many redirects",
  DENIED: "address denied",
  BODY: "body broke off",
  ASSERTION: "assertion failed",
  OTHER: "failed",
};
const OUTCOMES = { UP: ["up", "Up"], DEGRADED: ["degraded", "Degraded"], DOWN: ["down", "Down"] };

const state = {
  frequencies: [],
  targets: new Map(), // id → { target, durations, row, spark }
  filter: { frequency: null, search: "" },
  after: null,
  view: null,
  report: { frequency: 1, cursors: [null], nodes: [] },
  detail: null, // { id, range, results, chart }
  wasOffline: false,
};

// ---- small helpers ---------------------------------------------------------------------------

// "Up" is the API's to say (entity::UP_STATUSES), not this page's.
const isUp = (r) => r.up;
/** ["up" | "degraded" | "down", its label]: the API's outcome of a result. */
const outcomeOf = (r) => OUTCOMES[r.outcome] ?? (isUp(r) ? OUTCOMES.UP : OUTCOMES.DOWN);
const outcome = (r) => {
  if (r.httpStatus == null) return FAILURES[r.failureClass] ?? r.failureClass;
  if (r.failureClass === "ASSERTION") return `HTTP ${r.httpStatus}, ${count(r.assertionFailures?.length || 1, "assertion")} failed`;
  if (r.outcome === "DEGRADED") return `HTTP ${r.httpStatus}, slow`;
  return `HTTP ${r.httpStatus}`;
};
const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const ms = (value) => (value == null ? "–" : `${Math.round(value)} ms`);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

function relative(date) {
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A <time> showing "2 min ago", with the local date and time on hover. */
function timeAgo(iso) {
  const date = new Date(iso);
  return el("time", {
    datetime: iso,
    title: date.toLocaleString(),
    "data-relative": "",
    text: relative(date),
  });
}

setInterval(() => {
  for (const node of document.querySelectorAll("time[data-relative]")) {
    node.textContent = relative(new Date(node.getAttribute("datetime")));
  }
}, 5000);

function showBanner(message) {
  const banner = $("#banner");
  banner.textContent = message;
  banner.hidden = !message;
}

function describe(error) {
  if (error instanceof Unreachable) return `${error.message} Is pingpipe-api running?`;
  if (error instanceof ApiError) return error.message;
  return `Unexpected error: ${error.message}`;
}

// ---- the token -------------------------------------------------------------------------------

/** Asks for the API token in a dialog; resolves true once one is saved. */
function askToken(problem = "") {
  const dialog = $("#token-dialog");
  const input = $("#token-input");
  $("#token-problem").textContent = problem;
  input.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const value = input.value.trim();
        if (dialog.returnValue === "save" && value) {
          token.set(value);
          resolve(true);
        } else {
          resolve(false);
        }
      },
      { once: true },
    );
  });
}

class Cancelled extends Error {}

/** A mutation: asks for the token first if there is none; a refused token is forgotten. */
async function mutate(query, variables) {
  if (!token.get() && !(await askToken())) throw new Cancelled("cancelled");
  try {
    return await gql(query, variables, { auth: true });
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED") {
      token.clear();
      throw new ApiError(
        "The API refused the token: it is wrong or was changed. Try again to enter the right one.",
        "UNAUTHENTICATED",
      );
    }
    throw error;
  }
}

// ---- charts ----------------------------------------------------------------------------------

function sparkline(container, durations) {
  const xs = durations.map((_, i) => i);
  return new uPlot(
    {
      width: 120,
      height: 32,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: "#2563eb", width: 1.5, points: { show: false } }],
    },
    [xs, durations],
    container,
  );
}

// ---- overview --------------------------------------------------------------------------------

const TARGET_FIELDS = `id url frequency paused
  latestResult { ${RESULT} }
  results(first: ${SPARK_POINTS}) { nodes { durationMs } }`;

const TARGETS = `query Targets($first: Int, $after: String, $frequency: Int, $search: String) {
  targets(first: $first, after: $after, frequency: $frequency, search: $search) {
    nodes { ${TARGET_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;

function targetState(target) {
  if (target.paused) return ["paused", "Paused"];
  if (!target.latestResult) return ["pending", "No result yet"];
  return outcomeOf(target.latestResult);
}

function renderRow(entry) {
  const { target } = entry;
  const [kind, label] = targetState(target);
  const last = target.latestResult;
  const spark = el("td", { class: "spark", "data-label": "Recent durations" });
  const row = el(
    "tr",
    { "data-id": target.id, "data-state": kind, "data-result-id": last?.id ?? "" },
    el("td", { "data-label": "State" }, el("span", { class: `badge ${kind}`, text: label })),
    el(
      "td",
      { class: "url", "data-label": "URL" },
      el("a", { href: `#/targets/${target.id}`, text: target.url }),
    ),
    el("td", { "data-label": "Every", text: `${target.frequency} min` }),
    el("td", { class: "last", "data-label": "Last result", text: last ? outcome(last) : "–" }),
    el("td", { "data-label": "Last checked" }, last ? timeAgo(last.startTime) : "never"),
    spark,
    el(
      "td",
      { class: "actions" },
      el("button", {
        type: "button",
        text: target.paused ? "Resume" : "Pause",
        "aria-label": `${target.paused ? "Resume" : "Pause"} ${target.url}`,
        onclick: () => setPaused(entry, !target.paused),
      }),
      el("button", {
        type: "button",
        class: "danger",
        text: "Remove",
        "aria-label": `Remove ${target.url}`,
        onclick: () => remove(entry),
      }),
    ),
  );
  entry.spark?.destroy();
  entry.spark = entry.durations.length > 1 ? sparkline(spark, entry.durations) : null;
  if (entry.row) entry.row.replaceWith(row);
  entry.row = row;
  return row;
}

function track(target) {
  const durations = target.results.nodes.map((n) => n.durationMs).reverse();
  const entry = { target, durations, row: null, spark: null };
  state.targets.set(target.id, entry);
  return entry;
}

function showTargetsState() {
  const table = $("#targets");
  const empty = state.targets.size === 0;
  table.hidden = empty;
  const filtered = state.filter.frequency != null || state.filter.search !== "";
  $("#targets-state").textContent = !empty
    ? ""
    : filtered
      ? "No targets match this filter."
      : "No targets yet. Add a URL above to start watching it.";
}

let retryTargets;
async function loadTargets({ append = false } = {}) {
  clearTimeout(retryTargets);
  const body = $("#targets tbody");
  if (!append) {
    state.after = null;
    $("#targets-state").textContent = "Loading targets…";
  }
  try {
    const data = await gql(TARGETS, {
      first: PAGE,
      after: state.after,
      frequency: state.filter.frequency,
      search: state.filter.search || null,
    });
    if (!append) {
      for (const entry of state.targets.values()) entry.spark?.destroy();
      state.targets.clear();
      body.replaceChildren();
    }
    for (const target of data.targets.nodes) body.append(renderRow(track(target)));
    state.after = data.targets.pageInfo.endCursor;
    $("#targets-more").hidden = !data.targets.pageInfo.hasNextPage;
    showBanner("");
    showTargetsState();
  } catch (error) {
    $("#targets-state").textContent = describe(error);
    if (error instanceof Unreachable) retryTargets = setTimeout(loadTargets, 5000);
  }
}

async function setPaused(entry, paused) {
  try {
    const data = await mutate(
      `mutation($id: ID!, $paused: Boolean) { updateTarget(id: $id, paused: $paused) { ${TARGET_FIELDS} } }`,
      { id: entry.target.id, paused },
    );
    entry.target = data.updateTarget;
    renderRow(entry).querySelector(".actions button")?.focus();
    showBanner("");
  } catch (error) {
    if (!(error instanceof Cancelled)) showBanner(describe(error));
  }
}

async function remove(entry) {
  if (!confirm(`Stop watching ${entry.target.url} and delete its results?`)) return;
  try {
    await mutate(`mutation($id: ID!) { removeTarget(id: $id) { id } }`, { id: entry.target.id });
    entry.spark?.destroy();
    entry.row.remove();
    state.targets.delete(entry.target.id);
    showTargetsState();
    $("#add-status").textContent = `Removed ${entry.target.url}.`;
  } catch (error) {
    if (!(error instanceof Cancelled)) showBanner(describe(error));
  }
}

/**
 * Shows a BAD_USER_INPUT message of a target form: beside the check's row or field it names,
 * else beside the frequency or the URL (`prefix`: "add" or "edit").
 */
function showFormError(prefix, editor, error) {
  if (error instanceof ApiError && error.code === "BAD_USER_INPUT") {
    if (error.message.startsWith("check.")) {
      if (prefix === "add") $("#add-check-box").open = true;
      if (editor.showError(error.message)) return;
    }
    const field = /frequenc/i.test(error.message) ? "frequency" : "url";
    $(`#${prefix}-${field}-error`).textContent = error.message;
    $(`#${prefix}-${field}`).setAttribute("aria-invalid", "true");
    $(`#${prefix}-${field}`).focus();
  } else {
    $(`#${prefix}-url-error`).textContent = describe(error);
  }
}

let addEditor;
async function addTarget(event) {
  event.preventDefault();
  const url = $("#add-url");
  const frequency = $("#add-frequency");
  for (const id of ["#add-url-error", "#add-frequency-error", "#add-status"]) $(id).textContent = "";
  url.removeAttribute("aria-invalid");
  addEditor.clearErrors();
  let check;
  try {
    check = addEditor.read();
  } catch {
    $("#add-check-box").open = true;
    return;
  }
  try {
    const data = await mutate(
      `mutation($url: String!, $frequency: Int!, $check: CheckInput) { addTarget(url: $url, frequency: $frequency, check: $check) { ${TARGET_FIELDS} } }`,
      { url: url.value.trim(), frequency: Number(frequency.value), check },
    );
    const entry = track(data.addTarget);
    $("#targets tbody").prepend(renderRow(entry));
    showTargetsState();
    $("#add-status").textContent = `Now watching ${data.addTarget.url} every ${data.addTarget.frequency} min.`;
    url.value = "";
    addEditor.reset();
    $("#add-check-box").open = false;
  } catch (error) {
    if (error instanceof Cancelled) return;
    showFormError("add", addEditor, error);
  }
}


// ---- reports ---------------------------------------------------------------------------------

const REPORT = `query Report($frequency: Int!, $first: Int, $after: String) {
  results(frequency: $frequency, first: $first, after: $after) {
    nodes { ${RESULT} target { id url } }
    pageInfo { hasNextPage endCursor }
  }
}`;

function reportRow(r) {
  return el(
    "tr",
    { "data-id": r.id, "data-state": outcomeOf(r)[0] },
    el("td", { "data-label": "Time" }, el("time", {
      datetime: r.scheduledAt,
      text: new Date(r.startTime).toLocaleString(),
    })),
    el("td", { class: "url", "data-label": "URL" }, el("a", { href: `#/targets/${r.target.id}`, text: r.target.url })),
    el("td", { "data-label": "Status or failure" }, el("span", { class: `badge ${outcomeOf(r)[0]}`, text: outcome(r) })),
    el("td", { "data-label": "Duration", text: ms(r.durationMs) }),
  );
}

async function loadReport() {
  const { frequency, cursors } = state.report;
  const after = cursors[cursors.length - 1];
  $("#report-caption").textContent = `Results of targets checked every ${frequency} min, newest first` +
    (cursors.length > 1 ? ` (page ${cursors.length})` : "");
  $("#report-state").textContent = "Loading results…";
  try {
    const data = await gql(REPORT, { frequency, first: PAGE, after });
    state.report.nodes = data.results.nodes;
    state.report.next = data.results.pageInfo.hasNextPage ? data.results.pageInfo.endCursor : null;
    $("#report tbody").replaceChildren(...data.results.nodes.map(reportRow));
    $("#report").hidden = data.results.nodes.length === 0;
    $("#report-state").textContent = data.results.nodes.length === 0
      ? `No results yet for targets checked every ${frequency} min.`
      : "";
    $("#report-older").disabled = !state.report.next;
    $("#report-newest").disabled = cursors.length === 1;
  } catch (error) {
    $("#report-state").textContent = describe(error);
  }
}

function showReports(frequency) {
  if (state.report.frequency !== frequency) state.report = { frequency, cursors: [null], nodes: [] };
  $("#report-tabs").replaceChildren(
    ...state.frequencies.map((f) =>
      el("a", {
        href: `#/reports/${f}`,
        text: `Every ${f} min`,
        ...(f === frequency ? { "aria-current": "page" } : {}),
      }),
    ),
  );
  loadReport();
}

// ---- one target ------------------------------------------------------------------------------

const DETAIL = `query Detail($id: ID!, $since: DateTime) {
  target(id: $id) {
    id url frequency paused createdAt ${CHECK}
    latestResult { ${RESULT_DETAIL} ${TLS} }
    stats(since: $since) {
      checks up degraded down uptimeRatio p50DurationMs p95DurationMs
      phases { phase p50Ms p95Ms }
    }
  }
}`;

const DETAIL_RESULTS = `query DetailResults($id: ID!, $since: DateTime, $after: String) {
  target(id: $id) {
    results(first: 300, since: $since, after: $after) {
      nodes { ${RESULT_DETAIL} }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

const MAX_CHART_POINTS = 5000;
const PHASE_SERIES = [
  ["dnsMs", "DNS", "#7c3aed"],
  ["connectMs", "Connect", "#0891b2"],
  ["tlsMs", "TLS", "#16a34a"],
  ["ttfbMs", "Time to first byte", "#2563eb"],
  ["transferMs", "Transfer", "#f59e0b"],
];
const PHASE_NAMES = { DNS: "DNS", CONNECT: "Connect", TLS: "TLS", TTFB: "Time to first byte", TRANSFER: "Transfer" };

const oldestFirst = (results) => [...results].sort((a, b) => a.scheduledAt.localeCompare(b.scheduledAt));
const seconds = (r) => new Date(r.startTime).getTime() / 1000;

function chartData(results) {
  const sorted = oldestFirst(results);
  return [
    sorted.map(seconds),
    sorted.map((r) => r.durationMs),
    sorted.map((r) => (isUp(r) ? null : r.durationMs)),
    sorted.map((r) => (r.outcome === "DEGRADED" ? r.durationMs : null)),
  ];
}

/** The x values, then each phase stacked on the ones before it (a phase not reached adds 0). */
function phaseData(results) {
  const sorted = oldestFirst(results);
  const raw = PHASE_SERIES.map(([key]) => sorted.map((r) => r[key] ?? null));
  let sum = sorted.map(() => 0);
  const stacked = raw.map((column) => (sum = sum.map((s, i) => s + (column[i] ?? 0))));
  return { data: [sorted.map(seconds), ...stacked], raw };
}

function chartWidth(box) {
  return Math.max(box.clientWidth, 280);
}

function drawChart(detail) {
  const box = $("#target-chart");
  detail.chart?.destroy();
  box.replaceChildren();
  detail.chart = new uPlot(
    {
      width: chartWidth(box),
      height: 260,
      // The whole chosen period, however few results it has so far.
      scales: { x: { time: true, range: () => [detail.since / 1000, Date.now() / 1000] } },
      axes: [{}, { label: "ms", values: (_, ticks) => ticks.map((t) => `${t}`) }],
      series: [
        { label: "Time" },
        {
          label: "Duration (ms)",
          stroke: "#2563eb",
          width: 1.5,
          points: { show: detail.results.length < 100, size: 5 },
        },
        { label: "Down", stroke: "#dc2626", width: 0, points: { show: true, size: 6, fill: "#dc2626" } },
        { label: "Degraded", stroke: "#d97706", width: 0, points: { show: true, size: 6, fill: "#d97706" } },
      ],
    },
    chartData(detail.results),
    box,
  );
}

/** The phase breakdown: one stacked bar per result (uPlot bands fill between the sums). */
function drawPhaseChart(detail) {
  const box = $("#phase-chart");
  detail.phaseChart?.destroy();
  box.replaceChildren();
  const { data, raw } = phaseData(detail.results);
  detail.phaseRaw = raw;
  const bars = uPlot.paths.bars({ size: [0.8, 24], align: 0 });
  detail.phaseChart = new uPlot(
    {
      width: chartWidth(box),
      height: 220,
      scales: { x: { time: true, range: () => [detail.since / 1000, Date.now() / 1000] } },
      axes: [{}, { label: "ms", values: (_, ticks) => ticks.map((t) => `${t}`) }],
      series: [
        { label: "Time" },
        ...PHASE_SERIES.map(([, label, color], i) => ({
          label,
          stroke: color,
          fill: `${color}cc`,
          width: 1,
          paths: bars,
          points: { show: false },
          // The legend shows the phase's own time, not the running sum drawn.
          value: (_, __, ___, index) => (index == null ? "–" : ms(detail.phaseRaw[i][index])),
        })),
      ],
      bands: PHASE_SERIES.slice(1).map((_, i) => ({ series: [i + 2, i + 1] })),
    },
    data,
    box,
  );
  const reached = detail.results.filter((r) => r.ttfbMs != null).length;
  $("#phase-chart-caption").textContent =
    `Where each probe's time went over the last ${detail.range}: ${count(reached, "result")} with a response.`;
}

function refreshCharts(detail) {
  detail.chart.setData(chartData(detail.results));
  const { data, raw } = phaseData(detail.results);
  detail.phaseRaw = raw;
  detail.phaseChart.setData(data);
}

/**
 * The assertion a failure refers to: the target's current one at that index, if it still is
 * the one that failed (the failure's `expected` spells it as the monitor does, shortened).
 */
function failedAssertion(detail, { index, expected }) {
  const assertion = detail.target.check.assertions[index];
  if (!assertion) return `Assertion ${index + 1} (no longer in the check)`;
  const spelled = [assertion.source, assertion.property, assertion.comparison, assertion.value]
    .filter((part) => part != null)
    .join(" ");
  const same = expected.endsWith("…") ? spelled.startsWith(expected.slice(0, -1)) : spelled === expected;
  return same ? describeAssertion(assertion) : `Assertion ${index + 1} (changed since)`;
}

function renderFailures(detail) {
  const failures = detail.results.filter((r) => !isUp(r)).slice(0, 20);
  $("#failures").replaceChildren(
    ...failures.map((r) =>
      el(
        "li",
        { class: "failure", "data-id": r.id },
        el("time", { datetime: r.startTime, text: new Date(r.startTime).toLocaleString() }),
        ` — ${outcome(r)} after ${ms(r.durationMs)}`,
        r.assertionFailures?.length
          ? el(
            "ul",
            { class: "assertion-failures" },
            ...r.assertionFailures.map((f) =>
              el(
                "li",
                { class: "assertion-failure" },
                el("span", { class: "assertion", text: failedAssertion(detail, f) }),
                el("span", { class: "expected" }, "expected ", el("code", { text: f.expected })),
                el("span", { class: "found" }, "found ", el("code", { text: f.found })),
              ),
            ),
          )
          : null,
      ),
    ),
  );
  $("#failures-state").textContent = failures.length === 0 ? "No failures in this period." : "";
}

function renderCheck(target) {
  const c = target.check;
  const items = c.assertions.length
    ? c.assertions.map((a) => `Up when ${describeAssertion(a)}`)
    : ["Up when the status is 200 to 399 (no assertions)"];
  items.push(c.degradedAfterMs == null ? "Never degraded" : `Degraded when slower than ${c.degradedAfterMs} ms`);
  items.push(`${c.method} request` + (c.body != null ? ` with a ${count(c.body.length, "character")} body` : ""));
  for (const name of c.headerNames) items.push(`Sends header ${name} (value write-only)`);
  items.push(c.tlsVerify ? "TLS certificate verified" : "TLS certificate not verified");
  if (c.caBundle) items.push("Trusts its own CA bundle");
  $("#target-check-list").replaceChildren(...items.map((text) => el("li", { text })));
}

function renderMeta(target) {
  const [kind, label] = targetState(target);
  $("#target-meta").replaceChildren(
    el("span", { class: `badge ${kind}`, text: label }),
    ` Every ${target.frequency} min · watched since ${new Date(target.createdAt).toLocaleString()}`,
  );
}

/** The certificate of the newest HTTPS result (`detail.tls`). */
function renderCertificate(detail) {
  const { tls } = detail;
  $("#target-cert").hidden = !tls;
  if (!tls) return;
  const days = tls.certExpiresInDays;
  const item = (term, value, cls) => el("div", { class: cls }, el("dt", { text: term }), el("dd", { text: value }));
  $("#target-cert-details").replaceChildren(
    item("Expires", `${new Date(tls.certNotAfter).toLocaleString()} (${days < 0 ? `expired ${count(-days, "day")} ago` : `in ${count(days, "day")}`})`,
      days < 14 ? "soon" : null),
    item("Subject", tls.certSubject),
    item("Issuer", tls.certIssuer),
    item("TLS version", tls.version),
  );
}

function renderStats(s) {
  const stat = (term, value) => el("div", {}, el("dt", { text: term }), el("dd", { text: value }));
  $("#target-stats").replaceChildren(
    stat("Uptime", s.uptimeRatio == null ? "–" : `${(s.uptimeRatio * 100).toFixed(2)} %`),
    stat("p50", ms(s.p50DurationMs)),
    stat("p95", ms(s.p95DurationMs)),
    stat("Checks", `${s.checks} (${s.down} down)`),
    stat("Degraded", `${s.degraded}`),
  );
  $("#phase-stats tbody").replaceChildren(
    ...s.phases.map((p) =>
      el("tr", { "data-phase": p.phase },
        el("th", { scope: "row", text: PHASE_NAMES[p.phase] ?? p.phase }),
        el("td", { "data-label": "p50", text: ms(p.p50Ms) }),
        el("td", { "data-label": "p95", text: ms(p.p95Ms) })),
    ),
  );
}

// ---- editing a target ------------------------------------------------------------------------

function closeEdit() {
  $("#edit-box").replaceChildren();
  $("#target-edit").setAttribute("aria-expanded", "false");
}

function openEdit() {
  const target = state.detail?.target;
  if (!target) return;
  if ($("#edit-form")) {
    closeEdit();
    return;
  }
  const url = el("input", { id: "edit-url", type: "url", autocomplete: "off", required: true, "aria-describedby": "edit-url-error" });
  url.value = target.url;
  const frequency = el("select", { id: "edit-frequency", "aria-describedby": "edit-frequency-error" },
    ...state.frequencies.map((f) => el("option", { value: String(f), text: `${f} min` })));
  frequency.value = String(target.frequency);
  const box = el("div", { id: "edit-check", class: "check-editor" });
  const form = el(
    "form",
    { id: "edit-form", class: "card edit", novalidate: true, "aria-labelledby": "edit-title" },
    el("h2", { id: "edit-title", text: "Edit target" }),
    el("div", { class: "edit-main" },
      el("div", { class: "field" }, el("label", { for: "edit-url", text: "URL" }), url,
        el("p", { id: "edit-url-error", class: "field-error", role: "alert" })),
      el("div", { class: "field" }, el("label", { for: "edit-frequency", text: "Every" }), frequency,
        el("p", { id: "edit-frequency-error", class: "field-error", role: "alert" }))),
    box,
    el("div", { class: "form-actions" },
      el("button", { type: "submit", text: "Save changes" }),
      el("button", { type: "button", text: "Cancel", onclick: closeEdit })),
  );
  const editor = checkEditor(box, target.check);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const id of ["#edit-url-error", "#edit-frequency-error"]) $(id).textContent = "";
    url.removeAttribute("aria-invalid");
    editor.clearErrors();
    let check;
    try {
      check = editor.read();
    } catch {
      return;
    }
    try {
      await mutate(
        `mutation($id: ID!, $url: String, $frequency: Int, $check: CheckInput) {
          updateTarget(id: $id, url: $url, frequency: $frequency, check: $check) { id }
        }`,
        { id: target.id, url: url.value.trim(), frequency: Number(frequency.value), check },
      );
      closeEdit();
      $("#edit-box").append(el("p", { class: "form-status", role: "status", text: "Saved." }));
      $("#target-edit").focus();
      showTarget(target.id);
    } catch (error) {
      if (!(error instanceof Cancelled)) showFormError("edit", editor, error);
    }
  });
  $("#edit-box").replaceChildren(form);
  $("#target-edit").setAttribute("aria-expanded", "true");
  url.focus();
}

async function showTarget(id, range = state.detail?.id === id ? state.detail.range : "24h") {
  const since = new Date(Date.now() - RANGES[range]).toISOString();
  for (const button of document.querySelectorAll("[data-range]")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === range));
  }
  $("#target-chart-caption").textContent = "Loading…";
  try {
    const { target } = await gql(DETAIL, { id, since });
    // The charts of the same target stay up until the new ones are drawn; another's go now.
    const previous = state.detail;
    const same = previous?.id === id;
    if (!same) {
      previous?.chart?.destroy();
      previous?.phaseChart?.destroy();
      closeEdit();
    }
    const detail = {
      id,
      range,
      since: Date.parse(since),
      results: [],
      chart: same ? previous.chart : null,
      phaseChart: same ? previous.phaseChart : null,
      target,
      tls: target.latestResult?.tls ?? null,
    };
    state.detail = detail;
    $("#target-title").textContent = target.url;
    renderMeta(target);
    renderStats(target.stats);
    renderCheck(target);
    renderCertificate(detail);
    let after = null;
    do {
      const page = await gql(DETAIL_RESULTS, { id, since, after });
      detail.results.push(...page.target.results.nodes);
      after = page.target.results.pageInfo.hasNextPage ? page.target.results.pageInfo.endCursor : null;
    } while (after && detail.results.length < MAX_CHART_POINTS && state.detail === detail);
    $("#target-chart-caption").textContent =
      `Response time over the last ${range}: ${count(detail.results.length, "result")}` +
      (after ? ` (the newest ${detail.results.length} shown)` : "") + ".";
    drawChart(detail);
    drawPhaseChart(detail);
    renderFailures(detail);
  } catch (error) {
    $("#target-chart-caption").textContent = describe(error);
  }
}

// ---- live results ----------------------------------------------------------------------------

function onResult(result) {
  const entry = state.targets.get(result.target.id);
  if (entry) {
    entry.target.latestResult = result;
    entry.durations = [...entry.durations, result.durationMs].slice(-SPARK_POINTS);
    renderRow(entry);
  }
  const report = state.report;
  if (state.view === "reports" && report.cursors.length === 1 && result.target.frequency === report.frequency) {
    $("#report tbody").prepend(reportRow(result));
    $("#report").hidden = false;
    $("#report-state").textContent = "";
    const rows = $("#report tbody").children;
    if (rows.length > PAGE) rows[rows.length - 1].remove();
  }
  const detail = state.detail;
  if (state.view === "target" && detail?.id === result.target.id && detail.chart) {
    detail.results.unshift(result);
    refreshCharts(detail);
    $("#target-chart-caption").textContent =
      `Response time over the last ${detail.range}: ${count(detail.results.length, "result")}.`;
    renderFailures(detail);
    detail.target.latestResult = result;
    renderMeta(detail.target);
    if (result.tls) {
      detail.tls = result.tls;
      renderCertificate(detail);
    }
  }
}

function onLiveState(live) {
  const node = $("#live");
  node.dataset.state = live;
  node.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline — reconnecting…" }[live];
  if (live === "offline") state.wasOffline = true;
  if (live === "live" && state.wasOffline) {
    // Results committed while we were away did not come through the subscription.
    state.wasOffline = false;
    route();
  }
}

// ---- routing and start -----------------------------------------------------------------------

function showView(name) {
  const changed = state.view !== null && state.view !== name;
  state.view = name;
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (changed) $("#main").focus();
}

function route() {
  const hash = location.hash || "#/";
  let match;
  if ((match = hash.match(/^#\/reports\/(\d+)$/))) {
    showView("reports");
    closeEdit();
    showReports(Number(match[1]));
  } else if ((match = hash.match(/^#\/targets\/(\d+)$/))) {
    showView("target");
    showTarget(match[1]);
  } else {
    showView("overview");
    closeEdit();
    loadTargets();
  }
}

async function start() {
  try {
    state.frequencies = (await gql("{ frequencies }")).frequencies;
  } catch (error) {
    state.frequencies = [1, 2, 5, 10, 20, 30];
    showBanner(describe(error));
  }
  for (const f of state.frequencies) {
    $("#add-frequency").append(el("option", { value: String(f), text: `${f} min` }));
    $("#filter-frequency").append(el("option", { value: String(f), text: `every ${f} min` }));
  }
  addEditor = checkEditor($("#add-check"));
  $("#add-form").addEventListener("submit", addTarget);
  $("#targets-more").addEventListener("click", () => loadTargets({ append: true }));
  let searchTimer;
  $("#filter-form").addEventListener("submit", (e) => e.preventDefault());
  $("#filter-frequency").addEventListener("change", (e) => {
    state.filter.frequency = e.target.value ? Number(e.target.value) : null;
    loadTargets();
  });
  $("#filter-search").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.filter.search = e.target.value.trim();
      loadTargets();
    }, 250);
  });
  $("#report-older").addEventListener("click", () => {
    if (!state.report.next) return;
    state.report.cursors.push(state.report.next);
    loadReport();
  });
  $("#report-newest").addEventListener("click", () => {
    state.report.cursors = [null];
    loadReport();
  });
  $("#target-edit").addEventListener("click", openEdit);
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => showTarget(state.detail?.id, button.dataset.range));
  }
  window.addEventListener("resize", () => {
    if (state.view === "target" && state.detail?.chart) {
      state.detail.chart.setSize({ width: chartWidth($("#target-chart")), height: 260 });
      state.detail.phaseChart?.setSize({ width: chartWidth($("#phase-chart")), height: 220 });
    }
  });
  window.addEventListener("hashchange", route);
  route();
  subscribeResults(`${RESULT_DETAIL} ${TLS} target { id url frequency }`, onResult, onLiveState);
}

start();
