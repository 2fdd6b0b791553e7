// Target states, incidents, tags and maintenance windows (issue #13) in a real browser against
// the real stack (see stack.mjs): a site that goes down and recovers, followed live in the list's
// badge, on the Incidents page and on its target's page; tags and thresholds edited there and
// the list's filters; maintenance windows added and removed through their page. The tests run
// in order on one page, with the default thresholds (3 failures before DOWN, 2 passes before UP).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Stack, TOKEN, until } from "./stack.mjs";

let stack;
let page;
let flaky; // { id, url } of the target whose site goes down and recovers
let other; // { id, url } of a target that stays up

before(async () => {
  stack = await Stack.start();
  page = await stack.page();
});

after(async () => {
  await stack?.stop();
});

const row = (url) => page.locator("#targets tbody tr", { hasText: url });
const rowState = (url) => row(url).getAttribute("data-state");

/** Waits until `url`'s row shows `state` (its badge's class and word). */
async function rowShows(url, state, label) {
  await until(`${url} shown ${state}`, async () => (await rowState(url)) === state);
  assert.equal(await row(url).locator(".state-cell .badge").innerText(), label);
}

test("a failing site goes PENDING, then DOWN in the list's badge, live", async () => {
  flaky = { url: `${stack.siteUrl}/ok?flaky` };
  await page.getByLabel("URL", { exact: true }).fill(flaky.url);
  await page.getByRole("button", { name: "Add target" }).click();
  await page.getByRole("dialog", { name: "API token" }).waitFor();
  await page.getByRole("textbox", { name: "Token", exact: true }).fill(TOKEN);
  await page.getByRole("button", { name: "Save token" }).click();
  await rowShows(flaky.url, "up", "Up");
  flaky.id = await row(flaky.url).getAttribute("data-id");
  // How long it has been up, with the exact time on hover.
  const since = row(flaky.url).locator(".state-cell time");
  assert.match(await since.innerText(), /^for \d+ s$/);
  assert.match(await since.getAttribute("title"), /^since /);

  await page.evaluate(() => {
    window.notReloaded = true;
  });
  stack.failing.add("/ok?flaky");
  await rowShows(flaky.url, "pending", "Pending");
  await stack.screenshot(page, "s01-list-pending");
  await rowShows(flaky.url, "down", "Down");
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  const { target } = await stack.query(`{ target(id: "${flaky.id}") { state } }`);
  assert.equal(target.state, "DOWN");
  await stack.screenshot(page, "s02-list-down");
});

test("the Incidents page shows the incident open, then resolved with its duration", async () => {
  await page.getByRole("link", { name: "Incidents", exact: true }).click();
  const open = page.locator("#incidents-open tbody tr", { hasText: flaky.url });
  await open.waitFor();
  assert.equal(await open.locator(".cause").innerText(), "status 503");
  assert.match(await open.locator(".duration").innerText(), /^\d+ (s|min) so far$/);
  assert.equal(await page.getByRole("link", { name: "Incidents", exact: true }).getAttribute("aria-current"), "page");
  await stack.screenshot(page, "s03-incidents-open");

  // The site recovers: two passing results resolve the incident, and the page follows live.
  stack.failing.delete("/ok?flaky");
  const resolved = page.locator("#incidents-history tbody tr", { hasText: flaky.url });
  await resolved.waitFor({ timeout: 30_000 });
  await open.waitFor({ state: "detached" });
  await page.getByText("No open incidents").waitFor();
  const { incidents } = await stack.query(
    `{ incidents(targetId: "${flaky.id}") { nodes { open cause durationSeconds resolvedAt } } }`,
  );
  assert.equal(incidents.nodes.length, 1);
  const [incident] = incidents.nodes;
  assert.equal(incident.open, false);
  // The same duration as the API's, in the page's words (seconds under a minute, then minutes).
  const seconds = incident.durationSeconds;
  const words = seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min`;
  assert.equal(await resolved.locator(".duration").innerText(), words);
  assert.equal(await resolved.locator(".resolved time").getAttribute("datetime"), incident.resolvedAt);
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  await stack.screenshot(page, "s04-incidents-resolved");

  const phone = await stack.page({ phone: true });
  await phone.goto(`${stack.url}#/incidents`);
  await phone.locator("#incidents-history tbody tr", { hasText: flaky.url }).waitFor();
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true,
    "the Incidents page scrolls sideways");
  await stack.screenshot(phone, "s05-incidents-phone");
  assert.deepEqual(phone.problems, [], "console errors or CSP violations");
  await phone.context().close();
});

