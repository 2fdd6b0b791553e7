// The dashboard in a real browser against the real stack (see stack.mjs). The tests run in
// order and share one stack: they follow one target from an empty list to its chart.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Stack, TOKEN, until } from "./stack.mjs";

let stack;
let page; // the page of a person who has entered the right token
let watched; // the URL that test adds

before(async () => {
  stack = await Stack.start();
});

after(async () => {
  await stack?.stop();
});

/** Submits the add form; the first time the page asks for the token, `token` is entered. */
async function add(p, url, { token, frequency = "1" } = {}) {
  await p.getByLabel("URL", { exact: true }).fill(url);
  await p.getByLabel("Every").selectOption(frequency);
  await p.getByRole("button", { name: "Add target" }).click();
  if (token !== undefined) {
    await p.getByRole("dialog", { name: "API token" }).waitFor();
    await p.getByRole("textbox", { name: "Token", exact: true }).fill(token);
    await p.getByRole("button", { name: "Save token" }).click();
  }
}

test("an empty list says so", async () => {
  page = await stack.page();
  await page.getByText("No targets yet").waitFor();
  await stack.screenshot(page, "01-empty");
});

test("a wrong token gives a clear error and is not kept", async () => {
  const other = await stack.page();
  await add(other, `${stack.siteUrl}/ok?wrong-token`, { token: "not-the-token" });
  const error = other.locator("#add-url-error");
  await error.getByText("The API refused the token").waitFor();
  assert.equal(await other.evaluate(() => localStorage.getItem("pingpipe.apiToken")), null);
  const { targets } = await stack.query("{ targets { nodes { id } } }");
  assert.equal(targets.nodes.length, 0, "nothing was added");
  await stack.screenshot(other, "02-wrong-token");
  await other.context().close();
});

test("a bad URL shows the API's message beside the field", async () => {
  await add(page, "ftp://127.0.0.1/file", { token: TOKEN });
  const error = page.locator("#add-url-error");
  await error.getByText('url must use http or https, not "ftp"').waitFor();
  assert.equal(await page.getByLabel("URL", { exact: true }).getAttribute("aria-invalid"), "true");
  // The token was right, so it is kept for the next change.
  assert.equal(await page.evaluate(() => localStorage.getItem("pingpipe.apiToken")), TOKEN);
  await stack.screenshot(page, "03-bad-url");
});

test("an added target shows its first result live, without a reload", async () => {
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  watched = `${stack.siteUrl}/ok`;
  await add(page, watched); // the token is stored: no dialog this time
  const row = page.locator("#targets tbody tr", { hasText: watched });
  await row.waitFor();
  await row.locator(".badge", { hasText: "Up" }).waitFor({ timeout: 30_000 });
  // The state change and the result arrive on two subscriptions, in either order.
  await row.locator(".last", { hasText: /HTTP 200/ }).waitFor({ timeout: 30_000 });
  assert.match(await row.locator(".last").innerText(), /HTTP 200/);
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  assert.equal(await page.locator("#live").innerText(), "Live");
  await stack.screenshot(page, "04-first-result-live");
});

test("pausing a target shows it paused and stores it", async () => {
  const row = page.locator("#targets tbody tr", { hasText: watched });
  await row.getByRole("button", { name: `Pause ${watched}` }).click();
  await row.locator(".badge", { hasText: "Paused" }).waitFor();
  const { targets } = await stack.query("{ targets { nodes { url paused } } }");
  assert.deepEqual(targets.nodes, [{ url: watched, paused: true }]);
  await stack.screenshot(page, "05-paused");
});

test("a target's page charts its response times", async () => {
  await page.getByRole("link", { name: watched }).click();
  await page.getByRole("heading", { name: watched }).waitFor();
  await page.locator("#target-chart canvas").waitFor();
  // Every stored result is charted (a probe that was in flight at the pause may still arrive,
  // live): the caption's count meets the database's.
  await until("the chart to hold every stored result", async () => {
    const caption = await page.locator("#target-chart-caption").innerText();
    const charted = Number(caption.match(/(\d+) results?\b/)?.[1]);
    const { target } = await stack.query(`{ target(id: "1") { results(first: 500) { nodes { id } } } }`);
    return charted >= 1 && charted === target.results.nodes.length;
  });
  assert.equal(await page.locator("#target-stats").getByText("100.00 %").count(), 1);
  await page.getByRole("button", { name: "7 d" }).click();
  await until("the 7-day range", async () => (await page.getByRole("button", { name: "7 d" }).getAttribute("aria-pressed")) === "true");
  await stack.screenshot(page, "06-chart");
});

test("the per-frequency report lists the results, at phone width too", async () => {
  const phone = await stack.page({ phone: true });
  await phone.goto(`${stack.url}#/reports/1`);
  await phone.locator("#report tbody tr", { hasText: watched }).first().waitFor();
  assert.equal(await phone.getByRole("link", { name: "Every 1 min" }).getAttribute("aria-current"), "page");
  await stack.screenshot(phone, "07-report-phone");
  await phone.context().close();
});

