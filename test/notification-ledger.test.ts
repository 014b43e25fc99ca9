import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";

// a cookbook type whose apply writes its file, then, when <path>.kill exists, removes it and kills
// its own process (galley) with SIGKILL: the run dies right after a change that notifies
const killerType = `import { resourceType, v } from "galley";
export default resourceType({
  description: "writes a word, then kill -9 of the galley process",
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
    if ((await host.exec(["rm", desired.path + ".kill"])).exitCode === 0) process.kill(process.pid, "SIGKILL");
  },
});
`;

function apply(kitchen: string, state: string, runList = "app") {
  const result = cli(["apply", runList, "--json", "--state-dir", state], kitchen);
  return { ...result, report: result.stdout ? JSON.parse(result.stdout) : undefined };
}

async function read(file: string): Promise<string> {
  return fs.readFile(file, "utf8").catch(() => "");
}

for (const timing of ["delayed", "immediate"] as const) {
  test(`ledger: killed right after a change that notifies (${timing}), the next run delivers it`, async () => {
    const out = await tempDir();
    const state = await tempDir();
    const text = recipe(`
      r.app_killer("${out}/conf", { word: "v1", notifies: { action: "run", resource: "execute[restart]", timing: "${timing}" } });
      r.execute("after", { command: "echo after >> ${out}/log" });
      r.execute("restart", { command: "echo restarted >> ${out}/log", action: "nothing" });`);
    const kitchen = await makeKitchen({
      app: {
        resources: { killer: killerType },
        recipes: { default: text },
      },
    });
    await fs.writeFile(path.join(out, "conf.kill"), "");
    const killed = cli(["apply", "app", "--state-dir", state], kitchen);
    assert.equal(killed.code, null, `galley should have been killed: ${killed.stderr}`);
    assert.equal(await read(path.join(out, "conf")), "v1");
    assert.equal(await read(path.join(out, "log")), "");
    // the change is in place, so the next run sees conf unchanged: only the ledger knows
    const next = apply(kitchen, state);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.report.resources[0].status, "unchanged");
    assert.deepEqual(
      next.report.notifications.fromPreviousRun.map((n: { target: string }) => n.target),
      ["execute[restart]"],
    );
    // an immediate one runs right after its source, as it would have: before the next resource
    const expected = timing === "immediate" ? "restarted\nafter\n" : "after\nrestarted\n";
    assert.equal(await read(path.join(out, "log")), expected);
    const third = apply(kitchen, state);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(await read(path.join(out, "log")), `${expected}after\n`);
    assert.deepEqual(third.report.notifications.fromPreviousRun, []);
    // killed again after a change, and the next run changes the source once more: one delivery covers both
    const recipeFile = path.join(kitchen, "cookbooks", "app", "recipes", "default.ts");
    await fs.writeFile(recipeFile, text.replace('"v1"', '"v2"'));
    await fs.writeFile(path.join(out, "conf.kill"), "");
    assert.equal(cli(["apply", "app", "--state-dir", state], kitchen).code, null);
    await fs.writeFile(recipeFile, text.replace('"v1"', '"v3"'));
    await fs.writeFile(path.join(out, "log"), "");
    const changedAgain = apply(kitchen, state);
    assert.equal(changedAgain.code, 0, changedAgain.stderr);
    assert.equal(await read(path.join(out, "conf")), "v3");
    assert.equal(await read(path.join(out, "log")), expected);
  });
}

test("ledger: killed after the notified command ran but before the ledger was cleared, the next run runs it again (at least once)", async () => {
  for (const timing of ["delayed", "immediate"]) {
    const out = await tempDir();
    const state = await tempDir();
    // the notified command kills galley the first time, right after it did its work (its parent is
    // `timeout`, whose parent is galley)
    const kitchen = await makeKitchen({
      app: {
        recipes: {
          default: recipe(`
            r.file("${out}/conf", { content: "v1", notifies: { action: "run", resource: "execute[restart]", timing: "${timing}" } });
            r.execute("restart", {
              command: "echo restarted >> ${out}/log; [ -e ${out}/once ] || { touch ${out}/once; kill -9 $(cut -d' ' -f4 /proc/$PPID/stat); }",
              action: "nothing",
            });`),
        },
      },
    });
    const killed = cli(["apply", "app", "--state-dir", state], kitchen);
    assert.equal(killed.code, null, `galley should have been killed (${timing}): ${killed.stderr}`);
    assert.equal(await read(path.join(out, "log")), "restarted\n");
    const next = apply(kitchen, state);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(await read(path.join(out, "log")), "restarted\nrestarted\n", timing);
    assert.equal(next.report.notifications.fromPreviousRun.length, 1);
    const third = apply(kitchen, state);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(await read(path.join(out, "log")), "restarted\nrestarted\n", timing);
  }
});

