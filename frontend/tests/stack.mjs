// The real stack for the browser tests: a fresh database and topic on the PostgreSQL and Kafka
// of `make test`, the three Pingpipe binaries of the debug build, a loopback HTTP server to
// watch, and Debian's Chromium driven by playwright-core. Everything is torn down afterwards.

import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const TOKEN = `ui-test-${randomBytes(8).toString("hex")}`;
const BIN = process.env.PINGPIPE_BIN_DIR;
const DATABASE_URL = process.env.DATABASE_URL;
const KAFKA = process.env.KAFKA_BOOTSTRAP_SERVERS;
const SCREENSHOTS = process.env.PINGPIPE_SCREENSHOTS ?? join(ROOT, ".pingpipe", "screenshots");

/** Waits until `check` returns something truthy, failing with `what` after `ms`. */
export async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function withDatabase(url, name) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** SIGTERM, and wait until the process has exited. */
async function terminate(child) {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function ready(url) {
  const response = await fetch(url);
  return response.ok;
}

export class Stack {
  /** With `workers: false`, only the api (and the database): for data made in SQL. */
  static async start({ workers = true } = {}) {
    for (const [name, value] of Object.entries({ PINGPIPE_BIN_DIR: BIN, DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS: KAFKA })) {
      if (!value) throw new Error(`${name} is not set: run the browser tests through \`make test\``);
    }
    const stack = new Stack();
    const id = randomBytes(6).toString("hex");
    stack.dbName = `pingpipe_ui_${id}`;
    execFileSync("psql", [DATABASE_URL, "-q", "-c", `CREATE DATABASE ${stack.dbName}`]);
    stack.dbUrl = withDatabase(DATABASE_URL, stack.dbName);
    execFileSync(join(BIN, "migration"), ["--database-url", stack.dbUrl, "up"], { stdio: "ignore" });
    stack.topic = `pingpipe.ui-test-${id}`;
    if (workers) {
      execFileSync("bash", [join(ROOT, "scripts", "kafka.sh"), "create-topic", stack.topic, "2"], { stdio: "inherit" });
    }

    // The site being watched: /ok answers 200, /fail 503, /health a JSON health document
    // (`{"status":"UP",…}`, for assertions on the body), /slow 200 after 300 ms; a path and query
    // put in `stack.failing` answers 503 until taken out (a site that goes down and recovers).
    // It notes each request's path and Authorization header, to show what the probe sent.
    stack.requests = [];
    stack.failing = new Set();
    stack.site = http.createServer((req, res) => {
      stack.requests.push({ url: req.url, at: Date.now(), authorization: req.headers.authorization });
      if (stack.requests.length > 10_000) stack.requests.splice(0, 5_000);
      if (req.url.startsWith("/slow")) {
        setTimeout(() => {
          res.writeHead(200, { "Content-Type": "text/plain" });
          res.end("slow\n");
        }, 300);
        return;
      }
      if (req.url.startsWith("/health")) {
        res.writeHead(200, { "Content-Type": "application/json", "X-Service": "pingpipe-fixture" });
        res.end(JSON.stringify({ status: "UP", checks: [{ name: "db", ok: true }] }));
        return;
      }
      const fails = req.url.startsWith("/fail") || stack.failing.has(req.url);
      res.writeHead(fails ? 503 : 200, { "Content-Type": "text/plain" });
      res.end("pingpipe ui test\n");
    });
    await new Promise((r) => stack.site.listen(0, "127.0.0.1", r));
    stack.siteUrl = `http://127.0.0.1:${stack.site.address().port}`;

    // The same site over HTTPS, with a self-signed certificate made now by openssl that expires
    // in 10 days (the monitor watches it with tlsVerify off).
    stack.certDir = mkdtempSync(join(tmpdir(), "pingpipe-ui-cert-"));
    const [key, cert] = [join(stack.certDir, "key.pem"), join(stack.certDir, "cert.pem")];
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", key, "-out", cert, "-days", "10", "-subj", "/CN=127.0.0.1/O=Pingpipe UI test",
      "-addext", "subjectAltName=IP:127.0.0.1",
    ], { stdio: "ignore" });
    stack.tlsSite = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) =>
      stack.site.emit("request", req, res));
    await new Promise((r) => stack.tlsSite.listen(0, "127.0.0.1", r));
    stack.tlsSiteUrl = `https://127.0.0.1:${stack.tlsSite.address().port}`;

    stack.apiAddr = `127.0.0.1:${await freePort()}`;
    stack.children = {};
    await stack.startApi();
    if (workers) await stack.startWorkers(id);
    stack.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
    return stack;
  }

  async startWorkers(id) {
    const stack = this;
    const common = ["--database-url", stack.dbUrl, "--kafka-bootstrap-servers", KAFKA, "--topic", stack.topic];
    // A "minute" of 2 s: a 1-minute target is probed every 2 s (and the ingest worker, told the
    // same, marks a target UNKNOWN after two such periods without a result, plus its grace).
    const ingestAddr = `127.0.0.1:${await freePort()}`;
    stack.spawn("ingest", "pingpipe-ingest", [...common, "--group", `ui-${id}`, "--minute", "2s", "--listen", ingestAddr]);
    const monitorAddr = `127.0.0.1:${await freePort()}`;
    stack.spawn("monitor", "pingpipe-monitor", [...common, "--instance", `ui-${id}`, "--minute", "2s", "--listen", monitorAddr]);
    await until("the ingest worker", () => ready(`http://${ingestAddr}/readyz`), 60_000);
    await until("the monitor", () => ready(`http://${monitorAddr}/readyz`), 60_000);
  }

  /** Runs SQL in the stack's database (psql, stopping at the first error). */
  sql(text) {
    execFileSync("psql", [this.dbUrl, "-q", "-v", "ON_ERROR_STOP=1", "-c", text], { stdio: ["ignore", "ignore", "inherit"] });
  }

  spawn(name, binary, args, env = {}) {
    const child = spawn(join(BIN, binary), args, {
      cwd: ROOT,
      env: { ...process.env, RUST_LOG: "warn", ...env },
      stdio: ["ignore", "inherit", "inherit"],
    });
    this.children[name] = child;
    return child;
  }

  async startApi() {
    this.spawn("api", "pingpipe-api", ["--database-url", this.dbUrl, "--listen", this.apiAddr], {
      PINGPIPE_API_TOKENS: TOKEN,
      PINGPIPE_API_FRONTEND_DIR: join(ROOT, "frontend", "public"),
    });
    await until("the api", () => ready(`http://${this.apiAddr}/readyz`), 60_000);
  }

  /** Stops the api with SIGTERM and waits for it to exit. */
  async stopApi() {
    await terminate(this.children.api);
  }

  get url() {
    return `http://${this.apiAddr}/`;
  }

  /** A GraphQL query straight to the api, to check what the page claims (`auth`: with the token). */
  async query(query, variables = {}, { auth = false } = {}) {
    const response = await fetch(`http://${this.apiAddr}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(auth ? { Authorization: `Bearer ${TOKEN}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  }

  /**
   * A fresh browser page (its own storage) at phone or desktop width. `page.problems` collects
   * its console errors, uncaught errors and what its Content-Security-Policy refused.
   */
  async page({ phone = false } = {}) {
    const context = await this.browser.newContext({
      viewport: phone ? { width: 390, height: 844 } : { width: 1280, height: 900 },
    });
    const problems = [];
    await context.exposeFunction("reportViolation", (v) => problems.push(`CSP violation: ${v}`));
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) =>
        window.reportViolation(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    const page = await context.newPage();
    page.problems = problems;
    page.on("console", (m) => m.type() === "error" && problems.push(`${m.text()} (${m.location().url})`));
    page.on("pageerror", (e) => {
      console.error("page error:", e.message);
      problems.push(e.message);
    });
    await page.goto(this.url);
    return page;
  }

  async screenshot(page, name) {
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  async stop() {
    await this.browser?.close();
    // The monitor first, so that the ingest worker can still store its last results.
    for (const name of ["monitor", "ingest", "api"]) {
      const child = this.children?.[name];
      if (child && child.exitCode === null) await terminate(child);
    }
    this.site?.close();
    this.tlsSite?.close();
    if (this.certDir) rmSync(this.certDir, { recursive: true, force: true });
    if (this.dbName) {
      execFileSync("psql", [DATABASE_URL, "-q", "-c", `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`]);
    }
  }
}