test("after an api restart the page reconnects and results flow again", async () => {
  const live = `${stack.siteUrl}/ok?live`;
  await page.goto(stack.url);
  await add(page, live);
  const row = page.locator("#targets tbody tr", { hasText: live });
  await row.locator(".badge", { hasText: "Up" }).waitFor({ timeout: 30_000 });

  await stack.stopApi();
  await page.locator("#live", { hasText: "Offline" }).waitFor();
  // Asking for data meanwhile says what is wrong.
  await page.getByLabel("Search URLs").fill("?live");
  await page.locator("#targets-state", { hasText: "The API is unreachable" }).waitFor();
  await stack.screenshot(page, "08-api-unreachable");
  await stack.startApi();
  await page.locator("#live", { hasText: "Live" }).waitFor({ timeout: 30_000 });
  // After the reconnect the page reloads its list once; a later result can only come live.
  const seen = await until("the list reloaded", async () => (await row.getAttribute("data-result-id")) || null);
  await until("a new result through the subscription", async () => {
    const now = await row.getAttribute("data-result-id");
    return now && now !== seen;
  });
  await stack.screenshot(page, "09-reconnected");
});

test("removing a target asks first, then removes it", async () => {
  const row = page.locator("#targets tbody tr", { hasText: `${stack.siteUrl}/ok?live` });
  const asked = [];
  page.once("dialog", (dialog) => {
    asked.push(dialog.message());
    dialog.accept();
  });
  await row.getByRole("button", { name: /^Remove / }).click();
  await row.waitFor({ state: "detached" });
  assert.match(asked[0], /Stop watching .*\?live and delete its results\?/);
  const { targets } = await stack.query("{ targets { nodes { url } } }");
  assert.deepEqual(targets.nodes, [{ url: watched }]);
  await stack.screenshot(page, "10-removed");
});

test("GraphiQL works offline from the api's own files: a query, the docs, a mutation, a subscription", async () => {
  const context = await stack.browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Nothing but the api's host is reachable, as if offline: a script from a CDN would fail.
  const foreign = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.host === stack.apiAddr) return route.continue();
    foreign.push(url.href);
    return route.abort();
  });
  // What the page's Content-Security-Policy refuses, on every page load.
  const violations = [];
  await context.exposeFunction("reportViolation", (v) => violations.push(v));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.reportViolation(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const gq = await context.newPage();
  const problems = [];
  gq.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  gq.on("pageerror", (e) => problems.push(e.message));
  gq.on("websocket", (ws) => new URL(ws.url()).host !== stack.apiAddr && foreign.push(ws.url()));
  const graphiql = (query) => gq.goto(`${stack.url}graphql?query=${encodeURIComponent(query)}`);
  const run = () => gq.getByRole("button", { name: /^Execute query/ }).click();
  /** The result pane's JSON, once it shows some for which `check` is true. */
  const answer = (what, check) =>
    until(what, async () => {
      // CodeMirror indents with no-break spaces, which JSON does not take for white space.
      const text = await gq.locator(".result-window").innerText();
      const shown = JSON.parse(text.replaceAll("\u00a0", " "));
      return check(shown) && shown;
    });

  await graphiql("{ frequencies }");
  await run();
  const shown = await answer("the query's answer", (json) => json.data);
  assert.deepEqual(shown, { data: await stack.query("{ frequencies }") });

  // The docs come from introspection.
  await gq.getByRole("button", { name: "Show Documentation Explorer" }).click();
  const docs = gq.locator(".graphiql-doc-explorer");
  await docs.getByText("SubscriptionRoot").waitFor();
  await docs.getByRole("link", { name: "Query", exact: true }).click();
  await docs.getByText("frequencies").first().waitFor();
  // A dialog (it inserts the one inline style the page's policy allows by hash).
  await gq.getByRole("button", { name: "Open settings dialog" }).click();
  await gq.getByRole("dialog").waitFor();
  await stack.screenshot(gq, "11-graphiql-docs-settings");
  await gq.keyboard.press("Escape");
  await gq.getByRole("dialog").waitFor({ state: "detached" });

  // A mutation, with the token in the Headers tab, adds a target; a subscription over
  // /graphql/ws then shows its results as they come.
  const url = `${stack.siteUrl}/ok?graphiql`;
  await graphiql(`mutation { addTarget(url: "${url}", frequency: 1) { id } }`);
  await gq.getByRole("button", { name: "Headers", exact: true }).click();
  await gq.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror").click();
  await gq.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
  await run();
  const added = await answer("the mutation's answer", (json) => json.data || json.errors);
  assert.equal(added.errors, undefined, JSON.stringify(added.errors));
  const id = added.data.addTarget.id;
  await graphiql(`subscription { results(targetId: "${id}") { target { url } httpStatus } }`);
  await run();
  await answer("a result through the subscription", (json) =>
    json.data?.results?.target.url === url && json.data.results.httpStatus === 200,
  );
  await stack.screenshot(gq, "12-graphiql-subscription");
  await gq.getByRole("button", { name: /^Stop query/ }).click();

  assert.deepEqual(violations, [], "Content-Security-Policy violations");
  assert.deepEqual(problems, [], "console errors");
  assert.deepEqual(foreign, [], "requests to another host");
  await context.close();
});
