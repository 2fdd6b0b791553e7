// The Notifications page: the channels (kind, name, where they send, which secrets are set,
// enabled), a form to add one with the fields its kind needs (secrets in password inputs, never
// filled in), a Test button per channel that shows the receiver's answer, each channel's routes
// (added and removed there), and the delivery log, newest first and paged, with a Redeliver
// button for failed deliveries. Everything here needs the API token (addresses, receivers'
// answers), asked for as for changes. The API judges the input; its message goes beside the
// field it names.

import { ApiError, token } from "./api.js";
import { $, Cancelled, describe, el, mutate, showFieldError, when } from "./ui.js";

const ROUTE = "id name allTargets targetIds tags events remindEveryMinutes silenceInMaintenance enabled";
const CHANNEL = `id name kind enabled url topic chatId smtpHost smtpPort smtpSecurity from to username
  secretsSet routes { ${ROUTE} }`;
const CHANNELS = `query Channels {
  channels { ${CHANNEL} }
  targets(first: 500) { nodes { id url } }
}`;
const DELIVERY = `id test status attempts createdAt summary lastStatus lastAnswer lastError nextAttemptAt
  channel { id name }`;
const DELIVERIES = `query Deliveries($first: Int, $after: String, $status: DeliveryStatus) {
  deliveries(first: $first, after: $after, status: $status) {
    nodes { ${DELIVERY} }
    pageInfo { hasNextPage endCursor }
  }
}`;
const PAGE = 50;

const KINDS = {
  WEBHOOK: "Webhook",
  SLACK: "Slack",
  DISCORD: "Discord",
  TEAMS: "Teams",
  NTFY: "ntfy",
  TELEGRAM: "Telegram",
  EMAIL: "E-mail",
  PAGERDUTY: "PagerDuty",
};
const EVENTS = {
  DOWN: "Down",
  RECOVERED: "Recovered",
  DEGRADED: "Degraded",
  CERTIFICATE_EXPIRING: "Certificate expiring",
  UNKNOWN: "Unknown",
};
const STATUSES = { PENDING: ["pending", "Pending"], DELIVERED: ["up", "Delivered"], FAILED: ["down", "Failed"] };
const SECRET_URL = new Set(["slack", "discord", "teams"]);

/** The API's field names in a message ("url: …") and the channel form's inputs. */
function channelFields(kind) {
  return {
    name: "channel-name",
    kind: "channel-kind",
    url: SECRET_URL.has(kind) ? "channel-secret-url" : kind === "webhook" ? "channel-url" : "channel-server",
    topic: "channel-topic",
    chatId: "channel-chat",
    smtpHost: "channel-smtp-host",
    smtpPort: "channel-smtp-port",
    smtpSecurity: "channel-smtp-security",
    from: "channel-from",
    to: "channel-to",
    username: "channel-username",
    password: "channel-password",
    signingKey: "channel-signing-key",
    token: "channel-token",
    routingKey: "channel-routing-key",
    template: "channel-template",
  };
}

let urls = new Map(); // target id → URL
let deliveriesAfter = null;
let deliveriesLoads = 0;

// ---- in words --------------------------------------------------------------------------------

/** Where a channel sends, in words. */
function where(c) {
  switch (c.kind) {
    case "EMAIL":
      return `${c.to.join(", ")} from ${c.from ?? "?"} via ${c.smtpHost}${c.smtpPort ? `:${c.smtpPort}` : ""}`;
    case "NTFY":
      return `topic ${c.topic} on ${c.url ?? "ntfy.sh"}`;
    case "TELEGRAM":
      return `chat ${c.chatId}${c.url ? ` via ${c.url}` : ""}`;
    case "PAGERDUTY":
      return c.url ?? "PagerDuty Events API v2";
    default:
      return c.url ?? "–";
  }
}

function scopeWords(r) {
  if (r.allTargets) return "all targets";
  if (r.tags.length) return `targets tagged ${r.tags.join(" or ")}`;
  return r.targetIds.map((id) => urls.get(id) ?? `target ${id}`).join(", ");
}

function routeItem(channel, r) {
  const events = r.events.map((e) => EVENTS[e] ?? e).join(", ");
  const extra = [
    r.remindEveryMinutes ? `reminder every ${r.remindEveryMinutes} min` : null,
    r.silenceInMaintenance ? null : "also in maintenance",
    r.enabled ? null : "disabled",
  ].filter(Boolean);
  return el(
    "li",
    { "data-id": r.id },
    el("strong", { text: r.name }), `: ${events} of ${scopeWords(r)}`,
    extra.length ? ` (${extra.join(", ")})` : null, " ",
    el("button", {
      type: "button", class: "danger small", text: "Remove", "aria-label": `Remove route ${r.name}`,
      onclick: () => removeRoute(r),
    }),
  );
}

