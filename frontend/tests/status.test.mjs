// Public status pages (issue #16) in a real browser against the real api: 90 days of daily
// rollups, states, incidents and a maintenance window made in SQL, a page made through GraphQL
// with its URLs hidden. The page shows display names, states, 90 bars (30 on a phone), the
// incidents and the maintenance, and no URL anywhere in the document; a page that is not public
// is not found without a token and previewed with one.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";
import { Stack, TOKEN, until } from "./stack.mjs";

let stack;
const ids = { shop: 0, api: 0, docs: 0 };
// The UTC day the data is made for (read once: a test running over midnight still finds it).
let today;

before(async () => {
  stack = await Stack.start({ workers: false });
  today = execFileSync("psql", [stack.dbUrl, "-Atc", "SELECT (now() AT TIME ZONE 'UTC')::date"])
    .toString()
    .trim();
  const day0 = `timestamptz '${today} 00:00:00Z'`;
  const buckets = "le_50, le_100, le_150, le_200";
  stack.sql(`
    INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency, tags) VALUES
      (1, 'http://127.0.0.1:9/private-shop', 1, '["env:prod"]'),
      (2, 'http://127.0.0.1:9/private-api', 1, '["env:prod"]'),
      (3, 'http://127.0.0.1:9/private-docs', 1, '["env:prod"]');
    SELECT setval('urltargets_seq', 3);
    INSERT INTO target_states (urltarget_fk, state, state_since) VALUES
      (1, 'up', now() - interval '2 days'), (2, 'down', now() - interval '7 minutes'),
      (3, 'up', now() - interval '9 days');
    -- 89 closed days before today: mostly perfect, a few bad ones.
    INSERT INTO rollup_days (day, closed_at)
      SELECT ${day0} - d * interval '1 day', now()
      FROM generate_series(1, 89) d ON CONFLICT DO NOTHING;
    INSERT INTO result_rollups_daily (urltarget_fk, bucket_at, up, degraded, down, duration_min,
                                      duration_sum, duration_max, ${buckets})
      SELECT t, ${day0} - d * interval '1 day',
             1440 - CASE WHEN (d + t) % 17 = 0 THEN 120 WHEN (d * t) % 23 = 0 THEN 5 ELSE 0 END, 0,
             CASE WHEN (d + t) % 17 = 0 THEN 120 WHEN (d * t) % 23 = 0 THEN 5 ELSE 0 END,
             20, 1440 * 60, 400, 360, 360, 360, 360
      FROM generate_series(1, 3) t, generate_series(1, 89) d
      ON CONFLICT DO NOTHING;
    INSERT INTO incidents (urltarget_fk, cause, opened_at, confirmed_at, resolved_at, opened_by, closed_by) VALUES
      (2, 'HTTP 503 from http://127.0.0.1:9/private-api', now() - interval '7 minutes', now() - interval '6 minutes', NULL, 1, NULL),
      (1, 'timeout of http://127.0.0.1:9/private-shop', now() - interval '2 days 1 hour', now() - interval '2 days 1 hour',
       now() - interval '2 days', 1, 2);
    INSERT INTO maintenance_windows (name, starts_at, ends_at, target_ids) VALUES
      ('Database upgrade', now() + interval '1 day', now() + interval '1 day 2 hours', '[3]')`);
  Object.assign(ids, { shop: "1", api: "2", docs: "3" });
  const page = (slug, isPublic) => ({
    slug,
    title: "Acme services",
    description: "Shop, API and docs of Acme.",
    public: isPublic,
    targetIds: [ids.shop, ids.api, ids.docs],
    names: [
      { targetId: ids.shop, name: "Web shop" },
      { targetId: ids.api, name: "Public API" },
      { targetId: ids.docs, name: "Documentation" },
    ],
  });
  for (const [slug, isPublic] of [["acme", true], ["acme-internal", false]]) {
    await stack.query(
      "mutation($page: StatusPageInput!) { addStatusPage(page: $page) { id } }",
      { page: page(slug, isPublic) },
      { auth: true },
    );
  }
});

