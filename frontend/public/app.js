// Pingpipe's dashboard: targets with their state, per-frequency reports, a target's chart and
// incidents, the Incidents, maintenance windows and notifications pages (incidents.js,
// maintenance.js, notifications.js). Talks
// only to the GraphQL API; new results and state changes arrive through subscriptions.

import uPlot from "./vendor/uPlot.esm.js";
import { ApiError, Unreachable, gql, subscribe } from "./api.js";
import { checkEditor, describeAssertion } from "./check-editor.js";
import { TARGET_INCIDENTS, incidentsChanged, renderTimeline, setupIncidents, showIncidents } from "./incidents.js";
import { setupMaintenance, showMaintenance } from "./maintenance.js";
import { setupNotifications, showNotifications } from "./notifications.js";
import {
  $, Cancelled, STATES, count, describe, el, mutate, showBanner, showFieldError, stateBadge, tagList, timeAgo,
} from "./ui.js";

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
const DAY = 86400e3;
const RANGES = { "1h": 3600e3, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY, "90d": 90 * DAY };
/** Points of the target page's chart per range: a minute, 5 min, 1 h, 4 h, 12 h each. */
const CHART_BUCKETS = { "1h": 60, "24h": 288, "7d": 168, "30d": 180, "90d": 180 };
/** Raw results (phases, failures) are loaded for at most this much of the range. */
const RAW_SPAN = DAY;
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
  filter: { frequency: null, search: "", tag: "", state: "", order: "ID" },
  // The target list's pages: the cursor each starts after (null for the first), the current one.
  pages: [null],
  page: 0,
  nextCursor: null,
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
const ms = (value) => (value == null ? "–" : `${Math.round(value)} ms`);

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

// A row's fields; the list's query adds its sparkline (`series`), which mutations do not need.
const TARGET_FIELDS = `id url frequency paused state stateSince tags
  latestResult { ${RESULT} }`;
const SPARKLINE = "series(since: $since, buckets: 24) { points { at avgMs } }";

// Sorted, filtered and paged by the server: a page is one statement whatever the list's size.
const TARGETS = `query Targets($first: Int, $after: String, $frequency: Int, $search: String, $tag: String,
                               $states: [TargetState!], $order: TargetOrder, $desc: Boolean, $since: DateTime!) {
  targets(first: $first, after: $after, frequency: $frequency, search: $search, tag: $tag,
          states: $states, orderBy: $order, descending: $desc) {
    nodes { ${TARGET_FIELDS} ${SPARKLINE} }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** Lists the targets with `tag` (a tag filter: `key`, `key:value` or `key:*`). */
function filterByTag(tag) {
  $("#filter-tag").value = tag;
  $("#filter-tag").focus(); // the button pressed goes with its row
  state.filter.tag = tag;
  firstPage();
}

/** A row whose state left the filter's stays until the page is loaded again, marked by its badge. */
function applyStateFilter(entry) {
  entry.row.dataset.filteredOut = String(state.filter.state !== "" && entry.target.state !== state.filter.state);
}

function renderRow(entry) {
  const { target } = entry;
  const last = target.latestResult;
  const spark = el("td", { class: "spark", "data-label": "Recent durations" });
  const row = el(
    "tr",
    {
      "data-id": target.id,
      "data-state": (STATES[target.state] ?? STATES.UNKNOWN)[0],
      "data-result-id": last?.id ?? "",
    },
    el("td", { class: "state-cell", "data-label": "State" }, stateBadge(target)),
    el(
      "td",
      { class: "url", "data-label": "URL" },
      el("a", { href: `#/targets/${target.id}`, text: target.url }),
      tagList(target.tags, filterByTag),
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
  applyStateFilter(entry);
  return row;
}

function track(target) {
  // The last 24 hours' hourly means (rollups for closed hours, raw results for the others).
  const durations = (target.series?.points ?? []).map((p) => Math.round(p.avgMs));
  const entry = { target, durations, row: null, spark: null };
  state.targets.set(target.id, entry);
  return entry;
}

function showTargetsState() {
  const table = $("#targets");
  table.hidden = state.targets.size === 0;
  const filtered = state.filter.frequency != null || state.filter.search !== "" || state.filter.tag !== "" ||
    state.filter.state !== "";
  $("#targets-state").textContent = state.targets.size === 0
    ? filtered
      ? "No targets match this filter."
      : state.page > 0
        ? "No more targets."
        : "No targets yet. Add a URL above to start watching it."
    : "";
}