/** The form that adds a route to `channel`, its inputs' ids prefixed with the channel's. */
function routeForm(channel) {
  const p = `route-${channel.id}`;
  const fields = { name: `${p}-name`, targetIds: `${p}-targets`, tags: `${p}-tags`, events: `${p}-events`,
    remindEveryMinutes: `${p}-remind` };
  const error = (id) => el("p", { id: `${id}-error`, class: "field-error", role: "alert" });
  const field = (id, label, input) => el("div", { class: "field" }, el("label", { for: id, text: label }), input, error(id));
  const scope = el("fieldset", { class: "choice" }, el("legend", { text: "Targets" }),
    ...[["all", "All targets"], ["targets", "Some targets"], ["tags", "Tagged targets"]].map(([value, label], i) =>
      el("label", {}, el("input", { type: "radio", name: `${p}-scope`, value, checked: i === 0 }), ` ${label}`)));
  const targets = field(fields.targetIds, "Targets", el("select", { id: fields.targetIds, multiple: true, size: 4 },
    ...[...urls].map(([id, url]) => el("option", { value: id, text: url }))));
  const tags = field(fields.tags, "Tag filters", el("input", { id: fields.tags, type: "text", autocomplete: "off",
    spellcheck: "false", placeholder: "env:prod team:*" }));
  const events = el("fieldset", { class: "choice", id: fields.events, tabindex: "-1" }, el("legend", { text: "Events" }),
    ...Object.entries(EVENTS).map(([value, label]) => el("label", {},
      el("input", { type: "checkbox", name: `${p}-event`, value, checked: value === "DOWN" || value === "RECOVERED" }),
      ` ${label}`)),
    error(fields.events));
  const remind = field(fields.remindEveryMinutes, "Remind every (minutes, optional)",
    el("input", { id: fields.remindEveryMinutes, type: "number", min: "1", max: "10080", inputmode: "numeric" }));
  const silence = el("label", {}, el("input", { type: "checkbox", name: `${p}-silence`, checked: true }),
    " Silent while in maintenance");
  const formError = el("p", { id: `${p}-form-error`, class: "field-error", role: "alert" });
  const form = el("form", { class: "window-form route-form", novalidate: true, "aria-label": `Add a route to ${channel.name}` },
    el("div", { class: "window-fields" },
      field(fields.name, "Route name", el("input", { id: fields.name, type: "text", autocomplete: "off" })), remind),
    scope, targets, tags, events, silence, formError,
    el("div", { class: "form-actions" }, el("button", { type: "submit", text: "Add route" })));
  const sync = () => {
    const chosen = form.querySelector(`input[name="${p}-scope"]:checked`).value;
    targets.hidden = chosen !== "targets";
    tags.hidden = chosen !== "tags";
  };
  form.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showFieldError(null, fields, formError);
    const chosen = form.querySelector(`input[name="${p}-scope"]:checked`).value;
    const remindText = $(`#${fields.remindEveryMinutes}`).value.trim();
    const input = {
      name: $(`#${fields.name}`).value.trim(),
      channelId: channel.id,
      allTargets: chosen === "all",
      targetIds: chosen === "targets" ? [...$(`#${fields.targetIds}`).selectedOptions].map((o) => o.value) : [],
      tags: chosen === "tags" ? $(`#${fields.tags}`).value.split(/[\s,]+/).filter(Boolean) : [],
      events: [...form.querySelectorAll(`input[name="${p}-event"]:checked`)].map((i) => i.value),
      remindEveryMinutes: remindText === "" ? null : Number(remindText),
      silenceInMaintenance: form.querySelector(`input[name="${p}-silence"]`).checked,
    };
    try {
      await mutate(`mutation($input: RouteInput!) { createRoute(input: $input) { id } }`, { input });
      $("#channel-status").textContent = `Added the route "${input.name}" to ${channel.name}.`;
      await showChannels();
    } catch (error) {
      if (!(error instanceof Cancelled)) showFieldError(error, fields, formError);
    }
  });
  return el("details", { class: "route-box" }, el("summary", { text: "Add a route" }), form);
}

