// The dashboard's checks (issue #12) in a real browser against the real stack (see stack.mjs):
// the assertions editor of the add and edit forms, errors beside the entry they name, stored
// header names without their values, and a target's page with failed assertions (expected vs
// found), the phase chart and a degraded outcome. The tests run in order on one page.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Stack, TOKEN, until } from "./stack.mjs";

let stack;
let page;

before(async () => {
  stack = await Stack.start();
  page = await stack.page();
});

after(async () => {
  await stack?.stop();
});

const SECRET = "Bearer s3cret-ui-value";
const CHECK = `check { assertions { source property comparison value } degradedAfterMs method headerNames }`;

/** Adds a target straight through the API, with the token. */
async function addThroughApi(url, check) {
  const data = await stack.query(
    `mutation($url: String!, $check: CheckInput) { addTarget(url: $url, frequency: 1, check: $check) { id } }`,
    { url, check },
    { auth: true },
  );
  return data.addTarget.id;
}

const assertionRow = (p, n) => p.locator("#add-check .row.assertion").nth(n - 1);

/** Opens the add form's check and fills assertion rows: [source, property, comparison, value]. */
async function fillAssertions(p, rows) {
  const box = p.locator("#add-check-box");
  if (!(await box.evaluate((d) => d.open))) await box.locator("summary").click();
  for (const [i, [source, property, comparison, value]] of rows.entries()) {
    const n = i + 1;
    await p.getByRole("button", { name: "Add assertion" }).click();
    await p.getByLabel(`Assertion ${n} source`).selectOption(source);
    if (property != null) await p.getByLabel(`Assertion ${n} property`).fill(property);
    await p.getByLabel(`Assertion ${n} comparison`).selectOption(comparison);
    if (value != null) await p.getByLabel(`Assertion ${n} value`).fill(value);
  }
}

test("a target with two assertions is added through the form and comes up", async () => {
  const url = `${stack.siteUrl}/health`;
  await page.getByLabel("URL", { exact: true }).fill(url);
  await fillAssertions(page, [
    ["STATUS", null, "IN_RANGE", "200-299"],
    ["BODY_JSON", "$.status", "EQUALS", "UP"],
  ]);
  // Only the comparisons that make sense for the source are offered, and no value for IS_EMPTY.
  const offered = await page.getByLabel("Assertion 1 comparison").locator("option").allTextContents();
  assert.deepEqual(offered, ["equals", "does not equal", "less than", "greater than", "in range"]);
  assert.equal(await page.getByLabel("Assertion 1 property").isVisible(), false);
  await stack.screenshot(page, "c01-add-form-assertions");

  await page.getByRole("button", { name: "Add target" }).click();
  await page.getByRole("dialog", { name: "API token" }).waitFor();
  await page.getByRole("textbox", { name: "Token", exact: true }).fill(TOKEN);
  await page.getByRole("button", { name: "Save token" }).click();

  const row = page.locator("#targets tbody tr", { hasText: url });
  await row.locator(".badge", { hasText: "Up" }).waitFor({ timeout: 30_000 });
  const { targets } = await stack.query(`{ targets { nodes { url ${CHECK} } } }`);
  assert.deepEqual(targets.nodes, [{
    url,
    check: {
      assertions: [
        { source: "STATUS", property: null, comparison: "IN_RANGE", value: "200-299" },
        { source: "BODY_JSON", property: "$.status", comparison: "EQUALS", value: "UP" },
      ],
      degradedAfterMs: null,
      method: "GET",
      headerNames: [],
    },
  }]);
  // The form is back to the default check for the next target.
  assert.equal(await page.locator("#add-check .row.assertion").count(), 0);
});