/** Back to the list's first page (a filter or the order changed). */
function firstPage() {
  state.pages = [null];
  state.page = 0;
  loadTargets();
}

let retryTargets;
let loading = 0;
async function loadTargets() {
  clearTimeout(retryTargets);
  const body = $("#targets tbody");
  const mine = ++loading;
  $("#targets-state").textContent = "Loading targets…";
  const [order, direction] = state.filter.order.split(" ");
  try {
    const data = await gql(TARGETS, {
      first: PAGE,
      after: state.pages[state.page],
      frequency: state.filter.frequency,
      search: state.filter.search || null,
      tag: state.filter.tag || null,
      states: state.filter.state ? [state.filter.state] : null,
      order,
      desc: direction === "desc",
      since: new Date(Date.now() - DAY).toISOString(),
    });
    if (mine !== loading) return; // a later load (another page, filter) answers instead
    for (const entry of state.targets.values()) entry.spark?.destroy();
    state.targets.clear();
    body.replaceChildren();
    for (const target of data.targets.nodes) body.append(renderRow(track(target)));
    state.nextCursor = data.targets.pageInfo.hasNextPage ? data.targets.pageInfo.endCursor : null;
    $("#targets-pager").hidden = state.page === 0 && !state.nextCursor;
    $("#targets-first").disabled = state.page === 0;
    $("#targets-prev").disabled = state.page === 0;
    $("#targets-next").disabled = !state.nextCursor;
    $("#targets-page").textContent = `Page ${state.page + 1}`;
    followLive();
    showBanner("");
    showFieldError(null, { tag: "filter-tag" }, $("#targets-state"));
    showTargetsState();
  } catch (error) {
    if (mine !== loading) return;
    // A bad tag filter ("tag: …") goes beside its field, anything else where the list would be.
    showFieldError(error, { tag: "filter-tag" }, $("#targets-state"));
    if (error instanceof Unreachable) retryTargets = setTimeout(loadTargets, 5000);
  }
}

async function setPaused(entry, paused) {
  try {
    const data = await mutate(
      `mutation($id: ID!, $paused: Boolean) { updateTarget(id: $id, paused: $paused) { ${TARGET_FIELDS} } }`,
      { id: entry.target.id, paused },
    );
    entry.target = { ...entry.target, ...data.updateTarget };
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
    // Shown at the top of the page it was added on (where it belongs in the order shows at the
    // next load), its results followed live like the page's.
    const entry = track(data.addTarget);
    $("#targets tbody").prepend(renderRow(entry));
    showTargetsState();
    followLive();
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
    id url frequency paused createdAt state stateSince tags ${CHECK}
    thresholds { failuresBeforeDown successesBeforeUp ownFailuresBeforeDown ownSuccessesBeforeUp }
    latestResult { ${RESULT_DETAIL} ${TLS} }
    stats(since: $since) {
      checks up degraded down uptimeRatio p50DurationMs p95DurationMs
      phases { phase p50Ms p95Ms }
    }
  }
}`;

// The chart: at most CHART_BUCKETS[range] points, from raw results or rollups (the API chooses).
const DETAIL_SERIES = `query DetailSeries($id: ID!, $since: DateTime!, $buckets: Int!) {
  target(id: $id) {
    series(since: $since, buckets: $buckets) {
      source bucketSeconds points { at checks failures minMs avgMs maxMs p95Ms }
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

/** The series' buckets: mean, p95 and max duration, and the buckets with failures. */
function chartData(series) {
  const points = series?.points ?? [];
  return [
    points.map((p) => new Date(p.at).getTime() / 1000),
    points.map((p) => p.avgMs),
    points.map((p) => p.p95Ms),
    points.map((p) => p.maxMs),
    points.map((p) => (p.failures > 0 ? p.maxMs : null)),
  ];
}

const bucketName = (seconds) =>
  seconds % 86400 === 0 ? `${seconds / 86400} d` : seconds % 3600 === 0 ? `${seconds / 3600} h`
    : seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;

function chartCaption(detail) {
  const series = detail.series;
  const checks = (series?.points ?? []).reduce((sum, p) => sum + p.checks, 0);
  const failures = (series?.points ?? []).reduce((sum, p) => sum + p.failures, 0);
  return `Response time over the last ${detail.range}: ${count(checks, "result")}` +
    (failures ? `, ${count(failures, "failure")}` : "") +
    (series ? `, in buckets of ${bucketName(series.bucketSeconds)}` +
      (series.source === "ROLLUPS" ? " (from hourly rollups)" : "") : "") + ".";
}

/** Loads the chart's series again (a result came in), at most every two seconds. */
let seriesTimer;
function refreshSeries(detail) {
  if (seriesTimer) return;
  seriesTimer = setTimeout(async () => {
    seriesTimer = null;
    if (state.detail !== detail) return;
    try {
      const since = new Date(Date.now() - RANGES[detail.range]).toISOString();
      const { target } = await gql(DETAIL_SERIES, { id: detail.id, since, buckets: CHART_BUCKETS[detail.range] });
      if (state.detail !== detail) return;
      detail.series = target.series;
      detail.chart?.setData(chartData(detail.series));
      $("#target-chart-caption").textContent = chartCaption(detail);
    } catch {
      // The next result tries again.
    }
  }, 2000);
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
          label: "Mean (ms)",
          stroke: "#2563eb",
          width: 1.5,
          points: { show: (detail.series?.points.length ?? 0) < 100, size: 5 },
        },
        { label: "p95 (ms)", stroke: "#7c3aed", width: 1, dash: [4, 3], points: { show: false } },
        { label: "Max (ms)", stroke: "#94a3b8", width: 1, points: { show: false } },
        { label: "Failures", stroke: "#dc2626", width: 0, points: { show: true, size: 6, fill: "#dc2626" } },
      ],
    },
    chartData(detail.series),
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
      scales: { x: { time: true, range: () => [Math.max(detail.since, Date.now() - RAW_SPAN) / 1000, Date.now() / 1000] } },
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
    `Where each probe's time went over the last ${RANGES[detail.range] > RAW_SPAN ? "24h" : detail.range}: ${count(reached, "result")} with a response.`;
}

