import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { CatalogResource } from "../../src/core/catalog.ts";
import { compileRun } from "../../src/cookbooks/solo.ts";
import { LocalHost } from "../../src/hosts/local.ts";
import { loadStack } from "../../src/stacks/stack.ts";
import { buildStackState, StackView } from "../../src/stacks/state.ts";

// The lb cookbook's configure compiled against the webapp stack: which server each run drains
// through HAProxy's runtime API, from the stack state's `inService` and `lb.out_of_service`.

const here = path.dirname(fileURLToPath(import.meta.url));
const stackFile = path.join(here, "stacks", "webapp.yaml");
const online = ["lb1", "app1", "app2", "app3", "db1"];

async function compileLb(
  options: { notInService?: string[]; outOfService?: string[]; weights?: Record<string, number> } = {},
): Promise<CatalogResource[]> {
  // its secrets.yaml decrypted with the demo's throwaway key
  const stack = await loadStack(stackFile, {
    key: async () => Buffer.from((await readFile(path.join(here, "secret.example.key"), "utf8")).trim()),
  });
  const state = buildStackState(
    stack,
    online.map((name, i) => ({ name, status: "online" as const, address: `10.9.0.${i + 2}` })),
  );
  // the field a deployment sets while it drains an instance (the stack state gains it in issue 12)
  for (const instance of state.instances) {
    if (options.notInService?.includes(instance.name)) Object.assign(instance, { inService: false });
    const weight = options.weights?.[instance.name];
    if (weight !== undefined) Object.assign(instance, { weight });
  }
  const attributes = {
    ...stack.attributes,
    ...(options.outOfService ? { lb: { out_of_service: options.outOfService } } : {}),
  };
  const { catalog } = await compileRun({
    runList: ["lb::configure"],
    cookbooksDir: path.resolve(path.dirname(stackFile), stack.cookbooks),
    attributeFiles: [],
    host: new LocalHost("lb1"),
    layers: [{ source: { level: "stack", label: `stack ${stack.name}` }, values: attributes }],
    stack: new StackView(state, "lb1", { event: "configure", version: 1 }),
  });
  return catalog.resources;
}

/** The NAME=STATE arguments of the runtime-state execute, and of its guard (the same list). */
function wanted(resources: CatalogResource[]): string[] {
  const states = resources.find((r) => r.id === "execute[haproxy server states of app]");
  assert.ok(states, "the runtime-state execute is in the catalog");
  const command = states.props.command as string[];
  const guard = (states.notIf as { command: string[] }).command;
  assert.deepEqual(command.slice(0, 4), ["sh", "-c", command[2], "sh"]);
  assert.equal(command[4], "apply");
  assert.equal(guard[4], "check");
  assert.deepEqual(guard.slice(5), command.slice(5));
  assert.deepEqual(command.slice(5, 8), ["/run/haproxy/admin.sock", "/var/lib/haproxy/server-state", "app"]);
  return command.slice(8);
}

test("lb configure: every online app instance ready when all are in service", async () => {
  assert.deepEqual(wanted(await compileLb()), ["app1=ready:100", "app2=ready:100", "app3=ready:100"]);
});

test("lb configure: an instance the stack state marks inService: false is drained", async () => {
  assert.deepEqual(wanted(await compileLb({ notInService: ["app2"] })), [
    "app1=ready:100",
    "app2=drain:100",
    "app3=ready:100",
  ]);
});

test("lb configure: the attribute lb.out_of_service drains the instances it names", async () => {
  assert.deepEqual(wanted(await compileLb({ outOfService: ["app1", "app3"] })), [
    "app1=drain:100",
    "app2=ready:100",
    "app3=drain:100",
  ]);
});

test("lb configure: the stack state's weights (an A/B split) go to HAProxy through the runtime API, no reload", async () => {
  const split = await compileLb({ weights: { app1: 20, app2: 100, app3: 100 } });
  assert.deepEqual(wanted(split), ["app1=ready:20", "app2=ready:100", "app3=ready:100"]);
  const config = (resources: CatalogResource[]) =>
    resources.find((r) => r.id === "template[/etc/haproxy/haproxy.cfg]")!.props.content;
  assert.equal(config(split), config(await compileLb()));
  await assert.rejects(
    compileLb({ weights: { app2: 300 } }),
    /weight 300 is not a whole number from 0 to 256/,
  );
});

test("lb configure: draining changes the runtime states only, never the config (no reload)", async () => {
  const config = (resources: CatalogResource[]) =>
    resources.find((r) => r.id === "template[/etc/haproxy/haproxy.cfg]")!.props.content;
  assert.equal(config(await compileLb({ notInService: ["app1"] })), config(await compileLb()));
  const text = String(config(await compileLb()));
  assert.match(text, /^\tserver-state-file \/var\/lib\/haproxy\/server-state$/m);
  assert.match(text, /^\tload-server-state-from-file global$/m);
  assert.match(text, /^\tstats socket \/run\/haproxy\/admin\.sock .*level admin/m);
});

test("lb configure: the states run after the reload, which runs only when the config changes", async () => {
  const resources = await compileLb();
  const reload = resources.find((r) => r.id === "execute[reload haproxy keeping server states]")!;
  assert.deepEqual(reload.actions, ["nothing"]);
  const ids = resources.map((r) => r.id);
  assert.ok(
    ids.indexOf("template[/etc/haproxy/haproxy.cfg]") < ids.indexOf("execute[haproxy server states of app]"),
  );
  assert.ok(ids.indexOf(reload.id) < ids.indexOf("execute[haproxy server states of app]"));
});

test("lb configure: lb.out_of_service that is not a list of names fails the compile, naming it", async () => {
  await assert.rejects(
    compileLb({ outOfService: "app1" as unknown as string[] }),
    /lb\.out_of_service must be a list of instance names/,
  );
});