function channelItem(c) {
  const item = (term, ...value) => el("div", {}, el("dt", { text: term }), el("dd", {}, ...value));
  const result = el("p", { class: "test-result", role: "status", "aria-live": "polite" });
  return el(
    "li",
    { class: "card window channel", "data-id": c.id, "aria-labelledby": `channel-${c.id}-name` },
    el("h3", { id: `channel-${c.id}-name` }, c.name, " ",
      el("span", { class: "badge kind", text: KINDS[c.kind] ?? c.kind }),
      c.enabled ? null : el("span", { class: "badge paused", text: "Disabled" })),
    el("dl", {},
      item("Sends to", el("span", { class: "where", text: where(c) })),
      item("Secrets", c.secretsSet.length ? `${c.secretsSet.join(", ")} set` : "none"),
      item("Routes", c.routes.length
        ? el("ul", { class: "routes" }, ...c.routes.map((r) => routeItem(c, r)))
        : "None: this channel hears nothing yet.")),
    routeForm(c),
    el("div", { class: "form-actions" },
      el("button", { type: "button", text: "Test", "aria-label": `Test channel ${c.name}`, onclick: () => test(c, result) }),
      el("button", { type: "button", class: "danger", text: "Remove", "aria-label": `Remove channel ${c.name}`,
        onclick: () => removeChannel(c) })),
    result,
  );
}

// ---- loading and changing --------------------------------------------------------------------

/** Runs a read that needs the token (asked for if there is none). */
const read = (query, variables) => mutate(query, variables);

function needToken(error) {
  const missing = error instanceof Cancelled || (error instanceof ApiError && error.code === "UNAUTHENTICATED");
  $("#notify-token").hidden = !missing;
  $("#notify-content").hidden = missing;
  $("#notify-state").textContent = missing
    ? `${error instanceof Cancelled ? "" : `${error.message} `}Notification settings need the API token.`
    : describe(error);
}

async function showChannels() {
  const status = $("#channels-state");
  const data = await read(CHANNELS);
  urls = new Map(data.targets.nodes.map((t) => [t.id, t.url]));
  const open = new Set([...document.querySelectorAll("#channels details[open]")].map((d) => d.closest("li").dataset.id));
  $("#channels").replaceChildren(...data.channels.map(channelItem));
  for (const id of open) {
    const details = document.querySelector(`#channels li[data-id="${id}"] details`);
    if (details) details.open = true;
  }
  status.textContent = data.channels.length ? "" : "No channels yet.";
}

function deliveryRow(d) {
  const [kind, label] = STATUSES[d.status] ?? STATUSES.PENDING;
  const answer = d.lastError ?? [d.lastStatus, d.lastAnswer].filter((v) => v != null && v !== "").join(" ");
  return el(
    "tr",
    { "data-id": d.id, "data-status": d.status },
    el("td", { "data-label": "Made" }, el("time", { datetime: d.createdAt, text: when(d.createdAt) })),
    el("td", { class: "channel", "data-label": "Channel", text: d.channel?.name ?? "(removed)" }),
    el("td", { class: "summary", "data-label": "Message", text: d.test ? `${d.summary} (test)` : d.summary }),
    el("td", { class: "status", "data-label": "Status" }, el("span", { class: `badge ${kind}`, text: label }),
      d.nextAttemptAt ? el("small", { text: ` next ${when(d.nextAttemptAt)}` }) : null),
    el("td", { class: "attempts", "data-label": "Attempts", text: String(d.attempts) }),
    el("td", { class: "answer", "data-label": "Last answer", text: answer || "–" }),
    el("td", { class: "actions" }, d.status === "FAILED" && !d.test
      ? el("button", { type: "button", text: "Redeliver", "aria-label": `Redeliver ${d.summary}`, onclick: () => redeliver(d) })
      : null),
  );
}

/** The delivery log's first page again, or its next page (`append`). */
async function loadDeliveries({ append = false } = {}) {
  const table = $("#deliveries");
  const body = table.tBodies[0];
  const status = $("#deliveries-state");
  // Answers can arrive out of order (a reload after Redeliver, then a filter change): only the
  // latest request's answer is shown.
  const mine = ++deliveriesLoads;
  const data = await read(DELIVERIES, {
    first: PAGE,
    after: append ? deliveriesAfter : null,
    status: $("#deliveries-status").value || null,
  });
  if (mine !== deliveriesLoads) return;
  const { nodes, pageInfo } = data.deliveries;
  if (append) body.append(...nodes.map(deliveryRow));
  else body.replaceChildren(...nodes.map(deliveryRow));
  deliveriesAfter = pageInfo.endCursor;
  $("#deliveries-more").hidden = !pageInfo.hasNextPage;
  table.hidden = body.rows.length === 0;
  status.textContent = table.hidden ? "No deliveries yet." : "";
}

export async function showNotifications() {
  $("#notify-state").textContent = token.get() ? "Loading…" : "";
  try {
    await showChannels();
    await loadDeliveries();
    $("#notify-state").textContent = "";
    $("#notify-token").hidden = true;
    $("#notify-content").hidden = false;
  } catch (error) {
    needToken(error);
  }
}

