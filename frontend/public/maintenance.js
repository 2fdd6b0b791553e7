// The maintenance windows page: every window with its schedule in words, what it covers,
// whether it is open now and its next occurrences; a form to add one (one-off or recurring, for
// all targets, some targets or tagged ones) and a button to remove each. The API judges the
// input; its message goes beside the field it names.

import { gql } from "./api.js";
import { $, Cancelled, describe, duration, el, mutate, showFieldError, when } from "./ui.js";

const WINDOW = `id name from until cron timeZone durationMinutes allTargets targetIds tags openNow
  occurrences(first: 3) { start end }`;
const WINDOWS = `query Windows {
  maintenanceWindows { ${WINDOW} }
  targets(first: 500) { nodes { id url } }
}`;
/** The API's field names in a message ("cron: …") and the inputs they belong to. */
const FIELDS = {
  name: "window-name",
  from: "window-from",
  until: "window-until",
  cron: "window-cron",
  timeZone: "window-zone",
  durationMinutes: "window-duration",
  targetIds: "window-targets",
  tags: "window-tags",
};

let urls = new Map(); // target id → URL, for the scope of windows and the form's list

// ---- in words --------------------------------------------------------------------------------

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const day = (d) => DAYS[/^\d$/.test(d) ? Number(d) % 7 : DAY_NAMES.indexOf(d.toUpperCase())];

/**
 * "every day at 02:30", "every Sunday at 02:30" for the plain shapes of a cron expression;
 * null for anything else (the expression itself is shown anyway).
 */
function cronWords(cron) {
  const [minute, hour, dom, month, dow, ...rest] = cron.trim().split(/\s+/);
  if (rest.length || !/^\d{1,2}$/.test(minute) || !/^\d{1,2}$/.test(hour) || dom !== "*" || month !== "*") {
    return null;
  }
  const at = `at ${hour.padStart(2, "0")}:${minute.padStart(2, "0")}`;
  if (dow === "*") return `every day ${at}`;
  const days = dow.split(",").map(day);
  return days.every(Boolean) ? `every ${days.join(" and ")} ${at}` : null;
}

function schedule(w) {
  if (w.cron == null) {
    const seconds = (Date.parse(w.until) - Date.parse(w.from)) / 1000;
    return [`Once, from ${when(w.from)} to ${when(w.until)} (${duration(seconds)})`];
  }
  const words = cronWords(w.cron);
  const each = `for ${duration(w.durationMinutes * 60)} each time`;
  const cron = el("code", { text: w.cron });
  return words
    ? [`${words[0].toUpperCase()}${words.slice(1)} (${w.timeZone}), ${each} · cron `, cron]
    : ["Whenever cron ", cron, ` matches (${w.timeZone}), ${each}`];
}

function scope(w) {
  if (w.allTargets) return ["All targets"];
  if (w.tags.length) return [`Targets tagged ${w.tags.join(" or ")}`];
  const links = w.targetIds.map((id) => el("a", { href: `#/targets/${id}`, text: urls.get(id) ?? `target ${id}` }));
  return [w.targetIds.length === 1 ? "Target " : "Targets ", ...links.flatMap((a, i) => (i ? [", ", a] : [a]))];
}

function windowItem(w) {
  const item = (term, ...value) => el("div", {}, el("dt", { text: term }), el("dd", {}, ...value));
  const next = w.occurrences.length
    ? el("ol", { class: "occurrences" }, ...w.occurrences.map((o) =>
      el("li", {}, el("time", { datetime: o.start, text: when(o.start) }), " – ",
        el("time", { datetime: o.end, text: when(o.end) }))))
    : "None in the next 30 days.";
  return el(
    "li",
    { class: "card window", "data-id": w.id, "aria-labelledby": `window-${w.id}-name` },
    el("h3", { id: `window-${w.id}-name` }, w.name, " ",
      w.openNow ? el("span", { class: "badge maintenance", text: "Open now" }) : null),
    el("dl", {},
      item("When", ...schedule(w)),
      item("Covers", ...scope(w)),
      item("Next", next)),
    el("button", {
      type: "button", class: "danger", text: "Remove", "aria-label": `Remove window ${w.name}`,
      onclick: () => remove(w),
    }),
  );
}

