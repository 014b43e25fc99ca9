import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { test } from "node:test";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { prepareCookbooks } from "../cookbooks/prepared.ts";
import { processSecrets, Secrets, withSecrets } from "../core/secrets.ts";
import { LocalHost } from "../hosts/local.ts";
import { tempDir } from "../resources/testing.ts";
import { type FleetMember, type FleetPlan, type HostOutcome, runFleet } from "./pipeline.ts";

// Two runs in one process (what a server does with two lifecycle events at once) each own a secret
// registry: each hides its own secrets, and a value that is a secret of one run is an ordinary
// string in the other. Real local hosts, real kitchens, real converges.

/** The local machine as a fleet host, with its state in its own folder. */
class FolderHost extends LocalHost {
  async close(): Promise<void> {}
}

/** A fresh secret: `prefix-` and random hex, with the two halves its recipe prints without naming it. */
function token(prefix: string): { value: string; head: string; tail: string } {
  const tail = randomBytes(8).toString("hex");
  return { value: `${prefix}-${tail}`, head: `${prefix}-`, tail };
}

/** One host named `name`, converging into `out`, with its state dir in a temp folder. */
async function member(name: string, out: string): Promise<FleetMember> {
  return {
    name,
    target: { name, stateDir: await tempDir("galley-t-state-") } as FleetMember["target"],
    attributes: [{ source: { level: "instance", label: `host ${name}` }, values: { out } }],
  };
}

