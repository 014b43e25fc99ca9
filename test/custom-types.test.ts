import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { compileRun, compileRunList } from "../src/cookbooks/solo.ts";
import { converge } from "../src/core/converge.ts";
import type { GalleyError } from "../src/core/errors.ts";
import { LocalHost } from "../src/hosts/local.ts";
import { tempDir } from "../src/resources/testing.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";

const host = new LocalHost();

// a composite type: a site folder with a config rendered from the cookbook's own template
const siteType = `import { composite, v } from "galley";
export default composite({
  description: "a static site: its folder and its config",
  properties: {
    root: v.string(),
    port: v.optional(v.pipe(v.number(), v.integer()), 8080),
  },
  actions: ["create", "delete"],
  body(r, { name, action, props }) {
    if (action === "delete") {
      r.directory(props.root + "/" + name, { action: "delete", recursive: true });
      return;
    }
    r.directory(props.root + "/" + name, { mode: "0755" });
    r.template(props.root + "/" + name + "/site.conf", {
      source: "site.conf.eta",
      variables: { name, port: props.port },
    });
  },
});
`;

// a low-level type with its own read, diff and apply
const markerType = `import { resourceType, v } from "galley";
export default resourceType({
  description: "a marker file holding one word",
  properties: { path: v.string(), word: v.string() },
  actions: ["create"],
  nameProperty: "path",
  async read(host, props) {
    const data = await host.readFile(props.path);
    return data === undefined ? undefined : { word: new TextDecoder().decode(data) };
  },
  diff(current, desired) {
    return current?.word === desired.word ? [] : [{ property: "word", from: current?.word, to: desired.word }];
  },
  async apply(host, desired) {
    await host.writeFile(desired.path, desired.word);
  },
});
`;

async function siteKitchen(appRecipe: string, appDepends: Record<string, string> = { web: "^1.0" }) {
  return makeKitchen({
    web: {
      resources: { site: siteType, marker: markerType },
      templates: { "site.conf.eta": "server <%= it.name %>\nlisten <%= it.port %>\n" },
    },
    app: { depends: appDepends, recipes: { default: appRecipe } },
  });
}

function compileApp(root: string) {
  return compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
  });
}

async function run(root: string, mode: "apply" | "plan" = "apply") {
  const { catalog, types } = await compileRun({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
  });
  const report = await converge(catalog, host, { mode, stateDir: await tempDir("galley-state-"), types });
  return { catalog, report };
}

test("custom types: a composite expands into its resources at compile time, converges twice, and notifies", async () => {
  const target = await tempDir();
  const root = await siteKitchen(
    recipe(`
      r.web_site("blog", { root: ${JSON.stringify(target)}, port: 9000,
        notifies: { action: "create", resource: "file[${target}/reloaded]" } });
      r.file("${target}/reloaded", { content: "reloaded\\n", action: "nothing" });
      r.web_marker("${target}/marker", { word: "hello" });`),
  );
  const first = await run(root);
  const ids = first.catalog.resources.map((r) => r.id);
  // the composite's resources come first, the composite after them
  assert.ok(ids.indexOf(`directory[${target}/blog]`) < ids.indexOf("web_site[blog]"));
  assert.ok(ids.indexOf(`template[${target}/blog/site.conf]`) < ids.indexOf("web_site[blog]"));
  const site = first.catalog.resources.find((r) => r.id === "web_site[blog]")!;
  assert.deepEqual(site.children, [`directory[${target}/blog]`, `template[${target}/blog/site.conf]`]);
  assert.equal(site.props.port, 9000);
  // the child's location is the line in the type's file that declared it
  const child = first.catalog.resources.find((r) => r.id === `template[${target}/blog/site.conf]`)!;
  assert.match(child.source.file, /resources\/site\.ts$/);
  assert.equal(child.source.line, 15);
  assert.equal(
    await fs.readFile(path.join(target, "blog", "site.conf"), "utf8"),
    "server blog\nlisten 9000\n",
  );
  assert.equal(await fs.readFile(path.join(target, "marker"), "utf8"), "hello");
  const siteReport = first.report.resources.find((r) => r.id === "web_site[blog]")!;
  assert.equal(siteReport.status, "changed");
  assert.match(String(siteReport.diff?.[0]?.to), /site\.conf/);
  // its delayed notification ran once
  assert.equal(await fs.readFile(path.join(target, "reloaded"), "utf8"), "reloaded\n");
  assert.equal(first.report.status, "ok");

  const second = await run(root);
  assert.equal(
    second.report.summary.changed,
    0,
    JSON.stringify(second.report.resources.filter((r) => r.status !== "unchanged")),
  );

  // drift inside the composite: only that resource and the composite change
  await fs.writeFile(path.join(target, "blog", "site.conf"), "edited by hand\n");
  const third = await run(root);
  assert.deepEqual(
    third.report.resources
      .filter((r) => r.status === "changed")
      .map((r) => r.id)
      .sort(),
    [`template[${target}/blog/site.conf]`, "web_site[blog]"].sort(),
  );
  // and the composite notified again (its target was already in state)
  assert.deepEqual(
    third.report.resources.find((r) => r.id === `file[${target}/reloaded]`)!.notified?.map((n) => n.by),
    ["web_site[blog]"],
  );
});