// ---- loading and changing --------------------------------------------------------------------

export async function showMaintenance() {
  const status = $("#windows-state");
  status.textContent = "Loading windows…";
  try {
    const data = await gql(WINDOWS);
    urls = new Map(data.targets.nodes.map((t) => [t.id, t.url]));
    const select = $("#window-targets");
    const picked = new Set([...select.selectedOptions].map((o) => o.value));
    select.replaceChildren(...data.targets.nodes.map((t) =>
      el("option", { value: t.id, text: t.url, selected: picked.has(t.id) })));
    const windows = data.maintenanceWindows;
    $("#windows").replaceChildren(...windows.map(windowItem));
    status.textContent = windows.length ? "" : "No maintenance windows.";
  } catch (error) {
    status.textContent = describe(error);
  }
}

async function remove(w) {
  if (!confirm(`Remove the maintenance window "${w.name}"?`)) return;
  try {
    await mutate(`mutation($id: ID!) { removeMaintenanceWindow(id: $id) { id } }`, { id: w.id });
    $("#window-status").textContent = `Removed the window "${w.name}".`;
    await showMaintenance();
  } catch (error) {
    if (!(error instanceof Cancelled)) $("#windows-state").textContent = describe(error);
  }
}

const chosen = (name) => document.querySelector(`input[name="${name}"]:checked`).value;
const iso = (local) => (local ? new Date(local).toISOString() : null);

/** The `MaintenanceWindowInput` the form says: only the chosen schedule's and scope's fields. */
function readForm() {
  const input = { name: $("#window-name").value.trim() };
  if (chosen("window-kind") === "once") {
    input.from = iso($("#window-from").value);
    input.until = iso($("#window-until").value);
  } else {
    input.cron = $("#window-cron").value.trim();
    input.timeZone = $("#window-zone").value.trim();
    const minutes = $("#window-duration").value.trim();
    input.durationMinutes = minutes === "" ? null : Number(minutes);
  }
  const covers = chosen("window-scope");
  if (covers === "all") input.allTargets = true;
  if (covers === "targets") input.targetIds = [...$("#window-targets").selectedOptions].map((o) => o.value);
  if (covers === "tags") input.tags = $("#window-tags").value.split(/[\s,]+/).filter(Boolean);
  return input;
}

async function add(event) {
  event.preventDefault();
  $("#window-status").textContent = "";
  showFieldError(null, FIELDS, $("#window-form-error"));
  const input = readForm();
  try {
    await mutate(
      `mutation($window: MaintenanceWindowInput!) { addMaintenanceWindow(window: $window) { id } }`,
      { window: input },
    );
    $("#window-status").textContent = `Added the window "${input.name}".`;
    $("#window-name").value = "";
    await showMaintenance();
  } catch (error) {
    if (!(error instanceof Cancelled)) showFieldError(error, FIELDS, $("#window-form-error"));
  }
}

/** Shows the fields of the chosen schedule and scope only. */
function sync() {
  const once = chosen("window-kind") === "once";
  $("#window-once").hidden = !once;
  $("#window-recurring").hidden = once;
  const covers = chosen("window-scope");
  $("#window-scope-targets").hidden = covers !== "targets";
  $("#window-scope-tags").hidden = covers !== "tags";
}

export function setupMaintenance() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("#window-local-zone").textContent = zone;
  $("#window-zone").value = zone;
  $("#window-zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => el("option", { value: z })));
  $("#window-form").addEventListener("change", sync);
  $("#window-form").addEventListener("submit", add);
  sync();
}
