// What the dashboard's views share: building elements, times and durations as people read them,
// a target's state badge, the banner, and changes that need the API token (asked for in a
// dialog). All text goes in through textContent, never as HTML.

import { ApiError, Unreachable, gql, token } from "./api.js";

export const $ = (selector) => document.querySelector(selector);
export const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** An element; attributes that are null or false are left out, `on…` ones are listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

// ---- times and durations ---------------------------------------------------------------------

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h": a duration in seconds, two units at most. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const [big, bigUnit, small, smallUnit] = s < 86400
    ? [Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "min"]
    : [Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h"];
  return small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`;
}

const secondsSince = (iso) => (Date.now() - Date.parse(iso)) / 1000;

function relative(iso) {
  const seconds = Math.round(secondsSince(iso));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** A date and time as this browser writes them, without seconds. */
export const when = (iso) =>
  new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A <time> showing "2 min ago" (kept current), with the local date and time on hover. */
export function timeAgo(iso) {
  return el("time", { datetime: iso, title: new Date(iso).toLocaleString(), "data-relative": "", text: relative(iso) });
}

/** A <time> showing how long it has been since `iso` ("for 3 min", kept current). */
export function lasting(iso, prefix = "for ") {
  return el("time", {
    datetime: iso,
    title: `since ${new Date(iso).toLocaleString()}`,
    "data-lasting": prefix,
    text: prefix + duration(secondsSince(iso)),
  });
}

setInterval(() => {
  for (const node of document.querySelectorAll("time[data-relative]")) {
    node.textContent = relative(node.getAttribute("datetime"));
  }
  for (const node of document.querySelectorAll("time[data-lasting]")) {
    node.textContent = node.dataset.lasting + duration(secondsSince(node.getAttribute("datetime")));
  }
}, 5000);

// ---- target states ---------------------------------------------------------------------------

/** Each `TargetState`: its badge's class and label. */
export const STATES = {
  UP: ["up", "Up"],
  DEGRADED: ["degraded", "Degraded"],
  PENDING: ["pending", "Pending"],
  DOWN: ["down", "Down"],
  PAUSED: ["paused", "Paused"],
  MAINTENANCE: ["maintenance", "Maintenance"],
  UNKNOWN: ["unknown", "Unknown"],
};

/** A target's state: a badge (colour and word), then how long it has held ("for 3 min"). */
export function stateBadge({ state, stateSince }) {
  const [kind, label] = STATES[state] ?? STATES.UNKNOWN;
  return el(
    "span",
    { class: "state-badge" },
    el("span", { class: `badge ${kind}`, text: label }),
    stateSince ? lasting(stateSince) : state === "UNKNOWN" ? el("small", { text: "no result yet" }) : null,
  );
}

/** A list of tags as chips; `onPick(tag)`, when given, makes each a button. */
export function tagList(tags, onPick) {
  if (tags.length === 0) return null;
  return el(
    "ul",
    { class: "tags", "aria-label": "Tags" },
    ...tags.map((tag) =>
      el("li", {}, onPick
        ? el("button", {
          type: "button",
          class: "tag",
          text: tag,
          "aria-label": `Show targets tagged ${tag}`,
          onclick: () => onPick(tag),
        })
        : el("span", { class: "tag", text: tag })),
    ),
  );
}

// ---- messages --------------------------------------------------------------------------------

export function showBanner(message) {
  const banner = $("#banner");
  banner.textContent = message;
  banner.hidden = !message;
}

export function describe(error) {
  if (error instanceof Unreachable) return `${error.message} Is pingpipe-api running?`;
  if (error instanceof ApiError) return error.message;
  return `Unexpected error: ${error.message}`;
}

/**
 * Puts a BAD_USER_INPUT message that starts with a field's name ("cron: …") beside that field:
 * `fields` maps the API's names to the ids of the inputs (each with an `<id>-error` paragraph).
 * Anything else goes to `fallback` (an error paragraph). Clears the earlier messages first.
 */
export function showFieldError(error, fields, fallback) {
  for (const id of Object.values(fields)) {
    $(`#${id}-error`).textContent = "";
    $(`#${id}`).removeAttribute("aria-invalid");
  }
  fallback.textContent = "";
  if (!error) return;
  const name = error instanceof ApiError && error.code === "BAD_USER_INPUT"
    ? Object.keys(fields).find((f) => error.message.startsWith(`${f}: `))
    : null;
  const input = name ? $(`#${fields[name]}`) : null;
  // A field the form hides now (another choice is made) cannot show it.
  if (!input || input.closest("[hidden]")) {
    fallback.textContent = describe(error);
    return;
  }
  $(`#${fields[name]}-error`).textContent = error.message;
  input.setAttribute("aria-invalid", "true");
  input.focus();
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

/** The person closed the token dialog without a token: nothing was sent. */
export class Cancelled extends Error {}

/** A mutation: asks for the token first if there is none; a refused token is forgotten. */
export async function mutate(query, variables) {
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
