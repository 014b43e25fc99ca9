import { GalleyError } from "../core/errors.ts";
import { installAgent } from "../lifecycle/agent-install.ts";
import { agentCacheDir } from "../lifecycle/agent-setup.ts";
import { openStack } from "../lifecycle/context.ts";
import { reach } from "../lifecycle/providers.ts";
import { stackFile } from "./lifecycle-output.ts";
import { write, writeJson } from "./output.ts";

// `galley agent install --stack S INSTANCE --server URL --token T`: Galley's own setup of an agent
// on a running instance over SSH (Node.js and Galley shipped when missing, enrollment, the service).

/** What `galley agent install` reads of the `galley agent` options. */
export interface AgentInstallValues {
  stack?: string | undefined;
  server?: string | undefined;
  token?: string | undefined;
  json: boolean;
}

/**
 * `galley agent install --stack S INSTANCE --server URL --token T [--json]`: installs, enrolls and
 * starts the agent of a running instance. The token is the one `galley agent token` printed.
 */
export async function agentInstall(values: AgentInstallValues, positionals: string[]): Promise<number> {
  const [name, ...extra] = positionals;
  if (name === undefined || extra.length > 0) {
    throw new GalleyError("USAGE", "galley agent install: which instance (one)?", {
      hint: "galley agent install --stack production web1 --server https://HOST:PORT --token TOKEN",
    });
  }
  if (!values.server || !values.token) {
    throw new GalleyError("USAGE", "galley agent install needs --server URL and --token TOKEN", {
      hint: `on the server: galley agent token ${values.stack ?? "STACK"} ${name} prints a one-time token`,
    });
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
    const done = await installAgent(reached.target, {
      serverUrl: values.server,
      token: values.token,
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
