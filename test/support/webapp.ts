import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../../src/resources/testing.ts";
import { cli, cliAsync } from "./cli.ts";
import { type LoadResult, startLoad } from "./load.ts";

// The deployment tests' kitchen: a copy of examples/webapp (HAProxy in front of app1–app3 on
// container hosts), its app repository, the galley commands they run in it, and load through
// HAProxy while a deployment runs.

const example = fileURLToPath(new URL("../../examples/webapp", import.meta.url));

/** The app instances of the example. */
export const webappApps = ["app1", "app2", "app3"];

/** One step of a deployment, as `--json` prints it. */
export interface StepJson {
  instance: string;
  batch: number;
  phase: string;
  status: string;
  release?: string;
  log?: string;
}

/** A deployment, as `--json` prints it. */
export interface DeploymentJson {
  id: number;
  status: string;
  strategy: string;
  revision: string;
  requested: string;
  migration: string;
  note?: string;
  rollbackOf?: number;
  params: Record<string, unknown>;
  steps: StepJson[];
}

/** A copy of examples/webapp with its app repository made; `galley hosts down` in it at the end. */
export class WebappKitchen {
  readonly dir: string;
  /** the load balancer's address, once the stack is up */
  lb = "";

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(prefix: string): Promise<WebappKitchen> {
    const dir = await tempDir(prefix);
    await fs.cp(example, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}.galley`) });
    const repo = spawnSync("bash", [path.join(dir, "make-app-repo.sh")], { encoding: "utf8" });
    assert.equal(repo.status, 0, repo.stderr);
    return new WebappKitchen(dir);
  }

  /** A galley command with --json, waited for (it blocks this process: no load may run meanwhile). */
  galley(...args: string[]) {
    const result = cli([...args, "--json"], this.dir);
    return { ...result, out: result.stdout ? JSON.parse(result.stdout) : undefined };
  }

  /** A galley command that prints a deployment, without blocking the load generator. */
  async deploy(...args: string[]) {
    const result = await cliAsync([...args, "--json"], this.dir);
    const out = result.stdout ? JSON.parse(result.stdout) : undefined;
    assert.ok(
      out?.deployment,
      `galley ${args.join(" ")} exited ${result.code}: ${result.stderr.slice(-3000)}`,
    );
    return { code: result.code, deployment: out.deployment as DeploymentJson, stderr: result.stderr };
  }

  /** The revision (7 digits) each app instance serves, asked of each directly, not through HAProxy. */
  async served(names: readonly string[] = webappApps): Promise<Map<string, string>> {
    const status = this.galley("stack", "status", "webapp").out as {
      instances: { name: string; address: string }[];
    };
    const out = new Map<string, string>();
    for (const name of names) {
      const address = status.instances.find((i) => i.name === name)!.address;
      const answer = await (await fetch(`http://${address}:3000/`)).text();
      out.set(name, /\(hello (\w+)/.exec(answer)?.[1] ?? answer);
    }
    return out;
  }

  /** A new commit of the app, `edit` changing app/server.js; its short id. */
  async newRevision(edit: (source: string) => string): Promise<string> {
    const file = path.join(this.dir, "app", "server.js");
    await fs.writeFile(file, edit(await fs.readFile(file, "utf8")));
    const made = spawnSync("bash", [path.join(this.dir, "make-app-repo.sh")], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
    return /main is now at (\w+)/.exec(made.stdout)![1]!;
  }

  /** Runs `work` with load through HAProxy, counting responses by `byBody`'s first group. */
  async underLoad<T>(
    work: () => Promise<T> | T,
    byBody = /hello from (\S+)/,
  ): Promise<{ value: T; load: LoadResult }> {
    const load = startLoad({ url: `http://${this.lb}/`, byBody, connections: 4 });
    try {
      const value = await work();
      return { value, load: await load.stop() };
    } catch (error) {
      await load.stop();
      throw error;
    }
  }

  /** Removes the kitchen's hosts. */
  down(): void {
    cli(["hosts", "down"], this.dir);
  }
}

/** The load ran, and not one request failed. */
export function noFailures(load: LoadResult): void {
  assert.ok(load.requests > 0, "the load ran");
  assert.deepEqual(
    { errors: load.errors, non2xx: load.non2xx },
    { errors: 0, non2xx: 0 },
    `failed requests: ${load.samples.join("; ")}`,
  );
}

/** An instance's finished steps in a deployment: ["drain:succeeded", "prepare:succeeded", …]. */
export function phases(d: DeploymentJson, instance: string): string[] {
  return d.steps
    .filter((s) => s.instance === instance && s.status !== "running")
    .map((s) => `${s.phase}:${s.status}`);
}