after(async () => {
  await stack?.stop();
});

/** A fresh browser at the status page `slug`, loaded. */
async function open(slug, { phone = false, token = false } = {}) {
  const page = await stack.page({ phone });
  if (token) await page.evaluate((t) => localStorage.setItem("pingpipe.apiToken", t), TOKEN);
  await page.goto(`${stack.url}status/${slug}`);
  await until("the status page drawn", () => page.locator("body[data-loaded=true]").count());
  return page;
}

/** Every URL-like text of the document: its markup, attributes included, and its text. */
async function noUrlIn(page) {
  const html = await page.content();
  const text = await page.locator("body").innerText();
  for (const hidden of ["127.0.0.1", "private-", "http://"]) {
    assert.ok(!html.includes(hidden), `${hidden} in the page's markup`);
    assert.ok(!text.includes(hidden), `${hidden} in the page's text`);
  }
}

const visibleBars = (page, row) =>
  page
    .locator(".service")
    .nth(row)
    .locator(".bar")
    .evaluateAll((bars) => bars.filter((b) => b.getBoundingClientRect().width > 0).length);

test("a public page shows names, states, 90 bars, incidents and maintenance — and no URL", async () => {
  const page = await open("acme");
  assert.equal(await page.locator("h1").innerText(), "Acme services");
  assert.equal(await page.locator("#summary").innerText(), "Partial outage");
  const names = await page.locator(".service-name").allInnerTexts();
  assert.deepEqual(names, ["Web shop", "Public API", "Documentation"]);
  assert.deepEqual(await page.locator(".service .state").allInnerTexts(), ["Operational", "Down", "Operational"]);
  assert.equal(await page.locator(".service").first().locator(".bar").count(), 90);
  assert.equal(await visibleBars(page, 0), 90);
  // A bad day of the shop (d + 1 divisible by 17: 16 days ago) is coloured and titled with its figures.
  const day = new Date(Date.parse(`${today}T00:00:00Z`) - 16 * 86_400_000).toISOString().slice(0, 10);
  const bar = page.locator(`.service >> nth=0 >> .bar[data-day="${day}"]`);
  assert.equal(await bar.getAttribute("data-level"), "down");
  assert.match(await bar.getAttribute("title"), /^\d{4}-\d\d-\d\d: 91\.66 % up \(1440 checks, 120 down\)$/);
  // Today has no rollups and no results in this test: no data (nor a day after midnight).
  assert.equal(await page.locator(".service >> nth=0 >> .bar").last().getAttribute("data-level"), "none");

  const incidents = await page.locator("#incidents .event-title").allInnerTexts();
  assert.deepEqual(incidents, ["Public API is down", "Web shop was down"]);
  assert.deepEqual(await page.locator("#maintenance .event-title").allInnerTexts(), ["Database upgrade"]);
  assert.match(await page.locator("#maintenance .event").innerText(), /Affects Documentation/);
  await noUrlIn(page);
  await stack.screenshot(page, "x02-status-page-desktop");
  assert.deepEqual(page.problems, []);
});

test("on a phone the page shows the last 30 days, still without a URL", async () => {
  const page = await open("acme", { phone: true });
  assert.equal(await visibleBars(page, 0), 30);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide on a 390 px screen`);
  await noUrlIn(page);
  await stack.screenshot(page, "x03-status-page-phone");
  assert.deepEqual(page.problems, []);
});

test("a page that is not public is not found without a token and previewed with one", async () => {
  const page = await open("acme-internal");
  assert.equal(await page.locator("#summary").innerText(), "There is no public status page at this address.");
  assert.equal(await page.locator(".service").count(), 0);
  // 404 for its data is expected here; nothing else may go wrong.
  assert.ok(page.problems.every((p) => p.includes("404")), page.problems.join("\n"));

  const preview = await open("acme-internal", { token: true });
  assert.equal(await preview.locator(".service").count(), 3);
  await noUrlIn(preview);
  assert.deepEqual(preview.problems, []);
});
