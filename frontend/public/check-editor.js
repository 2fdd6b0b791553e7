// The check editor of the target forms (add and edit): assertions, degraded-after, method,
// request headers, body, TLS verification and CA bundle. It reads back a `CheckInput` and puts
// a `BAD_USER_INPUT` message beside the row or field it names. All text goes in through
// textContent or value, never as HTML.

import { el } from "./ui.js";

export const SOURCES = ["STATUS", "HEADER", "BODY_TEXT", "BODY_JSON", "RESPONSE_TIME_MS", "CERT_EXPIRES_IN_DAYS"];
export const COMPARISONS = [
  "EQUALS", "NOT_EQUALS", "LESS_THAN", "GREATER_THAN", "CONTAINS", "NOT_CONTAINS", "MATCHES",
  "IN_RANGE", "IS_EMPTY", "NOT_EMPTY",
];
const NUMERIC = ["EQUALS", "NOT_EQUALS", "LESS_THAN", "GREATER_THAN", "IN_RANGE"];
const TEXTUAL = ["EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "MATCHES", "IS_EMPTY", "NOT_EMPTY"];

/** The comparisons that make sense for a source: entity/src/assertion.rs `allowed()`. */
export function allowed(source) {
  switch (source) {
    case "STATUS":
    case "RESPONSE_TIME_MS":
    case "CERT_EXPIRES_IN_DAYS":
      return NUMERIC;
    case "HEADER":
    case "BODY_TEXT":
      return TEXTUAL;
    default: // BODY_JSON
      return COMPARISONS.filter((c) => c !== "IN_RANGE");
  }
}

const LABELS = {
  STATUS: "Status",
  HEADER: "Header",
  BODY_TEXT: "Body text",
  BODY_JSON: "Body JSON",
  RESPONSE_TIME_MS: "Response time (ms)",
  CERT_EXPIRES_IN_DAYS: "Certificate expires in (days)",
  EQUALS: "equals",
  NOT_EQUALS: "does not equal",
  LESS_THAN: "less than",
  GREATER_THAN: "greater than",
  CONTAINS: "contains",
  NOT_CONTAINS: "does not contain",
  MATCHES: "matches (regex)",
  IN_RANGE: "in range",
  IS_EMPTY: "is empty",
  NOT_EMPTY: "is not empty",
};
const VALUE_HINTS = {
  STATUS: "200",
  RESPONSE_TIME_MS: "500",
  CERT_EXPIRES_IN_DAYS: "14",
  IN_RANGE: "200-399",
};
const takesProperty = (source) => source === "HEADER" || source === "BODY_JSON";
const takesValue = (comparison) => comparison !== "IS_EMPTY" && comparison !== "NOT_EMPTY";

/** "BODY_JSON $.status EQUALS UP", as a person reads an assertion. */
export function describeAssertion(a) {
  return [LABELS[a.source] ?? a.source, a.property, LABELS[a.comparison] ?? a.comparison, a.value]
    .filter((part) => part != null && part !== "")
    .join(" ");
}

let nextId = 0;

function options(select, values, chosen) {
  select.replaceChildren(...values.map((v) => el("option", { value: v, text: LABELS[v] ?? v })));
  select.value = values.includes(chosen) ? chosen : values[0];
}

/** A labelled field: label, control, and an error paragraph the control is described by. */
function field(label, control, { hint } = {}) {
  const id = `check-${++nextId}`;
  control.id = id;
  const error = el("p", { id: `${id}-error`, class: "field-error", role: "alert" });
  control.setAttribute("aria-describedby", `${id}-error`);
  return {
    node: el("div", { class: "field" }, el("label", { for: id, text: label }), control,
      hint ? el("p", { class: "hint", text: hint }) : null, error),
    control,
    error,
  };
}

function setError(control, errorNode, message) {
  errorNode.textContent = message;
  if (message) control?.setAttribute("aria-invalid", "true");
  else control?.removeAttribute("aria-invalid");
}

/**
 * Builds the editor into `container`, filled from `check` (a `Check` as the API returns it) or
 * the default check. Returns { read, showError, clearErrors, reset }.
 */
export function checkEditor(container, check = null) {
  const assertionRows = el("ol", { class: "rows assertions" });
  const headerRows = el("ol", { class: "rows headers" });
  const assertionsError = el("p", { class: "field-error", role: "alert" });
  const headersError = el("p", { class: "field-error", role: "alert" });
  const degraded = field("Degraded after (ms)",
    el("input", { type: "number", min: "1", step: "1", inputmode: "numeric", placeholder: "never" }));
  const method = field("Method", el("select", {}));
  options(method.control, ["GET", "HEAD", "POST"], "GET");
  const body = field("Request body", el("textarea", { rows: "3", spellcheck: "false" }));
  const tlsVerify = el("input", { type: "checkbox", checked: true });
  const tlsId = `check-${++nextId}`;
  tlsVerify.id = tlsId;
  const caBundle = field("CA bundle (PEM)", el("textarea", {
    rows: "3", spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----",
  }), { hint: "Trusted instead of the system's roots; empty: the system's roots." });

  const renumber = () => {
    [...assertionRows.children].forEach((row, i) => row.renumber(i));
    [...headerRows.children].forEach((row, i) => row.renumber(i));
  };

  function assertionRow(a = { source: "STATUS", comparison: "EQUALS", value: "200" }) {
    const source = el("select", { class: "source" });
    options(source, SOURCES, a.source);
    const property = el("input", { class: "property", type: "text", autocomplete: "off", spellcheck: "false" });
    property.value = a.property ?? "";
    const comparison = el("select", { class: "comparison" });
    const value = el("input", { class: "value", type: "text", autocomplete: "off", spellcheck: "false" });
    value.value = a.value ?? "";
    const error = el("p", { class: "field-error row-error", role: "alert" });
    const remove = el("button", { type: "button", class: "danger", text: "Remove" });
    const row = el("li", { class: "row assertion" }, source, property, comparison, value, remove, error);
    const sync = () => {
      options(comparison, allowed(source.value), comparison.value || a.comparison);
      property.hidden = !takesProperty(source.value);
      property.placeholder = source.value === "HEADER" ? "header name, e.g. Content-Type" : "JSONPath, e.g. $.status";
      property.required = !property.hidden;
      value.hidden = !takesValue(comparison.value);
      value.placeholder = VALUE_HINTS[comparison.value] ?? VALUE_HINTS[source.value] ?? "value";
    };
    source.addEventListener("change", sync);
    comparison.addEventListener("change", sync);
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling ?? row.previousElementSibling;
      row.remove();
      renumber();
      (next?.querySelector("select") ?? addAssertion).focus();
    });
    row.renumber = (i) => {
      const n = `Assertion ${i + 1}`;
      source.setAttribute("aria-label", `${n} source`);
      property.setAttribute("aria-label", `${n} property`);
      comparison.setAttribute("aria-label", `${n} comparison`);
      value.setAttribute("aria-label", `${n} value`);
      remove.setAttribute("aria-label", `Remove assertion ${i + 1}`);
      error.id = `${container.id}-assertion-${i}-error`;
      for (const c of [source, property, comparison, value]) c.setAttribute("aria-describedby", error.id);
    };
    row.read = () => ({
      source: source.value,
      property: property.hidden ? null : property.value,
      comparison: comparison.value,
      value: value.hidden ? null : value.value,
    });
    row.showError = (message) => {
      error.textContent = message;
      row.classList.toggle("invalid", Boolean(message));
      for (const c of [source, property, comparison, value]) {
        if (message) c.setAttribute("aria-invalid", "true");
        else c.removeAttribute("aria-invalid");
      }
    };
    sync();
    return row;
  }

  function headerRow(h = { name: "", stored: false }) {
    const name = el("input", { class: "name", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "Authorization" });
    name.value = h.name;
    // Stored values are never returned by the API: an empty field keeps the stored one.
    const value = el("input", {
      class: "value", type: "password", autocomplete: "off",
      placeholder: h.stored ? "stored value kept (type to replace)" : "value",
    });
    const error = el("p", { class: "field-error row-error", role: "alert" });
    const remove = el("button", { type: "button", class: "danger", text: "Remove" });
    const row = el("li", { class: "row header", "data-stored": h.stored ? "true" : null }, name, value, remove, error);
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling ?? row.previousElementSibling;
      row.remove();
      renumber();
      (next?.querySelector("input") ?? addHeader).focus();
    });
    row.renumber = (i) => {
      name.setAttribute("aria-label", `Header ${i + 1} name`);
      value.setAttribute("aria-label", `Header ${i + 1} value`);
      remove.setAttribute("aria-label", `Remove header ${i + 1}`);
      error.id = `${container.id}-header-${i}-error`;
      name.setAttribute("aria-describedby", error.id);
      value.setAttribute("aria-describedby", error.id);
    };
    row.read = () => ({
      name: name.value.trim(),
      value: h.stored && value.value === "" ? null : value.value,
    });
    row.showError = (message) => {
      error.textContent = message;
      row.classList.toggle("invalid", Boolean(message));
      setError(name, error, message);
    };
    return row;
  }

  const addAssertion = el("button", {
    type: "button", text: "Add assertion",
    onclick: () => {
      const row = assertionRow();
      assertionRows.append(row);
      renumber();
      row.querySelector("select").focus();
    },
  });
  const addHeader = el("button", {
    type: "button", text: "Add header",
    onclick: () => {
      const row = headerRow();
      headerRows.append(row);
      renumber();
      row.querySelector("input").focus();
    },
  });
  const syncMethod = () => {
    body.node.hidden = method.control.value !== "POST";
  };
  method.control.addEventListener("change", syncMethod);

  container.replaceChildren(
    el("fieldset", { class: "assertions-box" },
      el("legend", { text: "Assertions" }),
      el("p", { class: "hint", text: "All must pass for a result to count as up. None: a status from 200 to 399 is up." }),
      assertionRows, assertionsError, addAssertion),
    el("div", { class: "check-grid" },
      degraded.node,
      method.node,
      el("div", { class: "field checkbox" },
        el("label", { for: tlsId }, tlsVerify, " Verify the TLS certificate"))),
    el("fieldset", { class: "headers-box" },
      el("legend", { text: "Request headers" }),
      el("p", { class: "hint", text: "Values are write-only: the API never shows them again." }),
      headerRows, headersError, addHeader),
    body.node,
    caBundle.node,
  );

  function fill(c) {
    assertionRows.replaceChildren(...(c?.assertions ?? []).map((a) => assertionRow(a)));
    headerRows.replaceChildren(...(c?.headerNames ?? []).map((name) => headerRow({ name, stored: true })));
    degraded.control.value = c?.degradedAfterMs ?? "";
    method.control.value = c?.method ?? "GET";
    body.control.value = c?.body ?? "";
    tlsVerify.checked = c?.tlsVerify ?? true;
    caBundle.control.value = c?.caBundle ?? "";
    syncMethod();
    renumber();
  }
  fill(check);

  const plain = [
    [degraded, /^check\.degradedAfterMs: /],
    [body, /^check\.body: /],
    [caBundle, /^check\.caBundle: /],
  ];

  return {
    /** The `CheckInput` the form says; throws a message for a field the page itself can judge. */
    read() {
      const raw = degraded.control.value.trim();
      let degradedAfterMs = null;
      if (raw !== "" || degraded.control.validity.badInput) {
        degradedAfterMs = Number(raw);
        if (!Number.isInteger(degradedAfterMs)) {
          setError(degraded.control, degraded.error, "a whole number of milliseconds");
          degraded.control.focus();
          throw new Error("check.degradedAfterMs");
        }
      }
      const isPost = method.control.value === "POST";
      return {
        assertions: [...assertionRows.children].map((row) => row.read()),
        degradedAfterMs,
        method: method.control.value,
        headers: [...headerRows.children].map((row) => row.read()),
        body: isPost && body.control.value !== "" ? body.control.value : null,
        tlsVerify: tlsVerify.checked,
        caBundle: caBundle.control.value.trim() === "" ? null : caBundle.control.value,
      };
    },

    /**
     * Puts the API's message beside the row or field it names (entries counted from 0) and
     * focuses it; false when the message is not about the check.
     */
    showError(message) {
      let m;
      const rows = (list) => [...list.children];
      if ((m = message.match(/^check\.assertions: assertion (\d+) \([A-Z_ ]+\): (.*)$/s))) {
        const row = rows(assertionRows)[Number(m[1])];
        if (row) {
          row.showError(m[2]);
          (row.querySelector("input.property:not([hidden])") ?? row.querySelector("select")).focus();
          return true;
        }
      }
      if ((m = message.match(/^check\.headers: header (\d+) \((?:"(?:[^"\\]|\\.)*"|[^)]*)\):? ?(.*)$/s))) {
        const row = rows(headerRows)[Number(m[1])];
        if (row) {
          row.showError(m[2]);
          row.querySelector("input").focus();
          return true;
        }
      }
      if (message.startsWith("check.assertions: ")) {
        assertionsError.textContent = message.slice("check.assertions: ".length);
        addAssertion.focus();
        return true;
      }
      if (message.startsWith("check.headers: ")) {
        headersError.textContent = message.slice("check.headers: ".length);
        addHeader.focus();
        return true;
      }
      for (const [f, pattern] of plain) {
        if (pattern.test(message)) {
          setError(f.control, f.error, message.replace(pattern, ""));
          if (f === body) {
            body.node.hidden = false;
          }
          f.control.focus();
          return true;
        }
      }
      if (message.startsWith("check.")) {
        assertionsError.textContent = message;
        return true;
      }
      return false;
    },

    clearErrors() {
      for (const row of [...assertionRows.children, ...headerRows.children]) row.showError("");
      assertionsError.textContent = "";
      headersError.textContent = "";
      for (const [f] of plain) setError(f.control, f.error, "");
    },

    /** Back to `c` (or the default check). */
    reset: fill,
  };
}
