import { createHash, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createServer, type Socket, connect } from "node:net";
import * as path from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { hashPassword } from "../../src/server/users.ts";
import type { Grant, Store } from "../../src/store/store.ts";

// The panel's browser tests: Debian's Chromium driven by playwright-core (no browser download),
// headless, one browser per test file. The server's certificate is trusted by its CA's SPKI pin
// (--ignore-certificate-errors-spki-list), not by ignoring certificate errors altogether.

/** The Chromium the tests drive: Debian's, or $GALLEY_CHROMIUM. */
export const chromiumPath = process.env.GALLEY_CHROMIUM ?? "/usr/bin/chromium";

/** A test's skip reason when there is no Chromium to drive (CI installs it: .ci/run). */
export const noChromium: string | false = existsSync(chromiumPath)
  ? false
  : `needs Chromium at ${chromiumPath} (apt-get install chromium, or set GALLEY_CHROMIUM)`;

const docsDir = fileURLToPath(new URL("../../docs/panel/", import.meta.url));

/** The little of the DOM the tests read inside a page (this project's types have no DOM library). */
export interface PageGlobals {
  document: {
    documentElement: { scrollWidth: number; clientWidth: number };
    body: { scrollWidth: number; textContent: string };
    fonts: { ready: Promise<unknown> };
  };
  getComputedStyle(element: unknown): { outlineStyle: string; outlineWidth: string; boxShadow: string };
}

/** What a browser needs of a test's server. */
export interface PanelServer {
  url: string;
  caPem: string;
}

/** The base64 SHA-256 of a certificate's public key (what Chromium's SPKI allow-list holds). */
export function spkiPin(pem: string): string {
  const key = new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(key).digest("base64");
}

/**
 * Launches headless Chromium trusting `servers`' CAs by pin; closed after the test (file).
 * The flags suit a container or CI runner: no sandbox (root), no GPU, /tmp over a small /dev/shm,
 * no background traffic to Google.
 */
export async function launchBrowser(
  t: { after: TestContext["after"] } | undefined,
  servers: PanelServer[],
): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    timeout: 60_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-default-apps",
      "--disable-sync",
      "--no-first-run",
      "--metrics-recording-only",
      "--password-store=basic",
      "--use-mock-keychain",
      `--ignore-certificate-errors-spki-list=${servers.map((s) => spkiPin(s.caPem)).join(",")}`,
    ],
  });
  t?.after(() => browser.close());
  return browser;
}

/** A fresh context (its own cookies) on `server`, 1280×800 unless told; errors collected. */
export async function newPanel(
  browser: Browser,
  server: PanelServer,
  options: { width?: number; height?: number } = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    baseURL: server.url,
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    reducedMotion: "reduce",
    locale: "en-GB",
    timezoneId: "UTC",
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors = collectErrors(page);
  return { context, page, errors };
}

/**
 * The page's console errors, uncaught exceptions and CSP violations, as they happen (a list the
 * test asserts empty). A failed request the page handles (a 401 before login) is not one.
 */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  pageErrors.set(page, errors);
  page.on("requestfailed", (request) =>
    requestLog(page).push(`failed ${request.method()} ${request.url()}: ${request.failure()?.errorText}`),
  );
  page.on("response", (response) => {
    if (response.status() >= 300) requestLog(page).push(`${response.status()} ${response.url()}`);
  });
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    // Chromium logs every non-2xx fetch as a console error; the page shows those itself
    if (/^Failed to load resource: the server responded with a status of (401|403|404|409|429)/.test(text))
      return;
    // Chromium fails requests in flight when the machine's interfaces change (ERR_NETWORK_CHANGED):
    // other tests make and remove container hosts' veths; the panel reads again or reloads (boot.ts)
    if (text === "Failed to load resource: net::ERR_NETWORK_CHANGED") return;
    errors.push(`console: ${text}`);
  });
  page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
  return errors;
}

const pageErrors = new WeakMap<Page, string[]>();
const requestLogs = new WeakMap<Page, string[]>();

// what a page's requests met that was not a success (for a failure's message)
function requestLog(page: Page): string[] {
  let log = requestLogs.get(page);
  if (log === undefined) {
    log = [];
    requestLogs.set(page, log);
  }
  return log;
}

/** Who logs in: a token's secret, or a user and password. */
export type Credentials = { token: string } | { user: string; password: string };

/**
 * Logs in through the login page (labels "Token", or "User" + "Password"; button "Log in") and
 * waits until the panel has left /login.
 */
export async function login(page: Page, who: Credentials, at = "/login"): Promise<void> {
  await page.goto(at);
  // a login page that never shows its form says what it shows instead
  await page
    .getByLabel("token" in who ? "Token" : "User", { exact: true })
    .waitFor()
    .catch(async (error: unknown) => {
      const shown = await page.evaluate(
        () => (globalThis as unknown as PageGlobals).document.body.textContent,
      );
      const seen = [...(pageErrors.get(page) ?? []), ...requestLog(page)].join("\n");
      throw new Error(
        `the login page at ${page.url()} shows no form; it shows: ${shown.slice(0, 2000)}\n${seen}`,
        {
          cause: error,
        },
      );
    });
  // each way in has its own form and "Log in" button
  const field = (label: string) => page.getByLabel(label, { exact: true });
  const form = page.locator("form", { has: field("token" in who ? "Token" : "Password") });
  if ("token" in who) {
    await field("Token").fill(who.token);
  } else {
    await field("User").fill(who.user);
    await field("Password").fill(who.password);
  }
  await form.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((url) => url.pathname !== "/login");
}