test("an invalid JSONPath shows its message beside its row; nothing is added or lost", async () => {
  const url = `${stack.siteUrl}/health?bad-path`;
  await page.getByLabel("URL", { exact: true }).fill(url);
  await fillAssertions(page, [
    ["STATUS", null, "EQUALS", "200"],
    ["BODY_JSON", "$[", "NOT_EMPTY", null],
  ]);
  assert.equal(await page.getByLabel("Assertion 2 value").isVisible(), false, "NOT_EMPTY takes no value");
  await page.getByRole("button", { name: "Add target" }).click();

  const error = assertionRow(page, 2).locator(".row-error");
  await error.getByText("is not a JSONPath").waitFor();
  assert.match(await error.innerText(), /^"\$\[" is not a JSONPath/);
  assert.equal(await assertionRow(page, 1).locator(".row-error").innerText(), "");
  assert.equal(await page.getByLabel("Assertion 2 property").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#add-url-error").innerText(), "", "not shown at the top");
  // Nothing is lost from the form, and nothing was added.
  assert.equal(await page.getByLabel("URL", { exact: true }).inputValue(), url);
  assert.equal(await page.getByLabel("Assertion 2 property").inputValue(), "$[");
  assert.equal(await page.getByLabel("Assertion 1 value").inputValue(), "200");
  const { targets } = await stack.query("{ targets { nodes { url } } }");
  assert.equal(targets.nodes.length, 1);
  await stack.screenshot(page, "c02-invalid-jsonpath");

  // Removing the bad row and submitting again adds the target.
  await page.getByRole("button", { name: "Remove assertion 2" }).click();
  await page.getByRole("button", { name: "Add target" }).click();
  await page.locator("#targets tbody tr", { hasText: url }).waitFor();
});

let failing; // { id, url } of a target whose assertion fails

test("a failing assertion shows expected vs found, and the phase chart renders", async () => {
  const url = `${stack.siteUrl}/health?down`;
  const id = await addThroughApi(url, {
    assertions: [
      { source: "STATUS", comparison: "EQUALS", value: "200" },
      { source: "BODY_JSON", property: "$.status", comparison: "EQUALS", value: "DOWN" },
    ],
    headers: [{ name: "Authorization", value: SECRET }],
  });
  failing = { id, url };
  await page.goto(`${stack.url}#/targets/${id}`);
  await page.getByRole("heading", { name: url }).waitFor();
  // Results come live; the first failure shows which assertion failed.
  const failure = page.locator("#failures .assertion-failure").first();
  await failure.waitFor({ timeout: 30_000 });
  assert.match(await failure.locator(".assertion").innerText(), /Body JSON \$\.status equals DOWN/);
  assert.match(await failure.locator(".expected").innerText(), /DOWN/);
  assert.match(await failure.locator(".found").innerText(), /UP/);
  assert.match(await page.locator("#target-meta .badge.down").innerText(), /Down/);

  // Reloaded, the page charts every phase of the stored results and their percentiles.
  await page.reload();
  await page.locator("#phase-chart canvas").waitFor();
  const legend = await page.locator("#phase-chart .u-legend .u-label").allTextContents();
  assert.deepEqual(legend, ["Time", "DNS", "Connect", "TLS", "Time to first byte", "Transfer"]);
  await until("the phase caption", async () =>
    /\d+ results? with a response/.test(await page.locator("#phase-chart-caption").innerText()));
  const ttfb = page.locator('#phase-stats tr[data-phase="TTFB"] td').first();
  assert.match(await ttfb.innerText(), /^\d+ ms$/);
  // Plain HTTP: no TLS phase and no certificate.
  assert.equal(await page.locator('#phase-stats tr[data-phase="TLS"] td').first().innerText(), "–");
  assert.equal(await page.locator("#target-cert").isVisible(), false);
  assert.equal(await page.locator("#failures .assertion-failure").first().isVisible(), true);
  await stack.screenshot(page, "c03-target-page");
});

test("editing shows stored header names without values, keeps the value, errors beside the row", async () => {
  await page.getByRole("button", { name: "Edit target and check" }).click();
  const form = page.locator("#edit-form");
  await form.waitFor();
  assert.equal(await form.getByLabel("Header 1 name").inputValue(), "Authorization");
  assert.equal(await form.getByLabel("Header 1 value").inputValue(), "");
  assert.match(await form.getByLabel("Header 1 value").getAttribute("placeholder"), /stored value kept/);
  assert.equal((await page.content()).includes(SECRET), false, "the value is nowhere on the page");
  assert.equal(await form.getByLabel("Assertion 2 property").inputValue(), "$.status");

  // A bad header name is shown beside its row; the rest of the form stays.
  await form.getByRole("button", { name: "Add header" }).click();
  await form.getByLabel("Header 2 name").fill("X Token");
  await form.getByLabel("Header 2 value").fill("v");
  await form.getByLabel("Assertion 2 value").fill("UP");
  await form.getByRole("button", { name: "Save changes" }).click();
  const error = form.locator(".row.header").nth(1).locator(".row-error");
  await error.getByText("a name is 1 to").waitFor();
  assert.equal(await form.locator(".row.header").first().locator(".row-error").innerText(), "");
  assert.equal(await form.getByLabel("Assertion 2 value").inputValue(), "UP");
  await stack.screenshot(page, "c04-edit-header-error");

  // Without it, the save keeps the stored value ({name, value: null}): the probe still sends it.
  await form.getByRole("button", { name: "Remove header 2" }).click();
  await form.getByLabel("Degraded after (ms)").fill("5000");
  const saved = Date.now();
  await form.getByRole("button", { name: "Save changes" }).click();
  await page.getByRole("status").getByText("Saved.").waitFor();
  const { target } = await stack.query(`{ target(id: "${failing.id}") { ${CHECK} } }`);
  assert.equal(target.check.degradedAfterMs, 5000);
  assert.deepEqual(target.check.headerNames, ["Authorization"]);
  assert.equal(target.check.assertions[1].value, "UP");
  // The failures of before the change no longer claim the changed assertion as theirs.
  await until("the failure list redrawn", async () =>
    (await page.locator("#failures .assertion-failure .assertion").first().innerText()) === "Assertion 2 (changed since)");
  await until("a probe with the stored header after the save", async () =>
    stack.requests.some((r) => r.url === "/health?down" && r.at > saved && r.authorization === SECRET));
  // The target now passes: its page says Up once a new result arrives.
  await page.locator("#target-meta .badge.up").waitFor({ timeout: 30_000 });
});

test("a slow passing response is DEGRADED, shown apart from up in the list and the stats", async () => {
  const url = `${stack.siteUrl}/slow`;
  const id = await addThroughApi(url, { degradedAfterMs: 100 });
  await page.goto(stack.url);
  const row = page.locator("#targets tbody tr", { hasText: url });
  await row.locator(".badge.degraded", { hasText: "Degraded" }).waitFor({ timeout: 30_000 });
  assert.equal(await row.getAttribute("data-state"), "degraded");
  assert.match(await row.locator(".last").innerText(), /HTTP 200, slow/);
  await stack.screenshot(page, "c05-list-degraded");
  await page.goto(`${stack.url}#/targets/${id}`);
  await until("the degraded count", async () => {
    const text = await page.locator("#target-stats").innerText();
    return /Degraded\s+[1-9]/.test(text);
  });
});

test("an HTTPS target's page shows its certificate, the TLS phase and the expiry assertion", async () => {
  const url = `${stack.tlsSiteUrl}/health?tls`;
  const id = await addThroughApi(url, {
    tlsVerify: false,
    assertions: [{ source: "CERT_EXPIRES_IN_DAYS", comparison: "GREATER_THAN", value: "14" }],
  });
  await page.goto(`${stack.url}#/targets/${id}`);
  await page.getByRole("heading", { name: url }).waitFor();
  const cert = page.locator("#target-cert");
  await cert.waitFor({ timeout: 30_000 });
  const text = await cert.innerText();
  assert.match(text, /in (9|10) days/);
  assert.match(text, /O=Pingpipe UI test/);
  assert.match(text, /TLSv1\.[23]/);
  await page.locator("#failures .assertion-failure").first().waitFor();
  assert.match(await page.locator("#failures .assertion-failure .assertion").first().innerText(),
    /Certificate expires in \(days\) greater than 14/);
  // Reloaded, the TLS phase has percentiles.
  await page.reload();
  await page.locator("#phase-chart canvas").waitFor();
  await until("the TLS phase's p50", async () =>
    /^\d+ ms$/.test(await page.locator('#phase-stats tr[data-phase="TLS"] td').first().innerText()));
  await stack.screenshot(page, "c06-target-https-certificate");
});

test("at phone width the check editor and a target's page fit the screen", async () => {
  const phone = await stack.page({ phone: true });
  const fits = () => phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  await fillAssertions(phone, [["BODY_JSON", "$.checks[?@.name=='db'].ok", "EQUALS", "true"]]);
  await phone.getByRole("button", { name: "Add header" }).click();
  assert.equal(await fits(), true, "the add form scrolls sideways");
  await stack.screenshot(phone, "c07-phone-add-form");
  await phone.goto(`${stack.url}#/targets/${failing.id}`);
  await phone.locator("#phase-chart canvas").waitFor();
  await phone.locator("#failures .assertion-failure").first().waitFor();
  assert.equal(await fits(), true, "the target's page scrolls sideways");
  await stack.screenshot(phone, "c08-phone-target");
  await phone.context().close();
});