test("ledger: a notification kept by one run list is not delivered to another cookbook's resource of the same id", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const kitchen = await makeKitchen({
    a: {
      recipes: {
        default: recipe(`
          r.file("${out}/a.conf", { content: "a", notifies: { action: "run", resource: "execute[x]" } });
          r.execute("x", { command: "test -e ${out}/fixed && echo a >> ${out}/log", action: "nothing" });`),
      },
    },
    b: {
      recipes: {
        default: recipe(`
          r.file("${out}/b.conf", { content: "b" });
          r.execute("x", { command: "echo b >> ${out}/log", action: "nothing" });`),
      },
    },
  });
  const first = apply(kitchen, state, "a");
  assert.equal(first.code, 1, first.stderr);
  assert.equal(first.report.notifications.kept.length, 1);
  const other = apply(kitchen, state, "b");
  assert.equal(other.code, 0, other.stderr);
  assert.equal(await read(path.join(out, "log")), "", "b's execute[x] must not receive a's notification");
  assert.deepEqual(other.report.notifications, { fromPreviousRun: [], kept: [] });
  await fs.writeFile(path.join(out, "fixed"), "");
  const again = apply(kitchen, state, "a");
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await read(path.join(out, "log")), "a\n");
});

test("ledger: a notification whose target is gone is reported once, listed, and dropped with galley notifications drop", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const kitchen = await makeKitchen({
    a: {
      recipes: {
        default: recipe(`
          r.file("${out}/a.conf", { content: "a", notifies: { action: "run", resource: "execute[x]" } });
          r.execute("x", { command: "exit 1", action: "nothing" });`),
      },
    },
  });
  assert.equal(apply(kitchen, state, "a").code, 1);
  await fs.writeFile(
    path.join(kitchen, "cookbooks", "a", "recipes", "default.ts"),
    recipe(`r.file("${out}/a.conf", { content: "a" });`),
  );
  const reported = cli(["apply", "a", "--state-dir", state], kitchen);
  assert.equal(reported.code, 0, reported.stderr);
  assert.match(reported.stdout, /target is no longer declared: execute\[x\] run/);
  const quiet = apply(kitchen, state, "a");
  assert.equal(quiet.code, 0);
  assert.equal(quiet.report.notifications.vanished, undefined);
  assert.doesNotMatch(cli(["apply", "a", "--state-dir", state], kitchen).stdout, /no longer declared/);
  const listed = cli(["notifications", "list", "--state-dir", state, "--json"], kitchen);
  assert.equal(listed.code, 0, listed.stderr);
  const entries = JSON.parse(listed.stdout).notifications;
  assert.equal(entries.length, 1);
  assert.equal(entries[0].target, "execute[x]");
  assert.equal(entries[0].scope, "cookbook:a");
  assert.ok(entries[0].reported);
  assert.equal(cli(["notifications", "drop", "nope", "--state-dir", state], kitchen).code, 2);
  const dropped = cli(["notifications", "drop", entries[0].id, "--state-dir", state], kitchen);
  assert.equal(dropped.code, 0, dropped.stderr);
  assert.match(dropped.stdout, /dropped .*execute\[x\]/);
  const empty = cli(["notifications", "list", "--state-dir", state], kitchen);
  assert.match(empty.stdout, /no notifications kept/);
});

test("ledger and backups: no secret in the ledger file or the backup tree; older backups go when the file turns sensitive", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const write = (body: string) =>
    makeKitchen({
      app: {
        recipes: {
          default: `import { sensitive } from "galley";\nexport default async function (r) {\n${body}\n}\n`,
        },
      },
    });
  // backups of a plain file are kept (5 by default) ...
  for (const word of ["first-plain-AAAA", "second-plain-BBBB"]) {
    const kitchen = await write(`r.file("${out}/db.conf", { content: "password=${word}" });`);
    assert.equal(apply(kitchen, state).code, 0);
  }
  assert.match(await treeText(path.join(state, "backup")), /first-plain-AAAA/);
  // ... until it is sensitive: then none, and the earlier ones are removed
  const secret = `r.file("${out}/db.conf", { content: "password=hunter2-rotated-CCCC", sensitive: true,
      notifies: { action: "run", resource: "execute[reload hunter2-in-the-name]" } });
    r.execute("reload hunter2-in-the-name", { command: "test -e ${out}/ok", action: "nothing", sensitive: true });
    r.file("${out}/api.conf", { content: "token=" + sensitive("s3cr3t-token-DDDD") });`;
  const kitchen = await write(secret);
  assert.equal(apply(kitchen, state).code, 1);
  const again = await write(secret.replace("CCCC", "EEEE").replace("DDDD", "FFFF"));
  assert.equal(apply(again, state).code, 1);
  assert.equal(await read(path.join(out, "db.conf")), "password=hunter2-rotated-EEEE");
  const backups = await treeText(path.join(state, "backup"));
  assert.doesNotMatch(backups, /AAAA|BBBB|CCCC|DDDD|hunter2|s3cr3t/);
  const ledger = await read(path.join(state, "notifications.json"));
  assert.match(ledger, /execute\[\(sensitive\)\]/);
  assert.doesNotMatch(ledger, /hunter2/);
});

/** Every file name and content below a folder, as one text. */
async function treeText(dir: string): Promise<string> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const parts: string[] = [];
  for (const entry of entries) {
    const full = path.join(entry.parentPath, entry.name);
    parts.push(full);
    if (entry.isFile()) parts.push(await fs.readFile(full, "utf8"));
  }
  return parts.join("\n");
}
