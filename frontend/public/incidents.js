// Incidents: the Incidents page (open ones first, then the resolved ones newest first, paged)
// and a target's incident timeline (bars over its chart's period, and the list beside them).

import { gql } from "./api.js";
import { $, count, describe, duration, el, lasting, when } from "./ui.js";

export const INCIDENT = "id state cause openedAt confirmedAt resolvedAt open durationSeconds";
const PAGE = 50;
const MAX_PAGE = 500; // the API's default PINGPIPE_API_MAX_PAGE

const INCIDENTS = `query Incidents($open: Boolean!, $first: Int, $after: String) {
  incidents(open: $open, first: $first, after: $after) {
    nodes { ${INCIDENT} target { id url } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const timeOf = (iso) => el("time", { datetime: iso, title: new Date(iso).toLocaleString(), text: when(iso) });

/** How long it lasted; while open, how long so far (kept current). */
const lastedFor = (i) =>
  i.open ? el("span", {}, lasting(i.openedAt, ""), " so far") : duration(i.durationSeconds);

// ---- the Incidents page ----------------------------------------------------------------------

const LISTS = {
  open: { empty: "No open incidents: every target is up or on its way.", after: null },
  history: { empty: "No resolved incidents yet.", after: null },
};

function incidentRow(i) {
  return el(
    "tr",
    { "data-id": i.id, "data-open": String(i.open) },
    el("td", { class: "url", "data-label": "Target" },
      el("a", { href: `#/targets/${i.target.id}`, text: i.target.url })),
    el("td", { class: "cause", "data-label": "Cause", text: i.cause ?? "–" }),
    el("td", { "data-label": "Opened" }, timeOf(i.openedAt)),
    el("td", { "data-label": "Confirmed" }, timeOf(i.confirmedAt)),
    el("td", { class: "resolved", "data-label": "Resolved" },
      i.open ? el("span", { class: "badge down", text: "Open" }) : timeOf(i.resolvedAt)),
    el("td", { class: "duration", "data-label": "Duration" }, lastedFor(i)),
  );
}

/** Loads a list's first page again (as many rows as it shows), or its next page (`append`). */
async function loadList(kind, { append = false } = {}) {
  const list = LISTS[kind];
  const table = $(`#incidents-${kind}`);
  const body = table.tBodies[0];
  const status = $(`#incidents-${kind}-state`);
  const first = append ? PAGE : Math.min(Math.max(PAGE, body.rows.length), MAX_PAGE);
  try {
    const data = await gql(INCIDENTS, { open: kind === "open", first, after: append ? list.after : null });
    const { nodes, pageInfo } = data.incidents;
    if (append) body.append(...nodes.map(incidentRow));
    else body.replaceChildren(...nodes.map(incidentRow));
    list.after = pageInfo.endCursor;
    $(`#incidents-${kind}-more`).hidden = !pageInfo.hasNextPage;
    table.hidden = body.rows.length === 0;
    status.textContent = table.hidden ? list.empty : "";
  } catch (error) {
    status.textContent = describe(error);
  }
}

export function showIncidents() {
  return Promise.all([loadList("open"), loadList("history")]);
}

let refreshTimer;
/** A target's state changed: an incident may have opened or closed (one reload for a burst). */
export function incidentsChanged() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(showIncidents, 300);
}

export function setupIncidents() {
  for (const kind of Object.keys(LISTS)) {
    $(`#incidents-${kind}-more`).addEventListener("click", () => loadList(kind, { append: true }));
  }
}

// ---- a target's timeline ---------------------------------------------------------------------

export const TARGET_INCIDENTS = `query TargetIncidents($id: ID!, $since: DateTime) {
  incidents(targetId: $id, since: $since, first: 100) {
    nodes { ${INCIDENT} }
    pageInfo { hasNextPage }
  }
}`;

/**
 * Draws `incidents` (newest first) as bars over [since, now] in `#incident-strip`, lined up
 * with `chart`'s plotting area, and lists them in `#incident-list`.
 */
export function renderTimeline(incidents, since, range, chart) {
  const now = Date.now();
  const span = Math.max(now - since, 1);
  const strip = $("#incident-strip");
  const bars = incidents.map((i) => {
    const start = Math.max(Date.parse(i.openedAt), since);
    const end = i.open ? now : Math.min(Date.parse(i.resolvedAt), now);
    const bar = el("span", {
      class: `bar${i.open ? " open" : ""}`,
      title: `${i.open ? "Open" : "Resolved"} incident from ${when(i.openedAt)}` +
        (i.open ? "" : ` to ${when(i.resolvedAt)}`) + ` (${duration(i.durationSeconds)})` +
        (i.cause ? `: ${i.cause}` : ""),
    });
    // Set through the CSSOM: the page's CSP allows no style attributes.
    // At least 3 px wide, and never past the right edge (an incident that just ended).
    bar.style.left = `min(${((start - since) / span) * 100}%, 100% - 3px)`;
    bar.style.width = `max(3px, ${((end - start) / span) * 100}%)`;
    return bar;
  });
  strip.replaceChildren(...bars);
  strip.setAttribute("aria-label",
    `Incidents over the last ${range}: ${count(incidents.length, "incident")}, listed below`);
  $("#incident-strip-from").textContent = when(new Date(since).toISOString());
  if (chart) {
    const plot = chart.over.getBoundingClientRect();
    const box = strip.parentElement.getBoundingClientRect();
    strip.parentElement.style.paddingLeft = `${Math.max(plot.left - box.left, 0)}px`;
    strip.parentElement.style.paddingRight = `${Math.max(box.right - plot.right, 0)}px`;
  }
  $("#incident-list").replaceChildren(
    ...incidents.map((i) =>
      el(
        "li",
        { "data-id": i.id, "data-open": String(i.open) },
        i.open
          ? el("span", { class: "badge down", text: "Open" })
          : el("span", { class: "badge up", text: "Resolved" }),
        " Down from ", timeOf(i.openedAt),
        ...(i.open ? [] : [" to ", timeOf(i.resolvedAt)]),
        " — ", el("span", { class: "duration" }, lastedFor(i)),
        i.cause ? ` — ${i.cause}` : null,
      ),
    ),
  );
  $("#incident-list-state").textContent = incidents.length === 0 ? "No incidents in this period." : "";
}
