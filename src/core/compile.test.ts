import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { compileRunList } from "../cookbooks/solo.ts";
import { LocalHost } from "../hosts/local.ts";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { GalleyError } from "./errors.ts";

const host = new LocalHost();

async function compileKitchen(root: string, runList: string[], attributeFiles: string[] = []) {
  return compileRunList({ runList, cookbooksDir: path.join(root, "cookbooks"), attributeFiles, host });
}

async function compileError(root: string, runList: string[]): Promise<GalleyError> {
  try {
    await compileKitchen(root, runList);
  } catch (error) {
    assert.ok(error instanceof GalleyError, `expected a GalleyError, got ${error}`);
    return error;
  }
  assert.fail("compile should have failed");
}

test("compile: a catalog of plain JSON in declaration order, with attributes merged over defaults", async () => {
  const root = await makeKitchen({
    app: {
      attributes: { "default.yaml": "app:\n  port: 80\n  name: demo\n" },
      recipes: {
        default: recipe(`
          r.directory("/tmp/galley-app", {});
          r.file("/tmp/galley-app/conf", { content: "port=" + r.attrs.app.port + " name=" + r.attrs.app.name });`),
      },
    },
  });
  const attrs = path.join(root, "attrs.json");
  await import("node:fs/promises").then((fs) => fs.writeFile(attrs, JSON.stringify({ app: { port: 8080 } })));
  const catalog = await compileKitchen(root, ["app"], [attrs]);
  assert.deepEqual(
    catalog.resources.map((r) => r.id),
    ["directory[/tmp/galley-app]", "file[/tmp/galley-app/conf]"],
  );
  assert.equal(catalog.resources[1]!.props.content, "port=8080 name=demo");
  assert.deepEqual(catalog.edges, [
    { from: "directory[/tmp/galley-app]", to: "file[/tmp/galley-app/conf]", reason: "parent" },
  ]);
  assert.equal(catalog.resources[1]!.source.line, 4);
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(catalog)));
});

test("compile: an unknown property names the resource, the recipe file and line, and what is accepted", async () => {
  const root = await makeKitchen({
    app: { recipes: { default: recipe(`\n  r.file("/tmp/x", { mdoe: "0644" });`) } },
  });
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "RESOURCE_INVALID");
  assert.match(error.message, /file\[\/tmp\/x\] \(.*cookbooks\/app\/recipes\/default\.ts:3\)/);
  assert.match(error.message, /unknown property "mdoe"/);
  assert.match(error.message, /accepts: path, content/);
  assert.match(error.hint ?? "", /galley explain file/);
});

test("compile: an unknown type and an unknown action are errors with locations", async () => {
  const unknownType = await makeKitchen({ app: { recipes: { default: recipe(`r.fiel("/tmp/x", {});`) } } });
  const typeError = await compileError(unknownType, ["app"]);
  assert.equal(typeError.code, "RESOURCE_UNKNOWN_TYPE");
  assert.match(typeError.message, /"fiel" at .*default\.ts:2/);
  const unknownAction = await makeKitchen({
    app: { recipes: { default: recipe(`r.file("/tmp/x", { action: "craete" });`) } },
  });
  const actionError = await compileError(unknownAction, ["app"]);
  assert.match(actionError.message, /unknown action "craete"; file has: create, delete/);
});

test("compile: identical duplicates merge, conflicting ones name both places", async () => {
  const same = await makeKitchen({
    app: {
      recipes: {
        default: recipe(`r.file("/tmp/d", { content: "a" });\nr.file("/tmp/d", { content: "a" });`),
      },
    },
  });
  assert.equal((await compileKitchen(same, ["app"])).resources.length, 1);
  const conflict = await makeKitchen({
    app: {
      recipes: {
        default: recipe(`r.file("/tmp/d", { content: "a" });\nr.file("/tmp/d", { content: "b" });`),
      },
    },
  });
  const error = await compileError(conflict, ["app"]);
  assert.equal(error.code, "RESOURCE_CONFLICT");
  assert.match(error.message, /default\.ts:3\) is declared again .* first declared at .*default\.ts:2/);
});

test("compile: a dependency cycle names every resource on it", async () => {
  const root = await makeKitchen({
    app: {
      recipes: {
        default: recipe(`
          r.file("/tmp/a", { requires: "file[/tmp/c]" });
          r.file("/tmp/b", { requires: "file[/tmp/a]" });
          r.file("/tmp/c", { requires: "file[/tmp/b]" });
          r.file("/tmp/free", {});`),
      },
    },
  });
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "DEPENDENCY_CYCLE");
  for (const id of ["file[/tmp/a]", "file[/tmp/b]", "file[/tmp/c]"])
    assert.ok(error.message.includes(id), id);
  assert.ok(!error.message.includes("/tmp/free"));
});

