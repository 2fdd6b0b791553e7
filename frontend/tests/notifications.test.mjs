// Notifications (issue #14) in a real browser against the real stack (see stack.mjs): the page
// asks for the API token before it shows anything; a webhook channel pointing at a loopback
// receiver started here is added (a bad URL first, refused beside its field), tested (the
// receiver's answer shown, refused and then accepted), given a route; the delivery log shows
// the tests. The tests run in order on one page.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { Stack, TOKEN, until } from "./stack.mjs";

let stack;
let page;
let receiver; // the fake webhook receiver: { server, url, requests, status, body }

before(async () => {
  stack = await Stack.start();
  receiver = { requests: [], status: 200, body: "ok" };
  receiver.server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      receiver.requests.push({ url: req.url, headers: req.headers, body });
      res.writeHead(receiver.status, { "Content-Type": "text/plain" });
      res.end(receiver.body);
    });
  });
  await new Promise((r) => receiver.server.listen(0, "127.0.0.1", r));
  receiver.url = `http://127.0.0.1:${receiver.server.address().port}/hook`;
  page = await stack.page();
});

after(async () => {
  receiver?.server.close();
  await stack?.stop();
});

const channel = (name) => page.locator("#channels > li", { has: page.getByRole("heading", { name }) });

test("the Notifications page asks for the token, then shows no channels", async () => {
  await page.getByRole("link", { name: "Notifications", exact: true }).click();
  await page.getByRole("dialog", { name: "API token" }).waitFor();
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByText("Notification settings need the API token.").waitFor();
  assert.equal(await page.locator("#notify-content").isHidden(), true);

  await page.getByRole("button", { name: "Enter the API token" }).click();
  await page.getByRole("textbox", { name: "Token", exact: true }).fill(TOKEN);
  await page.getByRole("button", { name: "Save token" }).click();
  await page.getByText("No channels yet.").waitFor();
  await page.getByText("No deliveries yet.").waitFor();
  assert.equal(
    await page.getByRole("link", { name: "Notifications", exact: true }).getAttribute("aria-current"),
    "page",
  );
});

test("a webhook channel: a bad URL refused beside its field, then added with its secret hidden", async () => {
  const form = page.locator("#channel-form");
  await form.getByLabel("Name").fill("ops hook");
  await form.getByLabel("Kind").selectOption("webhook");
  // Fields of other kinds are not shown.
  assert.equal(await form.getByLabel("Topic").isHidden(), true);
  assert.equal(await form.getByLabel("SMTP server").isHidden(), true);
  await form.getByLabel("Endpoint URL", { exact: true }).fill("ftp://127.0.0.1/hook");
  await form.getByRole("button", { name: "Add channel" }).click();
  await form.locator("#channel-url-error").getByText(/^url: /).waitFor();
  assert.equal(await form.getByLabel("Endpoint URL", { exact: true }).getAttribute("aria-invalid"), "true");
  assert.deepEqual((await stack.query("{ channels { id } }", {}, { auth: true })).channels, []);
  await stack.screenshot(page, "n01-channel-bad-url");

  const key = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWJ5dGVzLTAxMjM0NTY3";
  await form.getByLabel("Endpoint URL", { exact: true }).fill(receiver.url);
  assert.equal(await form.getByLabel("Signing key (secret)").getAttribute("type"), "password");
  await form.getByLabel("Signing key (secret)").fill(key);
  await form.getByRole("button", { name: "Add channel" }).click();
  await page.getByText('Added the channel "ops hook".').waitFor();
  const card = channel("ops hook");
  await card.waitFor();
  assert.equal(await card.locator(".badge.kind").innerText(), "Webhook");
  assert.equal(await card.locator(".where").innerText(), receiver.url);
  assert.match(await card.innerText(), /signingKey set/);
  // Nothing typed stays in the form, and the key is nowhere on the page.
  assert.equal(await form.getByLabel("Signing key (secret)").inputValue(), "");
  assert.equal((await page.content()).includes(key), false);
  const { channels } = await stack.query("{ channels { name kind url secretsSet } }", {}, { auth: true });
  assert.deepEqual(channels, [{ name: "ops hook", kind: "WEBHOOK", url: receiver.url, secretsSet: ["signingKey"] }]);
});

test("Test shows the receiver's answer: refused, then delivered; both in the delivery log", async () => {
  const card = channel("ops hook");
  receiver.status = 400;
  receiver.body = "unknown hook";
  await card.getByRole("button", { name: "Test channel ops hook" }).click();
  const result = card.locator(".test-result");
  await until("the refused test's answer", async () => (await result.getAttribute("data-delivered")) === "false");
  assert.equal(await result.innerText(), "Not delivered: 400 unknown hook");
  assert.equal(receiver.requests.length, 1);
  const sent = receiver.requests[0];
  assert.equal(JSON.parse(sent.body).type, "pingpipe.test");
  assert.match(sent.headers["webhook-signature"], /^v1,/);

  receiver.status = 200;
  receiver.body = "thanks";
  await card.getByRole("button", { name: "Test channel ops hook" }).click();
  await until("the delivered test's answer", async () => (await result.getAttribute("data-delivered")) === "true");
  assert.equal(await result.innerText(), "Delivered: 200 thanks");
  await stack.screenshot(page, "n02-channel-tested");

  const rows = page.locator("#deliveries tbody tr");
  await until("two deliveries in the log", async () => (await rows.count()) === 2);
  // Newest first.
  assert.equal(await rows.nth(0).getAttribute("data-status"), "DELIVERED");
  assert.equal(await rows.nth(0).locator(".answer").innerText(), "200 thanks");
  assert.equal(await rows.nth(0).locator(".channel").innerText(), "ops hook");
  assert.equal(await rows.nth(0).locator(".summary").innerText(), "Test message from Pingpipe (test)");
  assert.equal(await rows.nth(1).getAttribute("data-status"), "FAILED");
  assert.equal(await rows.nth(1).locator(".answer").innerText(), "400 unknown hook");
  assert.equal(await rows.nth(1).locator(".attempts").innerText(), "1");
  // A test message is not redelivered (testChannel sends a new one).
  assert.equal(await rows.nth(1).getByRole("button", { name: /Redeliver/ }).count(), 0);
});

