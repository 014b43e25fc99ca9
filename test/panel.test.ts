import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Page, Request } from "playwright-core";
import { call, testServer } from "../src/server/test-support.ts";
import type { FeedEntry } from "../src/store/store.ts";
import {
  launchBrowser,
  login,
  logIds,
  newPanel,
  noChromium,
  pageCall,
  relay,
  screenshot,
  until,
} from "./support/browser.ts";
import { cliAsync, loginTo } from "./support/cli.ts";
import { WebappKitchen, webappApps } from "./support/webapp.ts";

// The proof: the webapp example (HAProxy, three app instances and a spare, PostgreSQL) on
// container hosts, served by a real `galley server`, driven from Chromium. Log in; see the stack;
// start app4 with its button and watch it go online and HAProxy's layer configure, without a
// reload; HAProxy's report with its diff; deploy a revision with the rolling strategy from the
// Deploy form and watch its batches while the browser's line is cut for 5 s (the log on screen is
// then the feed's, line for line: none lost, none twice); roll back; a viewer is offered no Deploy
// button and the API refuses it.

const root = process.getuid?.() === 0;
const skip = !root ? "needs root on Linux: instances are container hosts" : noChromium;
const minute = 60_000;
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

test("the web panel on the webapp example (container hosts)", { skip, timeout: 30 * minute }, async (t) => {
  const k = await WebappKitchen.create("galley-panel-");
  t.after(() => k.down());
  const server = await testServer(t, { whole: true, kitchen: k.dir });
  const admin = server.adminToken;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const reply = await call(server, method, path, { token: admin, ...(body === undefined ? {} : { body }) });
    assert.ok(reply.status < 300, `${method} ${path}: ${reply.status} ${reply.text}`);
    return reply.json as T;
  };
  // the stack comes up through the server, as `galley stack up webapp --server …` brings it
  const env = await loginTo(server, k.dir);
  const up = await cliAsync(["stack", "up", "webapp", "--json"], k.dir, env);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  const browser = await launchBrowser(t, [server]);
  // the admin's browser reaches the server through a line the test can cut
  const line = await relay(t, server);
  const { page, context, errors } = await newPanel(browser, line);
  // each step needs the one before: after a failure the rest are skipped, not timed out one by one
  let failed: string | undefined;
  const step = (name: string, fn: () => Promise<void>) =>
    t.test(name, { skip: failed === undefined ? false : `"${failed}" failed` }, async () => {
      try {
        await fn();
      } catch (error) {
        failed = name;
        throw error;
      }
    });
  // a mark set in the page once; still there later: nothing reloaded it
  const noReload = () => page.evaluate(() => (globalThis as { panelTest?: number }).panelTest);

  await step("log in; the Stacks page shows the example stack, its layers and apps", async () => {
    await login(page, { token: admin });
    await page.getByRole("heading", { name: "Stacks" }).waitFor();
    const link = page.getByRole("link", { name: "webapp", exact: true });
    await link.waitFor();
    await page.getByText("hello").first().waitFor();
    await screenshot(page, "stacks");
    await link.click();
    await page.getByRole("heading", { name: "webapp", exact: true }).waitFor();
    for (const layer of ["lb", "app", "db"])
      await page.getByRole("table", { name: `Layer ${layer}` }).waitFor();
    await page.evaluate(() => {
      (globalThis as { panelTest?: number }).panelTest = 1;
    });
  });

  await step("Start app4: its status goes online on screen, and HAProxy's layer configures", async () => {
    const before = await api<{ events: { id: number }[] }>("GET", "/v1/stacks/webapp/events?limit=1");
    const lastEvent = before.events[0]?.id ?? 0;
    const status = instanceStatus(page, "app", "app4");
    assert.equal(await status.getAttribute("data-status"), "stopped");
    await screenshot(page, "stack", { fullPage: true });
    await confirm(page, page.getByRole("button", { name: "Start app4" }));
    // every status the screen showed on the way, without a reload
    const seen = await watchStatuses(status, "online", 10 * minute);
    assert.equal(seen.at(-1), "online", `app4 went ${seen.join(" → ")}`);
    assert.ok(seen.length >= 3, `app4 showed the steps between stopped and online: ${seen.join(" → ")}`);
    // the configure event that put app4 behind HAProxy (a configure can be superseded by the next
    // one, and a later one changes nothing on lb1): the one whose lb1 report has app4's server line
    const configure = await until("the configure event that added app4 to HAProxy", async () => {
      const { events } = await api<{ events: { id: number; kind: string; status: string }[] }>(
        "GET",
        "/v1/stacks/webapp/events?limit=20",
      );
      for (const e of events.filter(
        (e) => e.id > lastEvent && e.kind === "configure" && e.status === "succeeded",
      )) {
        const reply = await call(server, "GET", `/v1/events/${e.id}/instances/lb1`, { token: admin });
        if (reply.status === 200 && /\+(\s|\\t)*server app4 /.test(reply.text)) return e;
      }
      return undefined;
    });
    await page.locator(`a[href="/events/${configure.id}"]`).first().waitFor();
    assert.equal(await noReload(), 1, "the stack page was not reloaded");
    await page.locator(`a[href="/events/${configure.id}"]`).first().click();
    await page.getByRole("heading", { name: `Event #${configure.id}` }).waitFor();
    await page.getByText("lb1").first().waitFor();
    await page.getByRole("log", { name: "Event log" }).waitFor();
    await screenshot(page, "event", { fullPage: true });
    // HAProxy's configuration changed: its report has the diff with app4's server line
    await page.goto(`/events/${configure.id}/instances/lb1`);
    const diff = page.locator("pre.diff").filter({ hasText: "app4" });
    await diff.first().waitFor();
    assert.match((await diff.first().textContent()) ?? "", /\+\s*server app4/);
    await screenshot(page, "report");
  });

  let firstDeployment = 0;
  await step(
    "deploy a new revision with the rolling strategy from the Deploy form; the batches on screen; the line cut for 5 s loses no log line",
    async () => {
      const list = await api<{ deployments: { id: number }[] }>("GET", "/v1/stacks/webapp/deployments");
      firstDeployment = list.deployments.at(-1)!.id;
      const revision = await k.newRevision((s) => `${s}// deployed from the panel\n`);
      await page.goto("/stacks/webapp/deployments");
      await page.getByLabel("App", { exact: true }).selectOption("hello");
      await page.getByLabel("Revision", { exact: true }).fill("main");
      await page.getByLabel("Strategy", { exact: true }).selectOption("rolling");
      await page.getByLabel("Batch", { exact: true }).fill("1");
      await screenshot(page, "deployments", { fullPage: true });
      const streams: Request[] = [];
      page.on("request", (r) => {
        if (r.url().includes("/feed/stream")) streams.push(r);
      });
      await page.getByRole("button", { name: "Deploy", exact: true }).click();
      await page.waitForURL(/\/deployments\/\d+$/);
      const id = Number(/\/deployments\/(\d+)$/.exec(page.url())![1]);
      await page.getByRole("heading", { name: `Deployment #${id}` }).waitFor();
      const log = page.getByRole("log", { name: "Deployment log" });
      // the first batch and some lines, then the network goes for 5 s, mid-deployment: offline mode
      // alone leaves an open event stream flowing, so the relay drops the connections too
      await page.getByRole("region", { name: "Batch 1" }).waitFor({ timeout: 5 * minute });
      await log
        .locator("[data-id]")
        .first()
        .waitFor({ timeout: 5 * minute });
      const opened = streams.length;
      const quiet = errors.length;
      await context.setOffline(true);
      await line.cut(5000);
      await context.setOffline(false);
      assert.ok(line.dropped > 0, "the cut dropped the page's connections");
      assert.equal(await deploymentStatus(page), "running", "the cut was mid-deployment");
      // four app instances, one a batch
      for (let n = 1; n <= 4; n++)
        await page.getByRole("region", { name: `Batch ${n}` }).waitFor({ timeout: 5 * minute });
      await page
        .getByRole("region", { name: "Batch 2" })
        .getByText("back in service")
        .first()
        .waitFor({ timeout: 5 * minute });
      await screenshot(page, "deployment", { fullPage: true });
      const status = await until(
        "the deployment's end on screen",
        async () => {
          const now = await deploymentStatus(page);
          return now === "running" || now === "pending" ? undefined : now;
        },
        10 * minute,
      );
      assert.equal(status, "succeeded");
      assert.ok(streams.length > opened, "the page opened its stream again after the cut");
      // Chromium logs the requests the cut broke (disconnected, incomplete, network changed…), as it
      // should: network failures from the cut until the end are not the page's errors
      const broken = /^console: Failed to load resource: net::ERR_[A-Z_]+$/;
      errors.splice(quiet, errors.length - quiet, ...errors.slice(quiet).filter((e) => !broken.test(e)));
      for (let n = 1; n <= 4; n++) {
        const batch = page.getByRole("region", { name: `Batch ${n}` });
        assert.equal(
          await batch.getByText("back in service").count(),
          1,
          `batch ${n}'s instance is back in service`,
        );
      }
      const served = await k.served([...webappApps, "app4"]);
      assert.deepEqual(new Set(served.values()), new Set([revision]));
      // the log on screen is the feed's, line for line
      const feed = await api<{ entries: FeedEntry[] }>(
        "GET",
        `/v1/stacks/webapp/feed?subject=deployment:${id}&kinds=log&limit=5000`,
      );
      const expected = feed.entries.map((e) => e.id);
      assert.ok(expected.length > 10, `the deployment logged: ${expected.length} lines`);
      // the screen catches up after the end: the last lines may still be on their way
      const shown = await until("the log's last line on screen", async () => {
        const ids = await logIds(log);
        return ids.at(-1) === expected.at(-1) ? ids : undefined;
      });
      assert.equal(new Set(shown).size, shown.length, "no line twice");
      assert.deepEqual(shown, expected, "every line of the feed, in order");
    },
  );

  await step("roll back to the first deployment with its button", async () => {
    const first = await api<{ deployment: { revision: string } }>(
      "GET",
      `/v1/deployments/${firstDeployment}`,
    );
    await page.goto(`/deployments/${firstDeployment}`);
    await confirm(page, page.getByRole("button", { name: "Roll back to this deployment" }));
    await page.waitForURL(
      (url) => url.pathname.startsWith("/deployments/") && url.pathname !== `/deployments/${firstDeployment}`,
    );
    const id = Number(/\/deployments\/(\d+)$/.exec(page.url())![1]);
    await page.getByRole("heading", { name: `Deployment #${id}` }).waitFor();
    const status = await until(
      "the rollback's end on screen",
      async () => {
        const now = await deploymentStatus(page);
        return now === "running" || now === "pending" ? undefined : now;
      },
      10 * minute,
    );
    assert.equal(status, "succeeded");
    await page.getByRole("region", { name: "Batch 1" }).getByText("back in service").first().waitFor();
    const served = await k.served([...webappApps, "app4"]);
    assert.deepEqual(new Set(served.values()), new Set([first.deployment.revision.slice(0, 7)]));
  });

  await step("a viewer: no Deploy button, and the API refuses its deployment", async () => {
    // made as docs/panel.md says: galley user add on the server's machine
    const added = spawnSync(
      process.execPath,
      [galleyBin, "user", "add", "vera", "--grant", "webapp:viewer", "--password-stdin"],
      { cwd: k.dir, input: "viewer password 1\n", encoding: "utf8" },
    );
    assert.equal(added.status, 0, added.stderr);
    const { context: viewerContext, page: viewer, errors: viewerErrors } = await newPanel(browser, server);
    await login(viewer, { user: "vera", password: "viewer password 1" });
    await viewer.goto("/stacks/webapp/deployments");
    await viewer.getByRole("heading").first().waitFor();
    await viewer.getByText("hello").first().waitFor();
    assert.equal(await viewer.getByRole("button", { name: "Deploy" }).count(), 0);
    await viewer.goto(`/deployments/${firstDeployment}`);
    await viewer.getByRole("heading", { name: `Deployment #${firstDeployment}` }).waitFor();
    assert.equal(await viewer.getByRole("button", { name: "Roll back to this deployment" }).count(), 0);
    const refused = await pageCall(viewer, "POST", "/v1/stacks/webapp/deployments", { app: "hello" });
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    assert.deepEqual(viewerErrors, []);
    await viewerContext.close();
  });

  await step("the audit log names who did what; no console error on any page", async () => {
    await page.goto("/audit");
    await page.getByRole("heading", { name: "Audit log" }).waitFor();
    await page.getByText("deploy").first().waitFor();
    await screenshot(page, "audit", { fullPage: true });
    assert.deepEqual(errors, []);
  });
});