function refreshCharts(detail) {
  refreshSeries(detail);
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
  $("#target-meta").replaceChildren(
    stateBadge(target),
    ` · every ${target.frequency} min · watched since ${new Date(target.createdAt).toLocaleString()}`,
  );
}

/** Its tags and thresholds: what selects it and what changes its state. */
function renderRules(target) {
  const t = target.thresholds;
  const own = (value) => (value == null ? " (the default)" : "");
  const item = (term, ...value) => el("div", {}, el("dt", { text: term }), el("dd", {}, ...value));
  $("#target-rules-list").replaceChildren(
    item("Tags", tagList(target.tags) ?? "none"),
    item("Down after", `${count(t.failuresBeforeDown, "failing result")} in a row${own(t.ownFailuresBeforeDown)}`),
    item("Up again after", `${count(t.successesBeforeUp, "passing result")} in a row${own(t.ownSuccessesBeforeUp)}`),
  );
}

/** The incidents over the chart's period, as a strip of bars under the chart and a list. */
async function loadTargetIncidents(detail) {
  try {
    const data = await gql(TARGET_INCIDENTS, { id: detail.id, since: new Date(detail.since).toISOString() });
    if (state.detail !== detail) return;
    detail.incidents = data.incidents.nodes;
    renderTimeline(detail.incidents, detail.since, detail.range, detail.chart);
  } catch (error) {
    $("#incident-list-state").textContent = describe(error);
  }
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

// ---- editing a target's tags and thresholds ---------------------------------------------------

/** The API's field names in a message ("tags: …") and the inputs they belong to. */
const RULE_FIELDS = {
  tags: "rules-tags",
  "thresholds.failuresBeforeDown": "rules-down",
  "thresholds.successesBeforeUp": "rules-up",
};

function closeRules() {
  $("#rules-box").replaceChildren();
  $("#rules-edit").setAttribute("aria-expanded", "false");
}

function openRules() {
  const target = state.detail?.target;
  if (!target) return;
  if ($("#rules-form")) {
    closeRules();
    return;
  }
  /** A labelled input with its hint and its error paragraph, both describing it. */
  const field = (label, input, hint) => {
    input.setAttribute("aria-describedby", `${input.id}-error${hint ? ` ${input.id}-hint` : ""}`);
    return el("div", { class: "field" }, el("label", { for: input.id, text: label }), input,
      hint ? el("p", { id: `${input.id}-hint`, class: "hint", text: hint }) : null,
      el("p", { id: `${input.id}-error`, class: "field-error", role: "alert" }));
  };
  const tags = el("input", { id: "rules-tags", type: "text", autocomplete: "off", spellcheck: "false" });
  tags.value = target.tags.join(" ");
  const threshold = (id, own) => {
    const input = el("input", {
      id, type: "number", min: "1", max: "100", step: "1", inputmode: "numeric", placeholder: "the default",
    });
    input.value = own ?? "";
    return input;
  };
  const down = threshold("rules-down", target.thresholds.ownFailuresBeforeDown);
  const up = threshold("rules-up", target.thresholds.ownSuccessesBeforeUp);
  const problem = el("p", { id: "rules-error", class: "field-error", role: "alert" });
  const form = el(
    "form",
    { id: "rules-form", class: "edit rules", novalidate: true, "aria-label": "Edit tags and thresholds" },
    field("Tags", tags, "key or key:value (env:prod team:payments), separated by spaces or commas"),
    el("div", { class: "edit-main" },
      field("Down after (failing results)", down),
      field("Up again after (passing results)", up)),
    el("p", {
      class: "hint",
      text: "1 to 100; empty: the configured default. New thresholds apply to the next results.",
    }),
    problem,
    el("div", { class: "form-actions" },
      el("button", { type: "submit", text: "Save tags and thresholds" }),
      el("button", { type: "button", text: "Cancel", onclick: closeRules })),
  );
  /** A threshold field's value: null (the default) when empty, else the number typed. */
  const read = (input) => {
    if (input.validity.badInput) throw new Error("not a number");
    return input.value.trim() === "" ? null : Number(input.value);
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showFieldError(null, RULE_FIELDS, problem);
    let thresholds;
    try {
      thresholds = { failuresBeforeDown: read(down), successesBeforeUp: read(up) };
    } catch {
      problem.textContent = "A threshold is a whole number from 1 to 100, or empty for the default.";
      return;
    }
    try {
      await mutate(
        `mutation($id: ID!, $tags: [String!], $thresholds: ThresholdsInput) {
          updateTarget(id: $id, tags: $tags, thresholds: $thresholds) { id }
        }`,
        { id: target.id, tags: tags.value.split(/[\s,]+/).filter(Boolean), thresholds },
      );
      closeRules();
      $("#rules-box").append(el("p", { class: "form-status", role: "status", text: "Saved." }));
      $("#rules-edit").focus();
      showTarget(target.id);
    } catch (error) {
      if (!(error instanceof Cancelled)) showFieldError(error, RULE_FIELDS, problem);
    }
  });
  $("#rules-box").replaceChildren(form);
  $("#rules-edit").setAttribute("aria-expanded", "true");
  tags.focus();
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
      closeRules();
    }
    const detail = {
      id,
      range,
      since: Date.parse(since),
      series: null,
      results: [],
      chart: same ? previous.chart : null,
      phaseChart: same ? previous.phaseChart : null,
      target,
      tls: target.latestResult?.tls ?? null,
      incidents: [],
    };
    state.detail = detail;
    followLive();
    $("#target-title").textContent = target.url;
    renderMeta(target);
    renderRules(target);
    renderStats(target.stats);
    renderCheck(target);
    renderCertificate(detail);
    const series = await gql(DETAIL_SERIES, { id, since, buckets: CHART_BUCKETS[range] });
    if (state.detail !== detail) return; // another range or target was asked for meanwhile
    detail.series = series.target.series;
    $("#target-chart-caption").textContent = chartCaption(detail);
    drawChart(detail);
    // Raw results, for the phases and the failures: the last day of the range at most.
    const rawSince = new Date(Math.max(Date.parse(since), Date.now() - RAW_SPAN)).toISOString();
    let after = null;
    do {
      const page = await gql(DETAIL_RESULTS, { id, since: rawSince, after });
      detail.results.push(...page.target.results.nodes);
      after = page.target.results.pageInfo.hasNextPage ? page.target.results.pageInfo.endCursor : null;
    } while (after && detail.results.length < MAX_CHART_POINTS && state.detail === detail);
    drawPhaseChart(detail);
    renderFailures(detail);
    await loadTargetIncidents(detail);
  } catch (error) {
    $("#target-chart-caption").textContent = describe(error);
  }
}