/**
 * A screenshot of the page as docs/panel/<name>.png, only with GALLEY_SCREENSHOTS=1 (the tests
 * leave the tree clean otherwise). Settles fonts and animations first.
 */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}) {
  if (process.env.GALLEY_SCREENSHOTS !== "1") return;
  mkdirSync(docsDir, { recursive: true });
  await page.evaluate(() => (globalThis as unknown as PageGlobals).document.fonts.ready);
  await page.screenshot({
    path: path.join(docsDir, `${name}.png`),
    fullPage: options.fullPage ?? false,
    animations: "disabled",
    caret: "hide",
  });
}

/**
 * A JSON API call from inside the page with its session cookie and CSRF token (the panel's own
 * path): what a page could do by hand, e.g. a viewer trying to deploy.
 */
export async function pageCall(
  page: Page,
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  return page.evaluate(
    async ({ method, urlPath, body }) => {
      const session = await fetch("/v1/session", { credentials: "same-origin" });
      const csrf = session.ok ? ((await session.json()) as { csrf: string }).csrf : "";
      const res = await fetch(urlPath, {
        method,
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-galley-csrf": csrf },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json };
    },
    { method, urlPath, body },
  );
}

/** The page's widths: the document scrolls sideways when `scroll` or `body` exceeds `client`. */
export function pageWidths(page: Page): Promise<{ scroll: number; client: number; body: number }> {
  return page.evaluate(() => {
    const { document } = globalThis as unknown as PageGlobals;
    return {
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      body: document.body.scrollWidth,
    };
  });
}

/**
 * The feed ids of a log view's lines (`data-id`), top to bottom. A virtualized view keeps only some
 * rows in the page: this scrolls it from the top to the bottom, reading each screen once it settles.
 * A line shown twice, or out of order, is kept in the answer (so that a comparison shows it).
 */
export async function logIds(log: Locator): Promise<number[]> {
  const read = () =>
    log.locator("[data-id]").evaluateAll((rows) => rows.map((row) => Number(row.getAttribute("data-id"))));
  // a row still being fetched is a placeholder (no data-id) and the log says aria-busy: wait until
  // neither, then until two reads agree
  const placeholders = log.locator(".log-line:not([data-id])");
  const settled = async () => {
    let ids = await read();
    for (let i = 0; i < 50; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const again = await read();
      const busy = (await log.getAttribute("aria-busy")) === "true";
      if (again.join() === ids.join() && !busy && (await placeholders.count()) === 0) break;
      ids = again;
    }
    return ids;
  };
  const ids: number[] = [];
  await log.evaluate((box) => {
    box.scrollTop = 0;
  });
  for (;;) {
    const screen = await settled();
    const seen = new Set<number>();
    for (const id of screen) {
      // a screen overlaps the one before it: only its new lines count, except a line shown twice
      if (seen.has(id) || id > (ids.at(-1) ?? -1)) ids.push(id);
      seen.add(id);
    }
    const done = await log.evaluate((box) => {
      const end = box.scrollTop + box.clientHeight >= box.scrollHeight - 1;
      if (!end) box.scrollTop += Math.max(1, Math.floor(box.clientHeight * 0.8));
      return end;
    });
    if (done) return ids;
  }
}

/** A TCP relay in front of a test's server that can cut the line: see `relay`. */
export interface Relay extends PanelServer {
  /** drops every open connection and refuses new ones for `ms` */
  cut(ms: number): Promise<void>;
  /** connections dropped by cuts so far */
  dropped: number;
  close(): Promise<void>;
}

/**
 * A relay to `server` on another loopback port (TLS passes through: the same certificate, the same
 * host for cookies). A browser's offline mode stops new requests but leaves an open event stream
 * flowing; cutting here ends it, as a lost network does.
 */
export async function relay(t: { after: TestContext["after"] }, server: PanelServer): Promise<Relay> {
  const target = new URL(server.url);
  const open = new Set<Socket>();
  let refuseUntil = 0;
  const listener = createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      socket.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as { port: number }).port;
  const line: Relay = {
    url: `https://127.0.0.1:${port}`,
    caPem: server.caPem,
    dropped: 0,
    async cut(ms) {
      refuseUntil = Date.now() + ms;
      line.dropped += open.size;
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        listener.close(() => resolve());
      }),
  };
  t.after(() => line.close());
  return line;
}

/** A user account on a test's server, as `galley user add` makes it. */
export async function addUser(
  server: { ctx: { store: Store } },
  name: string,
  password: string,
  grants: Grant[],
): Promise<void> {
  await server.ctx.store.createUser({ name, passwordHash: await hashPassword(password), grants });
}

/** Polls `probe` until it returns a value other than undefined (for state outside the page). */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
