// The dashboard at 50,000 targets (issue #16), in a real browser against the real api: targets,
// states, a day of hourly rollups for each and an hour of raw results for a few, made in SQL
// (no monitor, no ingest worker). The list comes paged and sorted by the server; how long the
// first page and the next one take is measured in Chromium and reported — not asserted (a
// timed test fails on a busy machine, not on slow code; `make bench-api` measures the server).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Stack, until } from "./stack.mjs";

const TARGETS = 50_000;
let stack;
let page;

before(async () => {
  stack = await Stack.start({ workers: false });
  const buckets = "le_50, le_100, le_150, le_200";
  stack.sql(`
    INSERT INTO urltargets (urltargets_pk, urltarget, monitor_frequency, tags)
      SELECT i, 'http://127.0.0.1:9/t' || lpad(i::text, 5, '0'), 1,
             CASE WHEN i % 4 = 0 THEN '["env:prod"]'::jsonb ELSE '[]'::jsonb END
      FROM generate_series(1, ${TARGETS}) i;
    SELECT setval('urltargets_seq', ${TARGETS});
    INSERT INTO target_states (urltarget_fk, state, state_since)
      SELECT i, (ARRAY['up', 'up', 'up', 'up', 'degraded', 'down', 'pending', 'unknown'])[1 + i % 8],
             now() - (i % 977) * interval '1 minute'
      FROM generate_series(1, ${TARGETS}) i;
    INSERT INTO result_rollups_hourly (urltarget_fk, bucket_at, up, degraded, down, duration_min,
                                       duration_sum, duration_max, ${buckets})
      SELECT t, w.closed_until - h * interval '1 hour', 58, 0, 2, 20, 60 * (50 + t % 100 + h * 3), 400,
             10, 30, 15, 5
      FROM rollup_watermark w, generate_series(1, ${TARGETS}) t, generate_series(1, 24) h;
    SELECT monitor_results_cover(now() - interval '2 hours', interval '1 day');
    SELECT monitor_results_cover(now(), interval '1 day');
    INSERT INTO monitor_results (urltarget_fk, http_status, start_time, duration, scheduled_at, outcome)
      SELECT t, 200, s, 40 + m, s, 'up'
      FROM generate_series(1, 200) t, generate_series(0, 59) m,
           LATERAL (SELECT date_bin('1 minute', now(), timestamptz '2000-01-01Z') - m * interval '1 minute') x(s);
    ANALYZE`);
  page = await stack.page();
});

after(async () => {
  await stack?.stop();
});

const rows = () => page.locator("#targets tbody tr");
const firstUrl = () => rows().first().locator("td.url a").innerText();

test("the first page of 50,000 targets comes at once, sorted and paged by the server", async () => {
  // From the navigation's start to the rows drawn, timed in the page (checked every frame).
  const drawn = await page.waitForFunction(
    () => document.querySelectorAll("#targets tbody tr").length === 50 && performance.now(),
    null,
    { polling: "raf", timeout: 60_000 },
  );
  const firstPageMs = await drawn.jsonValue();
  assert.equal(await firstUrl(), "http://127.0.0.1:9/t00001");
  // Every row has its sparkline of the last 24 hours (hourly means from the rollups).
  assert.equal(await page.locator("#targets tbody tr td.spark canvas").count(), 50);
  assert.equal(await page.locator("#targets-page").innerText(), "Page 1");

  // Another page: from the click to its first row drawn, timed in the page (every frame).
  const paging = (button) =>
    page.evaluate(async (id) => {
      const first = () => document.querySelector("#targets tbody tr td.url a")?.textContent;
      const before = first();
      const started = performance.now();
      document.getElementById(id).click();
      await new Promise((resolve) => {
        const check = () => (first() && first() !== before ? resolve() : requestAnimationFrame(check));
        check();
      });
      return performance.now() - started;
    }, button === "Next page" ? "targets-next" : "targets-prev");
  const nextMs = await paging("Next page");
  assert.equal(await firstUrl(), "http://127.0.0.1:9/t00051");
  assert.equal(await page.locator("#targets-page").innerText(), "Page 2");
  const previousMs = await paging("Previous page");
  assert.equal(await firstUrl(), "http://127.0.0.1:9/t00001");

  // Worst first: the DOWN targets (every eighth, from 5) lead.
  const sortMs = await page.evaluate(async () => {
    const first = () => document.querySelector("#targets tbody tr td.url a")?.textContent;
    const started = performance.now();
    const select = document.getElementById("filter-order");
    select.value = "STATE";
    select.dispatchEvent(new Event("change"));
    await new Promise((resolve) => {
      const check = () => (first() === "http://127.0.0.1:9/t00005" ? resolve() : requestAnimationFrame(check));
      check();
    });
    return performance.now() - started;
  });
  assert.equal(await rows().first().getAttribute("data-state"), "down");
  const stateNextMs = await paging("Next page");
  assert.equal(await rows().first().getAttribute("data-state"), "down");

  // Filtered by state on the server: only DEGRADED rows, a full page of them.
  await page.getByLabel(/^State/).selectOption("DEGRADED");
  await until("degraded targets only", async () => {
    const states = await rows().evaluateAll((trs) => trs.map((tr) => tr.dataset.state));
    return states.length === 50 && states.every((s) => s === "degraded");
  });
  assert.equal(await page.locator("#targets-page").innerText(), "Page 1");
  await stack.screenshot(page, "x01-fifty-thousand-targets");
  console.log(
    `dashboard at ${TARGETS} targets, Chromium: first page ${firstPageMs.toFixed(0)} ms after navigation start; ` +
      `next page ${nextMs.toFixed(0)} ms, previous ${previousMs.toFixed(0)} ms; sorted by state ${sortMs.toFixed(0)} ms, ` +
      `its next page ${stateNextMs.toFixed(0)} ms`,
  );
  assert.deepEqual(page.problems, []);
});