// ---- live results ----------------------------------------------------------------------------

const LIVE_RESULT = `${RESULT_DETAIL} ${TLS} target { id url frequency }`;
let live = null;

/**
 * Points the results subscription at what is on screen: the overview's rows (coalesced by the
 * API to one result a second per row), the report's frequency, or the target shown.
 */
function followLive() {
  if (!live) return;
  // Nothing of the others: the incidents and maintenance views follow state changes only.
  let args = "(targetIds: [])";
  if (state.view === "overview") {
    args = `(targetIds: [${[...state.targets.keys()].map((id) => JSON.stringify(id)).join(", ")}])`;
  } else if (state.view === "reports") {
    args = `(frequency: ${state.report.frequency})`;
  } else if (state.view === "target" && state.detail?.id) {
    args = `(targetId: ${JSON.stringify(state.detail.id)})`;
  }
  live.replace("results", {
    query: `subscription { results${args} { ${LIVE_RESULT} } }`,
    onData: (data) => onResult(data.results),
  });
}

function onResult(result) {
  const entry = state.targets.get(result.target.id);
  if (entry) {
    entry.target.latestResult = result;
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
    renderFailures(detail);
    detail.target.latestResult = result;
    renderMeta(detail.target);
    if (result.tls) {
      detail.tls = result.tls;
      renderCertificate(detail);
    }
  }
}

