import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { mintToken } from "../src/server/auth.ts";
import { testServer } from "../src/server/test-support.ts";
import {
  addUser,
  launchBrowser,
  login,
  newPanel,
  noChromium,
  type PageGlobals,
  pageCall,
  pageWidths,
  screenshot,
} from "./support/browser.ts";

// The web panel in Chromium without container hosts (fast): logging in with a token and with a
// user, a wrong password, logging out, a stack whose instances never ran, what a viewer is not
// offered, the keyboard, a 375 px window, and the CSP (no console errors on any page).

const stackFile = `name: shop
layers:
  - name: web
    recipes: { configure: [web::configure] }
  - name: db
instances:
  - { name: web1, layers: [web], provider: { type: container } }
  - { name: web2, layers: [web], provider: { type: container } }
  - { name: db1, layers: [db], provider: { type: container } }
`;

test("the web panel without hosts", { skip: noChromium, timeout: 180_000 }, async (t) => {
  const kitchen = await tempDir("galley-panel-basics-");
  await fs.mkdir(path.join(kitchen, "stacks"));
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.writeFile(path.join(kitchen, "stacks", "shop.yaml"), stackFile);
  const server = await testServer(t, { whole: true, kitchen });
  const browser = await launchBrowser(t, [server]);
  const admin = { token: server.adminToken };
  await addUser(server, "alice", "correct horse battery", [{ stack: "shop", role: "viewer" }]);
  const viewer = await mintToken(server.ctx.store, {
    name: "watcher",
    grants: [{ stack: "shop", role: "viewer" }],
  });

  await t.test(
    "the login page, then the stacks page with a token; the session cookie is locked down",
    async () => {
      const { context, page, errors } = await newPanel(browser, server);
      await page.goto("/");
      await page.waitForURL("**/login**");
      await page.getByRole("button", { name: "Log in" }).first().waitFor();
      await screenshot(page, "login");
      await login(page, admin);
      await page.getByRole("heading", { name: "Stacks" }).waitFor();
      await page.getByRole("link", { name: "shop", exact: true }).waitFor();
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === "__Host-galley_session");
      assert.ok(session, `a session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
      assert.deepEqual(
        [session.secure, session.httpOnly, session.sameSite, session.path],
        [true, true, "Strict", "/"],
      );
      // (page.request would not do: it runs outside Chromium, without the pin)
      const headers = (await page.goto("/stacks/shop"))?.headers() ?? {};
      assert.equal(
        headers["content-security-policy"],
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      );
      assert.equal(headers["x-content-type-options"], "nosniff");
      assert.deepEqual(errors, []);
      await context.close();
    },
  );

  await t.test("a module that fails to download: the page loads again by itself (boot.ts)", async () => {
    const { context, page } = await newPanel(browser, server);
    // the first two downloads of a module main.ts imports fail, as a network blink fails them
    let refused = 0;
    await page.route("**/ui/api.ts", (route) =>
      refused++ < 2 ? route.abort("internetdisconnected") : route.continue(),
    );
    await page.goto("/login");
    await page.getByLabel("Token", { exact: true }).waitFor();
    assert.equal(refused, 3, "two failed downloads, then one that worked after the reloads");
    await context.close();
  });

  await t.test("a user logs in with a password; a wrong one is refused with one message", async () => {
    const { context, page, errors } = await newPanel(browser, server);
    await page.goto("/login");
    await page.getByLabel("User", { exact: true }).fill("alice");
    await page.getByLabel("Password", { exact: true }).fill("wrong horse");
    await passwordForm(page).getByRole("button", { name: "Log in" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? "", /./);
    assert.equal(new URL(page.url()).pathname, "/login");
    await login(page, { user: "alice", password: "correct horse battery" });
    await page.getByRole("heading", { name: "Stacks" }).waitFor();
    await page.getByRole("link", { name: "shop", exact: true }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  await t.test("log out: the session ends and the panel asks for a login again", async () => {
    const { context, page, errors } = await newPanel(browser, server);
    await login(page, admin);
    await page.getByRole("heading", { name: "Stacks" }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL("**/login**");
    const after = await pageCall(page, "GET", "/v1/session");
    assert.equal(after.status, 401);
    await page.goto("/stacks/shop");
    await page.waitForURL("**/login**");
    assert.deepEqual(errors, []);
    await context.close();
  });

  await t.test(
    "a stack whose instances never ran: its layers, instances stopped, the admin's actions",
    async () => {
      const { context, page, errors } = await newPanel(browser, server);
      await login(page, admin);
      await page.getByRole("link", { name: "shop", exact: true }).click();
      await page.getByRole("heading", { name: "shop", exact: true }).waitFor();
      const web = page.getByRole("table", { name: "Layer web" });
      await web.waitFor();
      await page.getByRole("table", { name: "Layer db" }).waitFor();
      assert.equal(await web.getByRole("row").filter({ hasText: "web1" }).count(), 1);
      const status = await page.locator("[data-status]").first().getAttribute("data-status");
      assert.equal(status, "stopped");
      await page.getByRole("button", { name: "Start web1" }).waitFor();
      await page.getByLabel("Event", { exact: true }).waitFor();
      await page.getByRole("button", { name: "Run event" }).waitFor();
      await page.getByLabel("Recipes", { exact: true }).waitFor();
      await page.getByLabel("New stack name", { exact: true }).waitFor();
      assert.deepEqual(errors, []);
      await context.close();
    },
  );

  await t.test("a viewer sees the stack but no action; the API refuses it a change", async () => {
    const { context, page, errors } = await newPanel(browser, server);
    await login(page, { token: viewer.secret });
    await page.goto("/stacks/shop");
    await page.getByRole("table", { name: "Layer web" }).waitFor();
    for (const name of ["Start web1", "Run event", "Run recipes", "Clone stack"])
      assert.equal(await page.getByRole("button", { name }).count(), 0, `no "${name}" for a viewer`);
    const refused = await pageCall(page, "POST", "/v1/stacks/shop/instances/web1/start", { wait: false });
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    assert.deepEqual(errors, []);
    await context.close();
  });

  await t.test(
    "an admin adds a user on the Users page; as a deployer they may run events, not start instances",
    async () => {
      const { context, page, errors } = await newPanel(browser, server);
      await login(page, admin);
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
      await page.getByRole("heading", { name: "Users", exact: true }).waitFor();
      await page.getByLabel("Name", { exact: true }).fill("bob");
      await page
        .locator("form", { has: page.getByLabel("Name", { exact: true }) })
        .getByLabel("Password", { exact: true })
        .fill("bob's long password");
      await page.getByLabel("Grants", { exact: true }).fill("shop:deployer");
      await page.getByRole("button", { name: "Add user" }).click();
      await page.getByRole("table", { name: "Users" }).getByRole("row").filter({ hasText: "bob" }).waitFor();
      assert.deepEqual(errors, []);
      await context.close();
      const bob = await newPanel(browser, server);
      await login(bob.page, { user: "bob", password: "bob's long password" });
      await bob.page.goto("/stacks/shop");
      await bob.page.getByRole("button", { name: "Run event" }).waitFor();
      assert.equal(await bob.page.getByRole("button", { name: "Start web1" }).count(), 0);
      // the Users page gives bob his own password, not the others'
      await bob.page.goto("/users");
      await bob.page.getByRole("button", { name: "Change password" }).waitFor();
      assert.equal(await bob.page.getByRole("button", { name: "Add user" }).count(), 0);
      assert.deepEqual(bob.errors, []);
      await bob.context.close();
    },
  );

  await t.test("a change with the cookie but without the CSRF header is refused", async () => {
    const { context, page } = await newPanel(browser, server);
    await login(page, admin);
    const status = await page.evaluate(async () => {
      const res = await fetch("/v1/stacks/shop/instances/web1/start", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ wait: false }),
      });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(status.status, 403);
    assert.equal((status.body as { error: { code: string } }).error.code, "CSRF_REFUSED");
    await context.close();
  });

  await t.test(
    "the keyboard alone: Tab reaches the navigation, Enter follows a link; focus is visible",
    async () => {
      const { context, page, errors } = await newPanel(browser, server);
      await login(page, admin);
      await page.goto("/stacks/shop");
      await page.getByRole("heading", { name: "shop", exact: true }).waitFor();
      let inNav = false;
      for (let i = 0; i < 30 && !inNav; i++) {
        await page.keyboard.press("Tab");
        inNav = (await page.locator("nav a:focus").count()) === 1;
      }
      assert.ok(inNav, "a link of the navigation takes the focus by Tab");
      const focused = page.locator(":focus");
      const focus = await focused.evaluate((element) => {
        const style = (globalThis as unknown as PageGlobals).getComputedStyle(element);
        return { outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow };
      });
      assert.ok(
        (focus.outline !== "none" && focus.width !== "0px") || focus.shadow !== "none",
        `visible focus: ${JSON.stringify(focus)}`,
      );
      // the focused link is "Stacks" or another page; Enter goes there without a mouse
      const href = await focused.getAttribute("href");
      await page.keyboard.press("Enter");
      await page.waitForURL((url) => url.pathname === href);
      assert.deepEqual(errors, []);
      await context.close();
    },
  );

  await t.test(
    "a 375 px window: no page-wide horizontal scrolling on the stacks and stack pages",
    async () => {
      const { context, page, errors } = await newPanel(browser, server, { width: 375, height: 740 });
      await login(page, admin);
      for (const at of ["/", "/stacks/shop", "/audit"]) {
        await page.goto(at);
        await page.locator("main h1, h1").first().waitFor();
        const widths = await pageWidths(page);
        assert.ok(
          widths.scroll <= widths.client && widths.body <= widths.client,
          `${at}: ${JSON.stringify(widths)}`,
        );
      }
      await page.goto("/stacks/shop");
      await page.getByRole("table", { name: "Layer web" }).waitFor();
      await screenshot(page, "stack-narrow", { fullPage: true });
      assert.deepEqual(errors, []);
      await context.close();
    },
  );
});

// the login page's form with the user and password fields
function passwordForm(page: import("playwright-core").Page) {
  return page.locator("form", { has: page.getByLabel("Password", { exact: true }) });
}