test("compile: handles work as ids; notifications to undeclared resources are errors", async () => {
  const root = await makeKitchen({
    app: {
      recipes: {
        default: recipe(`
          const conf = r.file("/tmp/h/conf", { content: "x" });
          r.file("/tmp/h/other", { requires: conf, notifies: { action: "touch", resource: conf } });`),
      },
    },
  });
  const catalog = await compileKitchen(root, ["app"]);
  assert.deepEqual(catalog.resources[1]!.requires, ["file[/tmp/h/conf]"]);
  const missing = await makeKitchen({
    app: {
      recipes: {
        default: recipe(`r.file("/tmp/x", { notifies: { action: "restart", resource: "service[nope]" } });`),
      },
    },
  });
  const error = await compileError(missing, ["app"]);
  assert.equal(error.code, "RESOURCE_NOT_FOUND");
  assert.match(error.message, /notifies service\[nope\], which is not declared/);
});

test("compile: include runs a recipe once, and only from a declared dependency", async () => {
  const root = await makeKitchen({
    base: { recipes: { default: recipe(`r.file("/tmp/base", { content: "b" });`) } },
    app: {
      depends: { base: ">= 1.0.0" },
      recipes: {
        default: recipe(
          `await r.include("base");\nawait r.include("base::default");\nr.file("/tmp/app", {});`,
        ),
      },
    },
    rogue: { recipes: { default: recipe(`await r.include("base");`) } },
  });
  const catalog = await compileKitchen(root, ["app", "base"]);
  assert.deepEqual(
    catalog.resources.map((r) => r.id),
    ["file[/tmp/base]", "file[/tmp/app]"],
  );
  const error = await compileError(root, ["rogue"]);
  assert.match(error.message, /cookbook rogue does not depend on base/);
});

test("compile: a recipe that throws is reported with its file and line", async () => {
  const root = await makeKitchen({ app: { recipes: { default: recipe(`\n\n  r.attrs.missing.port;`) } } });
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "RECIPE_FAILED");
  assert.match(
    error.message,
    /recipe app::default failed at .*default\.ts:4: Cannot read properties of undefined/,
  );
});

test("compile: unknown cookbooks and recipes list what exists", async () => {
  const root = await makeKitchen({ app: { recipes: { default: recipe(""), db: recipe("") } } });
  const cookbook = await compileError(root, ["nope"]);
  assert.equal(cookbook.code, "COOKBOOK_NOT_FOUND");
  assert.match(cookbook.hint ?? "", /cookbooks found: app/);
  const missingRecipe = await compileError(root, ["app::web"]);
  assert.equal(missingRecipe.code, "RECIPE_NOT_FOUND");
  assert.match(missingRecipe.hint ?? "", /app::db, app::default/);
});

test("compile: a bad cookbook.yaml names the file, line and field", async () => {
  const root = await makeKitchen({ app: { recipes: { default: recipe("") } } });
  await import("node:fs/promises").then((fs) =>
    fs.writeFile(path.join(root, "cookbooks/app/cookbook.yaml"), "name: app\nversion: one\n"),
  );
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "COOKBOOK_INVALID");
  assert.match(error.message, /cookbook\.yaml:2: version: a semantic version/);
});

test("compile: templates render ERB-style and a bad template names its file and line", async () => {
  const root = await makeKitchen({
    app: {
      templates: {
        "a.eta": "top\n<% for (const s of it.list) { -%>\n- <%= s %>\n<% } -%>\nend <%= it.x %>\n",
        "bad.eta": "ok\n<%= it.nope.deeper %>\n",
      },
      recipes: {
        default: recipe(`r.template("/tmp/t", { source: "a.eta", variables: { list: [1, 2], x: "<&>" } });`),
        bad: recipe(`r.template("/tmp/t2", { source: "bad.eta" });`),
      },
    },
  });
  const catalog = await compileKitchen(root, ["app"]);
  assert.equal(catalog.resources[0]!.props.content, "top\n- 1\n- 2\nend <&>\n");
  const error = await compileError(root, ["app::bad"]);
  assert.equal(error.code, "TEMPLATE_FAILED");
  assert.match(error.message, /bad\.eta:2/);
});