test("custom types: properties are validated like built-in ones, with the recipe line", async () => {
  const root = await siteKitchen(recipe(`r.web_site("blog", { root: "/tmp/x", prot: 1 });`));
  await assert.rejects(
    compileApp(root),
    (error: GalleyError) =>
      error.code === "RESOURCE_INVALID" &&
      /web_site\[blog\] \(.*default\.ts:2\): unknown property "prot" \(web_site accepts: root, port\)/.test(
        error.message,
      ),
  );
});

test("custom types: a cookbook may use another cookbook's types only when it depends on it", async () => {
  const root = await siteKitchen(recipe(`r.web_marker("/tmp/galley-marker", { word: "x" });`), {});
  await assert.rejects(
    compileApp(root),
    (error: GalleyError) =>
      error.code === "COOKBOOK_INVALID" &&
      /uses web_marker from cookbook web, but cookbook app does not depend on web/.test(error.message),
  );
});

test("custom types: a composite's guard is asked once and skips all its resources", async () => {
  const target = await tempDir();
  const root = await siteKitchen(
    recipe(`r.web_site("blog", { root: ${JSON.stringify(target)}, onlyIf: "test -e ${target}/enabled" });`),
  );
  const skipped = await run(root);
  assert.equal(skipped.report.resources.find((r) => r.id === "web_site[blog]")!.status, "skipped");
  assert.ok(
    skipped.report.resources.filter((r) => r.id.startsWith("template")).every((r) => r.status === "skipped"),
  );
  await assert.rejects(fs.stat(path.join(target, "blog")));
  await fs.writeFile(path.join(target, "enabled"), "");
  const applied = await run(root);
  assert.equal(applied.report.resources.find((r) => r.id === "web_site[blog]")!.status, "changed");
});

test("custom types: notifying a composite is refused with a hint", async () => {
  const root = await siteKitchen(
    recipe(`r.web_site("blog", { root: "/tmp/x" });
      r.file("/tmp/galley-n", { content: "x", notifies: { action: "create", resource: "web_site[blog]" } });`),
  );
  await assert.rejects(
    compileApp(root),
    (error: GalleyError) =>
      error.code === "RESOURCE_INVALID" &&
      /a composite/.test(error.message) &&
      /notify the resources inside/.test(error.hint ?? ""),
  );
});

test("custom types: a file in resources/ that defines no type is a clear error", async () => {
  const root = await makeKitchen({
    web: { resources: { broken: "export default { description: 'x' };\n" } },
    app: { depends: { web: "*" }, recipes: { default: recipe("") } },
  });
  await assert.rejects(
    compileApp(root),
    (error: GalleyError) =>
      error.code === "COOKBOOK_INVALID" &&
      /resources\/broken\.ts does not define a resource type/.test(error.message),
  );
});