function plan(root: string, members: FleetMember[]): FleetPlan {
  const hosts = new Map(members.map((m) => [m.name, new FolderHost(m.name)]));
  return {
    batches: [members],
    mode: "apply",
    forks: 2,
    compile: { runList: ["app"], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
    connect: async (target) => hosts.get(target.name)!,
  };
}

function reportOf(outcome: HostOutcome | undefined) {
  assert.ok(outcome && "report" in outcome, JSON.stringify(outcome));
  return outcome.report;
}

test("two runs at once: each scrubs and marks sensitive its own secrets only, and the process registry gets neither", async () => {
  process.env.GALLEY_CACHE_DIR = await tempDir("galley-t-cache-");
  const alpha = token("alpha");
  const bravo = token("bravo");
  const charlie = token("charlie"); // marked in alpha's attributes (!sensitive), ordinary in bravo's recipe
  // both recipes register their secret, then wait until the other has: on a process-wide registry each would hide both
  let arrived = 0;
  let release: () => void = () => {};
  const both = new Promise<void>((resolve) => (release = resolve));
  (globalThis as { galleyTestBarrier?: () => Promise<void> }).galleyTestBarrier = () => {
    arrived += 1;
    if (arrived === 2) release();
    return both;
  };
  const kitchen = (mine: ReturnType<typeof token>, theirs: string, attributes: string) =>
    makeKitchen({
      app: {
        attributes: { "default.yaml": attributes },
        recipes: {
          default: `import { sensitive } from "galley";\n${recipe(`
  sensitive(${JSON.stringify(mine.value)});
  await globalThis.galleyTestBarrier();
  r.file(r.attrs.out + "/mine", { content: ${JSON.stringify(mine.value)} + "\\n" });
  r.file(r.attrs.out + "/theirs", { content: ${JSON.stringify(theirs)} + "\\n" });
  if (r.attrs.extra) r.file(r.attrs.out + "/extra", { content: r.attrs.extra + "\\n" });
  r.execute("say", { command: ["sh", "-c", 'printf "%s%s and %s\\\\n" "$1" "$2" "$3" >&2; exit 3', "sh", ${JSON.stringify(mine.head)}, ${JSON.stringify(mine.tail)}, ${JSON.stringify(theirs)}] });`)}`,
        },
      },
    });
  const rootA = await kitchen(alpha, bravo.value, `extra: !sensitive ${charlie.value}\n`);
  const rootB = await kitchen(bravo, `${alpha.value} ${charlie.value}`, "{}\n");
  const outA = await tempDir("galley-t-a-");
  const outB = await tempDir("galley-t-b-");
  const secretsA = new Secrets(processSecrets);
  const secretsB = new Secrets(processSecrets);
  // one run is given its registry, the other runs inside it (as the CLI runs a command)
  const [outcomesA, outcomesB] = await Promise.all([
    runFleet({ ...plan(rootA, [await member("a", outA)]), secrets: secretsA }),
    withSecrets(secretsB, async () => runFleet(plan(rootB, [await member("b", outB)]))),
  ]);
  const a = reportOf(outcomesA.get("a"));
  const b = reportOf(outcomesB.get("b"));
  const textA = JSON.stringify(a);
  const textB = JSON.stringify(b);

  // each run's own secrets: nowhere in its report; its resources holding them are sensitive
  assert.ok(!textA.includes(alpha.value) && !textA.includes(charlie.value), textA);
  assert.ok(!textB.includes(bravo.value), textB);
  const failed = (report: typeof a) => report.resources.find((r) => r.id === "execute[say]")!.error!.message;
  assert.match(failed(a), new RegExp(`\\(sensitive\\) and ${bravo.value}`));
  assert.match(failed(b), new RegExp(`\\(sensitive\\) and ${alpha.value} ${charlie.value}`));
  const diffOf = (report: typeof a, file: string) =>
    JSON.stringify(report.resources.find((r) => r.id === `file[${file}]`)!.diff);
  assert.match(diffOf(a, `${outA}/mine`), /\(sensitive\)/);
  assert.match(diffOf(a, `${outA}/extra`), /\(sensitive\)/);
  assert.match(diffOf(b, `${outB}/mine`), /\(sensitive\)/);

  // the other run's secrets are ordinary strings here: shown, not marked
  assert.ok(diffOf(a, `${outA}/theirs`).includes(bravo.value), diffOf(a, `${outA}/theirs`));
  assert.ok(diffOf(b, `${outB}/theirs`).includes(`${alpha.value} ${charlie.value}`));

  // each registry holds its run's secrets; the process registry, what every run hides, neither
  assert.deepEqual(new Set(secretsA.values()), new Set([alpha.value, charlie.value]));
  assert.deepEqual(new Set(secretsB.values()), new Set([bravo.value]));
  for (const value of [alpha.value, bravo.value, charlie.value])
    assert.ok(!processSecrets.contains(value), `${value} leaked into the process registry`);
});

test("a value an attributes module marks sensitive at its top level is hidden by every run that imports it, not only the first", async () => {
  process.env.GALLEY_CACHE_DIR = await tempDir("galley-t-cache-");
  const secret = token("module");
  const root = await makeKitchen({
    app: {
      attributes: {
        "default.ts": `import { sensitive } from "galley";\nexport default { token: sensitive(${JSON.stringify(secret.value)}) };\n`,
      },
      recipes: {
        default: recipe(`
  r.file(r.attrs.out + "/token", { content: r.attrs.token + "\\n" });
  r.execute("say", { command: ["sh", "-c", 'printf "%s%s\\\\n" "$1" "$2" >&2; exit 3', "sh", ${JSON.stringify(secret.head)}, ${JSON.stringify(secret.tail)}] });`),
      },
    },
  });
  const cookbooksDir = path.join(root, "cookbooks");
  // one prepared set for both runs: the same module file, evaluated once in this process
  const prepared = await prepareCookbooks({ cookbooksDir, runLists: { default: ["app"] } });
  for (const run of ["first", "second"]) {
    const out = await tempDir(`galley-t-${run}-`);
    const secrets = new Secrets(processSecrets);
    const outcomes = await runFleet({ ...plan(root, [await member(run, out)]), prepared, secrets });
    const report = reportOf(outcomes.get(run));
    assert.ok(!JSON.stringify(report).includes(secret.value), `${run} run: ${JSON.stringify(report)}`);
    assert.equal(
      report.resources.find((r) => r.id === "execute[say]")!.error!.message.includes("(sensitive)"),
      true,
    );
    assert.deepEqual(secrets.values(), [secret.value], `${run} run`);
  }
  assert.ok(!processSecrets.contains(secret.value));
});