// the deployment's status as the page shows it (its role="status" paragraph)
async function deploymentStatus(page: Page): Promise<string | undefined> {
  const text = (await page.getByRole("status").first().textContent()) ?? "";
  return /\b(pending|running|succeeded|failed|rolled_back|rolled back|interrupted)\b/.exec(text)?.[1];
}

// the status cell of an instance's row in its layer's table
function instanceStatus(page: Page, layer: string, instance: string) {
  return page
    .getByRole("table", { name: `Layer ${layer}` })
    .getByRole("row")
    .filter({ hasText: instance })
    .locator("[data-status]")
    .first();
}

// clicks a button that may ask to be confirmed (ConfirmButton), and confirms
async function confirm(page: Page, button: ReturnType<Page["getByRole"]>): Promise<void> {
  await button.click();
  const yes = page.getByRole("button", { name: /^(Yes|Confirm)/ });
  if (await yes.count()) await yes.first().click();
}

// the distinct values of a status cell's data-status as they change, until `last` (or the timeout)
async function watchStatuses(
  cell: ReturnType<Page["locator"]>,
  last: string,
  timeoutMs: number,
): Promise<string[]> {
  const seen: string[] = [];
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const status = await cell.getAttribute("data-status").catch(() => null);
    if (status !== null && status !== seen.at(-1)) seen.push(status);
    if (status === last) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return seen;
}