test("a route is added to the channel, with its events, and removed", async () => {
  const card = channel("ops hook");
  await card.getByText("Add a route").click();
  const form = card.locator("form.route-form");
  await form.getByLabel("Route name").fill("production");
  await form.getByLabel("Tagged targets").check();
  await form.getByLabel("Tag filters").fill("env:*x");
  await form.getByLabel("Degraded").check();
  await form.getByRole("button", { name: "Add route" }).click();
  // The API's message goes beside the tag filters.
  await form.locator("[id$='-tags-error']").getByText(/^tags: /).waitFor();
  await form.getByLabel("Tag filters").fill("env:prod");
  await form.getByLabel("Remind every (minutes, optional)").fill("30");
  await form.getByRole("button", { name: "Add route" }).click();
  const route = card.locator(".routes li", { hasText: "production" });
  await route.waitFor();
  assert.equal(
    await route.innerText().then((t) => t.replace(/\s*Remove$/, "")),
    "production: Down, Recovered, Degraded of targets tagged env:prod (reminder every 30 min)",
  );
  const { routes } = await stack.query("{ routes { name tags events remindEveryMinutes channel { name } } }", {}, { auth: true });
  assert.deepEqual(routes, [{
    name: "production", tags: ["env:prod"], events: ["DOWN", "RECOVERED", "DEGRADED"],
    remindEveryMinutes: 30, channel: { name: "ops hook" },
  }]);
  await stack.screenshot(page, "n03-route-added");

  await route.getByRole("button", { name: "Remove route production" }).click();
  await route.waitFor({ state: "detached" });
  assert.deepEqual((await stack.query("{ routes { id } }", {}, { auth: true })).routes, []);
});

test("a failed delivery of changes is redelivered from the log; the page fits a phone", async () => {
  // A delivery the worker gave up on (written as the worker writes it).
  const { channels } = await stack.query("{ channels { id } }", {}, { auth: true });
  const { execFileSync } = await import("node:child_process");
  execFileSync("psql", [stack.dbUrl, "-q", "-c", `
    INSERT INTO notification_deliveries (channel_fk, sequence_key, status, give_up_at, attempts, finished_at, last_status, last_answer)
      VALUES (${channels[0].id}, '${channels[0].id}', 'failed', now(), 3, now(), 410, 'gone');
    INSERT INTO notifications (channel_fk, urltarget_fk, url, event, from_state, to_state, since, delivery_fk)
      SELECT ${channels[0].id}, 1, 'https://shop.example.test/', 'down', 'up', 'down', now(), max(delivery_pk)
      FROM notification_deliveries`]);
  await page.getByLabel("Status", { exact: true }).selectOption("FAILED");
  const row = page.locator("#deliveries tbody tr", { hasText: "DOWN: https://shop.example.test/" });
  await row.waitFor();
  assert.equal(await row.locator(".answer").innerText(), "410 gone");
  await row.getByRole("button", { name: "Redeliver DOWN: https://shop.example.test/" }).click();
  await page.getByText("Sent again: the delivery is pending.").waitFor();
  const { deliveries } = await stack.query(
    "{ deliveries(status: PENDING) { nodes { summary status } } }", {}, { auth: true });
  assert.deepEqual(deliveries.nodes, [{ summary: "DOWN: https://shop.example.test/", status: "PENDING" }]);
  await page.getByLabel("Status", { exact: true }).selectOption("");
  await until("the redelivered one shown pending", async () =>
    (await page.locator("#deliveries tbody tr[data-status='PENDING']").count()) === 1);
  await stack.screenshot(page, "n04-delivery-log");

  const phone = await stack.page({ phone: true });
  await phone.evaluate((t) => localStorage.setItem("pingpipe.apiToken", t), TOKEN);
  await phone.goto(`${stack.url}#/notifications`);
  await phone.locator("#channels > li").first().waitFor();
  await phone.locator("#deliveries tbody tr").first().waitFor();
  await stack.screenshot(phone, "n05-notifications-phone");
  // What sticks out, if anything (the innermost elements wider than the screen).
  const wide = await phone.evaluate(() => [...document.querySelectorAll("#view-notifications *")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && e.children.length === 0)
    .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}.${e.className}`));
  assert.deepEqual(wide, [], "the Notifications page scrolls sideways");
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true,
    "the page scrolls sideways (the header's links?)");
  assert.deepEqual(phone.problems, [], "console errors or CSP violations");
  await phone.context().close();
  assert.deepEqual(page.problems, [], "console errors or CSP violations");
});