test("a target's page: state, thresholds, incident timeline; tags and thresholds edited there", async () => {
  await page.goto(`${stack.url}#/targets/${flaky.id}`);
  await page.getByRole("heading", { name: flaky.url }).waitFor();
  await page.locator("#target-meta .badge.up", { hasText: "Up" }).waitFor({ timeout: 30_000 });
  const rules = page.locator("#target-rules-list");
  assert.match(await rules.innerText(), /Down after\s+3 failing results in a row \(the default\)/);
  assert.match(await rules.innerText(), /Tags\s+none/);
  // The incident is a bar over the chart's period, and listed with its duration.
  await page.locator("#incident-strip .bar").first().waitFor();
  assert.equal(await page.locator("#incident-strip .bar").count(), 1);
  // An incident of seconds on a 24 h strip: a thin bar at its right end, inside the strip.
  const strip = await page.locator("#incident-strip").boundingBox();
  const bar = await page.locator("#incident-strip .bar").boundingBox();
  assert.ok(bar.width >= 2 && bar.x > strip.x + strip.width * 0.9 && bar.x + bar.width <= strip.x + strip.width,
    `bar ${JSON.stringify(bar)} in strip ${JSON.stringify(strip)}`);
  const item = page.locator("#incident-list li");
  await item.getByText("Resolved").waitFor();
  assert.match(await item.innerText(), /status 503/);

  // A bad tag is refused with the API's message beside the field; nothing changes.
  await page.getByRole("button", { name: "Edit tags and thresholds" }).click();
  const form = page.locator("#rules-form");
  await form.getByLabel("Tags").fill("env:prod Team");
  await form.getByLabel("Down after (failing results)").fill("5");
  await form.getByRole("button", { name: "Save tags and thresholds" }).click();
  await form.locator("#rules-tags-error").getByText(/^tags: /).waitFor();
  assert.equal(await form.getByLabel("Tags").getAttribute("aria-invalid"), "true");
  await stack.screenshot(page, "s06-target-bad-tag");

  await form.getByLabel("Tags").fill("env:prod, team:payments");
  await form.getByRole("button", { name: "Save tags and thresholds" }).click();
  await page.getByRole("status").getByText("Saved.").waitFor();
  await until("the saved rules shown", async () =>
    /Down after\s+5 failing results in a row\n/.test(await rules.innerText()));
  assert.deepEqual(await rules.locator(".tag").allInnerTexts(), ["env:prod", "team:payments"]);
  const { target } = await stack.query(
    `{ target(id: "${flaky.id}") { tags thresholds { ownFailuresBeforeDown ownSuccessesBeforeUp } } }`,
  );
  assert.deepEqual(target, {
    tags: ["env:prod", "team:payments"],
    thresholds: { ownFailuresBeforeDown: 5, ownSuccessesBeforeUp: null },
  });
  await stack.screenshot(page, "s07-target-page");
});

test("tags show in the list; the tag filter asks the API, the state filter narrows the page", async () => {
  const url = `${stack.siteUrl}/ok?other`;
  const { addTarget } = await stack.query(
    `mutation($url: String!) { addTarget(url: $url, frequency: 1, tags: ["env:staging"]) { id } }`,
    { url },
    { auth: true },
  );
  other = { id: addTarget.id, url };
  await page.getByRole("link", { name: "← All targets" }).click();
  await rowShows(other.url, "up", "Up");
  assert.deepEqual(await row(flaky.url).locator(".tag").allInnerTexts(), ["env:prod", "team:payments"]);

  const shown = () => page.locator("#targets tbody tr:not([hidden]) td.url a").allInnerTexts();
  await page.getByLabel("Tag", { exact: true }).fill("env:prod");
  await until("only the env:prod target", async () => (await shown()).join() === flaky.url);
  await page.getByLabel("Tag", { exact: true }).fill("env:*");
  await until("both env targets", async () => (await shown()).length === 2);
  // A bad filter: the API's message beside the field.
  await page.getByLabel("Tag", { exact: true }).fill("env:*:x");
  await page.locator("#filter-tag-error").getByText(/^tag: /).waitFor();
  // A tag in a row filters by it.
  await row(flaky.url).getByRole("button", { name: "Show targets tagged team:payments" }).click();
  await until("only the team:payments target", async () => (await shown()).join() === flaky.url);
  assert.equal(await page.getByLabel("Tag", { exact: true }).inputValue(), "team:payments");
  assert.equal(await page.locator("#filter-tag-error").innerText(), "");
  await stack.screenshot(page, "s08-list-tag-filter");

  await page.getByLabel("Tag", { exact: true }).fill("");
  await until("both targets", async () => (await shown()).length === 2);
  await page.getByLabel(/^State/).selectOption("DOWN");
  await until("no target down", async () => (await shown()).length === 0);
  // Filtered by the server: no row, and the list says why.
  await page.locator("#targets-state").getByText("No targets match this filter.").waitFor();
  await page.getByLabel(/^State/).selectOption("UP");
  await until("both targets up", async () => (await shown()).length === 2);
  await page.getByLabel(/^State/).selectOption("");
});

