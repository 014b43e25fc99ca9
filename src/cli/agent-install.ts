import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { certificateFingerprint, mintEnrollment } from "../fleet/agent-enrollment.ts";
import { installAgent } from "../lifecycle/agent-install.ts";
import { agentCacheDir } from "../lifecycle/agent-setup.ts";
import { openStack } from "../lifecycle/context.ts";
import { reach } from "../lifecycle/providers.ts";
import type { Store } from "../store/store.ts";
import { stackFile } from "./lifecycle-output.ts";
import { write, writeJson } from "./output.ts";

// `galley agent install --stack S INSTANCE --server URL --token T`: Galley's own setup of an agent
// on a running instance over SSH (Node.js and Galley shipped when missing, enrollment, the service).

/** What `galley agent install` reads of the `galley agent` options. */
export interface AgentInstallValues {
  stack?: string | undefined;
  server?: string | undefined;
  token?: string | undefined;
  /** the server's data dir (default <kitchen>/.galley/server): its CA, for a token minted here */
  data?: string | undefined;
  json: boolean;
}

/**
 * `galley agent install --stack S INSTANCE --server URL [--token T] [--json]`: installs, enrolls
 * and starts the agent of a running instance. The token is the one `galley agent token` printed;
 * without one, a host not yet enrolled gets one minted from this kitchen's store and its server's
 * CA (the server serves this kitchen).
 */
export async function agentInstall(values: AgentInstallValues, positionals: string[]): Promise<number> {
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) {
    throw new GalleyError("USAGE", "galley agent install: which instance (one)?", {
      hint: "galley agent install --stack production web1 --server https://HOST:PORT --token TOKEN",
    });
  }
  if (!values.server) {
    throw new GalleyError(
      "USAGE",
      "galley agent install needs --server URL (the URL the host reaches the server at)",
      {
        hint: `galley agent install --stack ${values.stack ?? "STACK"} ${name} --server https://HOST:PORT`,
      },
    );
  }
  const context = await openStack(stackFile(values.stack, "agent install"), {
    checkRecipes: false,
    decrypt: false,
  });
  try {
    const instance = context.stack.instances.find((i) => i.name === name);
    if (!instance) {
      throw new GalleyError("STACK_INVALID", `stack ${context.stack.name} has no instance "${name}"`, {
        hint: `its instances: ${context.stack.instances.map((i) => i.name).join(", ") || "none"}`,
      });
    }
    const reached = (await reach(context, [instance])).get(name)!;
    if (!reached.ok) {
      throw new GalleyError("HOST_UNREACHABLE", `instance ${name} cannot be reached: ${reached.error}`, {
        hint: `start it first: galley instance start ${name} --stack ${context.stack.name}`,
      });
    }
    const agent = { stack: context.stack.name, instance: name };
    const kitchen = context.kitchen;
    const done = await installAgent(reached.target, {
      serverUrl: values.server,
      // a token given is used; else one is minted here (the server's kitchen), only if the host needs it
      token: values.token ?? (() => mintHere(context.store, kitchen, values.data, agent)),
      agent,
      cacheDir: agentCacheDir(context.kitchen),
      log: values.json ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    if (values.json) writeJson({ instance: name, stack: context.stack.name, ...done });
    else
      write(
        `${name}: agent installed (${done.service}), Galley ${done.sha.slice(0, 12)}, ${done.shipped} bytes shipped\n`,
      );
    return 0;
  } finally {
    await context.store.close();
  }
}

// a one-time token from the kitchen's store and the server's CA, as `galley agent token` mints it
async function mintHere(
  store: Store,
  kitchen: string,
  data: string | undefined,
  agent: { stack: string; instance: string },
): Promise<string> {
  const caFile = path.join(path.resolve(data ?? path.join(kitchen, ".galley", "server")), "tls", "ca.pem");
  if (!existsSync(caFile)) {
    throw new GalleyError("USAGE", `no server CA in ${caFile}: an enrollment token names the server's CA`, {
      hint: "run galley server in this kitchen once (or give --token from galley agent token on the server)",
    });
  }
  const caFingerprint = certificateFingerprint(readFileSync(caFile, "utf8"));
  return mintEnrollment(store, { ...agent, caFingerprint, ttlMs: 3_600_000 });
}