test("compile: a template shared by many resources renders each one's variables, partials included", async () => {
  const root = await makeKitchen({
    app: {
      templates: {
        "site.eta": "server <%= it.name %>\n<%~ include('./parts/port.eta', it) %>",
        "parts/port.eta": "listen <%= it.port %>\n",
      },
      recipes: {
        default: recipe(
          `for (let i = 0; i < 3; i++) r.template("/tmp/site" + i, { source: "site.eta", variables: { name: "s" + i, port: 8000 + i } });`,
        ),
      },
    },
  });
  const catalog = await compileKitchen(root, ["app"]);
  assert.deepEqual(
    catalog.resources.map((resource) => resource.props.content),
    ["server s0\nlisten 8000\n", "server s1\nlisten 8001\n", "server s2\nlisten 8002\n"],
  );
});

test("compile: a dependency whose version does not satisfy the constraint is an error naming both", async () => {
  const root = await makeKitchen({
    base: { version: "1.4.0", recipes: { default: recipe("") } },
    app: { depends: { base: "^2.0" }, recipes: { default: recipe(`await r.include("base");`) } },
  });
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "DEPENDENCY_CONFLICT");
  assert.match(error.message, /cookbook app 1\.0\.0 depends on base \^2\.0, but base is 1\.4\.0/);
});

test("compile: a cookbook whose supports leaves out this host's platform stops the run", async () => {
  const root = await makeKitchen({ app: { recipes: { default: recipe("") } } });
  const meta = path.join(root, "cookbooks", "app", "cookbook.yaml");
  const fs = await import("node:fs/promises");
  await fs.appendFile(meta, "supports: [freebsd, openbsd]\n");
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "PLATFORM_UNSUPPORTED");
  assert.match(error.message, /cookbook app supports freebsd, openbsd; this host is \w+/);
  const facts = await host.facts();
  await fs.writeFile(
    meta,
    (await fs.readFile(meta, "utf8")).replace("[freebsd, openbsd]", `[freebsd, ${facts.os.id}]`),
  );
  await compileKitchen(root, ["app"]);
});

test("compile: a NUL byte in a path, a command or a name is RESOURCE_INVALID naming the resource and line", async () => {
  const root = await makeKitchen({
    app: {
      recipes: {
        path: recipe(`\n  r.file("/tmp/a\\0b", { content: "x" });`),
        command: recipe(`\n\n  r.execute("run", { command: ["echo", "a\\0b"] });`),
        owner: recipe(`r.directory("/tmp/d", { owner: "ro\\0ot" });`),
      },
    },
  });
  const path_ = await compileError(root, ["app::path"]);
  assert.equal(path_.code, "RESOURCE_INVALID");
  assert.match(
    path_.message,
    /^file\[\/tmp\/a\\0b\] \(.*path\.ts:3\): property "path": must not contain a NUL byte/,
  );
  const command = await compileError(root, ["app::command"]);
  assert.equal(command.code, "RESOURCE_INVALID");
  assert.match(command.message, /^execute\[run\] \(.*command\.ts:4\): command\.1: a NUL byte/);
  const owner = await compileError(root, ["app::owner"]);
  assert.match(owner.message, /^directory\[\/tmp\/d\] \(.*owner\.ts:2\): owner: a NUL byte/);
});

test("compile: a !!binary attribute is ATTRIBUTES_INVALID at its file and line, not a recipe's failure", async () => {
  const root = await makeKitchen({
    app: {
      recipes: { default: recipe("r.attrs.app;") },
      attributes: { "default.yaml": "app:\n  port: 80\n  key: !!binary aGVsbG8=\n" },
    },
  });
  const error = await compileError(root, ["app"]);
  assert.equal(error.code, "ATTRIBUTES_INVALID");
  assert.match(error.message, /attributes\/default\.yaml:3: the tag !!binary is not supported/);
});

test("compile: a dependency named constructor or __proto__ is refused, not silently dropped", async () => {
  for (const name of ["constructor", "__proto__", "prototype"]) {
    const root = await makeKitchen({ app: { recipes: { default: recipe("") }, depends: { [name]: "*" } } });
    const error = await compileError(root, ["app"]);
    assert.equal(error.code, "COOKBOOK_INVALID", error.message);
    assert.match(error.message, new RegExp(`cookbook\\.yaml:5: "${name}" cannot be used as a key`));
  }
  const root = await makeKitchen({ app: { recipes: { default: recipe("") } } });
  await import("node:fs/promises").then((fs) =>
    fs.writeFile(
      path.join(root, "cookbooks/app/cookbook.yaml"),
      "name: app\nversion: 1.0.0\ndepends: [constructor]\n",
    ),
  );
  const listed = await compileError(root, ["app"]);
  assert.equal(listed.code, "COOKBOOK_INVALID");
  assert.match(
    listed.message,
    /cookbook\.yaml:3: depends: a cookbook cannot be named __proto__, constructor or prototype/,
  );
});