/** Runs a change; a refusal goes to the page's status line. */
async function change(action, done) {
  try {
    await action();
    $("#channel-status").textContent = done;
    await showNotifications();
  } catch (error) {
    if (!(error instanceof Cancelled)) $("#channels-state").textContent = describe(error);
  }
}

function removeChannel(c) {
  if (!confirm(`Remove the channel "${c.name}" with its routes and its delivery log?`)) return;
  return change(() => mutate(`mutation($id: ID!) { deleteChannel(id: $id) { id } }`, { id: c.id }),
    `Removed the channel "${c.name}".`);
}

function removeRoute(r) {
  return change(() => mutate(`mutation($id: ID!) { deleteRoute(id: $id) { id } }`, { id: r.id }),
    `Removed the route "${r.name}".`);
}

function redeliver(d) {
  return change(() => mutate(`mutation($id: ID!) { redeliver(deliveryId: $id) { id } }`, { id: d.id }),
    "Sent again: the delivery is pending.");
}

async function test(c, result) {
  result.textContent = `Sending a test message to ${c.name}…`;
  result.dataset.delivered = "";
  try {
    const data = await mutate(
      `mutation($id: ID!) { testChannel(id: $id) { delivered status answer error } }`,
      { id: c.id },
    );
    const t = data.testChannel;
    const said = [t.status, t.answer].filter((v) => v != null && v !== "").join(" ");
    result.dataset.delivered = String(t.delivered);
    result.textContent = `${t.delivered ? "Delivered" : "Not delivered"}: ${t.error ?? (said || "no answer")}`;
    await loadDeliveries();
  } catch (error) {
    result.textContent = error instanceof Cancelled ? "" : describe(error);
  }
}

/** The `ChannelInput` the form says: only the chosen kind's fields, secrets only when typed. */
function readForm() {
  const kind = $("#channel-kind").value;
  const value = (id) => $(`#${id}`).value.trim();
  const input = { name: value("channel-name"), kind };
  const shown = (id) => !$(`#${id}`).closest(".field").hidden && value(id) !== "";
  const set = (name, id, convert = (v) => v) => {
    if (shown(id)) input[name] = convert(value(id));
  };
  set("url", channelFields(kind).url);
  set("topic", "channel-topic");
  set("chatId", "channel-chat");
  set("smtpHost", "channel-smtp-host");
  set("smtpPort", "channel-smtp-port", Number);
  if (kind === "email") input.smtpSecurity = $("#channel-smtp-security").value;
  set("from", "channel-from");
  set("to", "channel-to", (v) => v.split(",").map((t) => t.trim()).filter(Boolean));
  set("username", "channel-username");
  set("password", "channel-password");
  set("signingKey", "channel-signing-key");
  set("token", "channel-token");
  set("routingKey", "channel-routing-key");
  if (value("channel-template")) input.template = $("#channel-template").value;
  return input;
}

async function addChannel(event) {
  event.preventDefault();
  $("#channel-status").textContent = "";
  const input = readForm();
  const fields = channelFields(input.kind);
  // The URL's message goes beside the kind's URL input; all three are cleared.
  const urlInputs = { otherUrl: "channel-url", secretUrl: "channel-secret-url", server: "channel-server" };
  showFieldError(null, { ...fields, ...urlInputs }, $("#channel-form-error"));
  try {
    await mutate(`mutation($input: ChannelInput!) { createChannel(input: $input) { id } }`, { input });
    $("#channel-status").textContent = `Added the channel "${input.name}".`;
    // Nothing typed stays in the form: secrets least of all.
    $("#channel-form").reset();
    sync();
    await showNotifications();
  } catch (error) {
    if (!(error instanceof Cancelled)) showFieldError(error, fields, $("#channel-form-error"));
  }
}

/** Shows the fields of the chosen kind only. */
function sync() {
  const kind = $("#channel-kind").value;
  for (const field of document.querySelectorAll("#channel-form [data-kinds]")) {
    field.hidden = !field.dataset.kinds.split(" ").includes(kind);
  }
}

export function setupNotifications() {
  $("#channel-kind").addEventListener("change", sync);
  $("#channel-form").addEventListener("submit", addChannel);
  $("#notify-token").addEventListener("click", showNotifications);
  $("#deliveries-more").addEventListener("click", () =>
    loadDeliveries({ append: true }).catch((e) => needToken(e)));
  $("#deliveries-status").addEventListener("change", () => loadDeliveries().catch((e) => needToken(e)));
  sync();
}