let detailTimer;
/** A target's state changed: its row's badge, its page, the Incidents page follow. */
function onStateChange({ target: { id }, to, since }) {
  const entry = state.targets.get(id);
  if (entry) {
    Object.assign(entry.target, { state: to, stateSince: since });
    renderRow(entry);
    showTargetsState();
  }
  const detail = state.detail;
  if (state.view === "target" && detail?.id === id) {
    Object.assign(detail.target, { state: to, stateSince: since });
    renderMeta(detail.target);
    clearTimeout(detailTimer);
    detailTimer = setTimeout(() => loadTargetIncidents(detail), 300);
  }
  if (state.view === "incidents") incidentsChanged();
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
  const match = hash.match(/^#\/targets\/(\d+)$/);
  if (match) {
    showView("target");
    showTarget(match[1]);
    return;
  }
  closeEdit();
  closeRules();
  let reports;
  if ((reports = hash.match(/^#\/reports\/(\d+)$/))) {
    showView("reports");
    showReports(Number(reports[1]));
  } else if (hash === "#/incidents") {
    showView("incidents");
    showIncidents();
  } else if (hash === "#/maintenance") {
    showView("maintenance");
    showMaintenance();
  } else if (hash === "#/notifications") {
    showView("notifications");
    showNotifications();
  } else {
    showView("overview");
    loadTargets();
  }
  followLive();
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
  $("#targets-first").addEventListener("click", firstPage);
  $("#targets-prev").addEventListener("click", () => {
    state.page = Math.max(0, state.page - 1);
    loadTargets();
  });
  $("#targets-next").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.pages[state.page + 1] = state.nextCursor;
    state.page += 1;
    loadTargets();
  });
  $("#filter-order").addEventListener("change", (e) => {
    state.filter.order = e.target.value;
    firstPage();
  });
  let searchTimer;
  $("#filter-form").addEventListener("submit", (e) => e.preventDefault());
  $("#filter-frequency").addEventListener("change", (e) => {
    state.filter.frequency = e.target.value ? Number(e.target.value) : null;
    firstPage();
  });
  $("#filter-search").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.filter.search = e.target.value.trim();
      firstPage();
    }, 250);
  });
  $("#filter-tag").addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.filter.tag = e.target.value.trim();
      firstPage();
    }, 250);
  });
  $("#filter-state").addEventListener("change", (e) => {
    state.filter.state = e.target.value;
    firstPage();
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
  $("#rules-edit").addEventListener("click", openRules);
  setupIncidents();
  setupMaintenance();
  setupNotifications();
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => showTarget(state.detail?.id, button.dataset.range));
  }
  window.addEventListener("resize", () => {
    if (state.view === "target" && state.detail?.chart) {
      state.detail.chart.setSize({ width: chartWidth($("#target-chart")), height: 260 });
      state.detail.phaseChart?.setSize({ width: chartWidth($("#phase-chart")), height: 220 });
      renderTimeline(state.detail.incidents, state.detail.since, state.detail.range, state.detail.chart);
    }
  });
  window.addEventListener("hashchange", route);
  live = subscribe(
    {
      results: {
        query: `subscription { results(targetIds: []) { ${LIVE_RESULT} } }`,
        onData: (data) => onResult(data.results),
      },
      states: {
        query: "subscription { stateChanges { target { id } from to since } }",
        onData: (data) => onStateChange(data.stateChanges),
      },
    },
    onLiveState,
  );
  route();
}

start();