test("maintenance windows: a bad cron refused beside its field; added, listed, removed", async () => {
  await page.getByRole("link", { name: "Maintenance", exact: true }).click();
  await page.getByText("No maintenance windows.").waitFor();
  const form = page.locator("#window-form");
  await form.getByLabel("Name").fill("Sunday deploys");
  await form.getByLabel("Recurring").check();
  await form.getByLabel("Cron").fill("61 2 * * SUN");
  await form.getByLabel("Time zone").fill("Europe/Berlin");
  await form.getByLabel("Lasts (minutes)").fill("90");
  await form.getByLabel("Tagged targets").check();
  await form.getByLabel("Tag filters").fill("env:prod");
  await form.getByRole("button", { name: "Add window" }).click();
  await form.locator("#window-cron-error").getByText(/^cron: /).waitFor();
  assert.equal(await form.getByLabel("Cron").getAttribute("aria-invalid"), "true");
  assert.deepEqual((await stack.query("{ maintenanceWindows { id } }")).maintenanceWindows, []);
  await stack.screenshot(page, "s09-maintenance-bad-cron");

  await form.getByLabel("Cron").fill("30 2 * * SUN");
  await form.getByRole("button", { name: "Add window" }).click();
  const sunday = page.locator("#windows li.window", { hasText: "Sunday deploys" });
  await sunday.waitFor();
  assert.equal(await form.locator("#window-cron-error").innerText(), "");
  const text = await sunday.innerText();
  assert.match(text, /Every Sunday at 02:30 \(Europe\/Berlin\), for 1 h 30 min each time · cron 30 2 \* \* SUN/);
  assert.match(text, /Targets tagged env:prod/);
  const { maintenanceWindows } = await stack.query(
    "{ maintenanceWindows { openNow occurrences(first: 3) { start } } }");
  const starts = maintenanceWindows[0].occurrences.map((o) => o.start);
  assert.equal(starts.length, 3);
  assert.deepEqual(await sunday.locator(".occurrences time:first-child").evaluateAll(
    (nodes) => nodes.map((n) => n.getAttribute("datetime"))), starts);
  // Open now only when it is (on a Sunday between 02:30 and 04:00 in Berlin).
  assert.equal(await sunday.getByText("Open now").count(), maintenanceWindows[0].openNow ? 1 : 0);

  // A one-off window open now, for one target: that target shows Maintenance in the list.
  await form.getByLabel("Name").fill("Database move");
  await form.getByLabel("Once").check();
  const [from, until_] = await page.evaluate(() => {
    // datetime-local takes the browser's local time, to the minute.
    const local = (ms) => {
      const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
      return d.toISOString().slice(0, 16);
    };
    return [local(Date.now() - 60_000), local(Date.now() + 3_600_000)];
  });
  await form.getByLabel("From").fill(from);
  await form.getByLabel("Until").fill(until_);
  await form.getByLabel("Some targets").check();
  await form.getByLabel("Targets", { exact: true }).selectOption(other.id);
  await form.getByRole("button", { name: "Add window" }).click();
  const move = page.locator("#windows li.window", { hasText: "Database move" });
  await move.getByText("Open now").waitFor();
  assert.match(await move.innerText(), /Once, from .+ to .+ \(1 h( 1 min)?\)/);
  assert.match(await move.innerText(), new RegExp(`Target ${other.url.replace(/[.?]/g, "\\$&")}`));
  await stack.screenshot(page, "s10-maintenance");

  await page.getByRole("link", { name: "Targets", exact: true }).click();
  await rowShows(other.url, "maintenance", "Maintenance");
  await stack.screenshot(page, "s11-list-maintenance");

  await page.getByRole("link", { name: "Maintenance", exact: true }).click();
  const asked = [];
  page.on("dialog", (dialog) => {
    asked.push(dialog.message());
    dialog.accept();
  });
  await move.getByRole("button", { name: "Remove window Database move" }).click();
  await move.waitFor({ state: "detached" });
  await sunday.getByRole("button", { name: "Remove window Sunday deploys" }).click();
  await page.getByText("No maintenance windows.").waitFor();
  assert.deepEqual(asked, [
    'Remove the maintenance window "Database move"?',
    'Remove the maintenance window "Sunday deploys"?',
  ]);
  assert.deepEqual((await stack.query("{ maintenanceWindows { id } }")).maintenanceWindows, []);
});

test("no console errors or CSP violations on any of these pages", () => {
  assert.deepEqual(page.problems, []);
});
