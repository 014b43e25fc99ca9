import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { AbStatus } from "../deploy/ab-end.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { DeploymentDetail } from "../store/store.ts";
import { exitOf, progress, recap, withFeed, withStack } from "./deploy.ts";
import { remoteStackOptions } from "./lifecycle-output.ts";
import { waitMs } from "./options.ts";
import { paint, write, writeJson } from "./output.ts";
import { remoteFor } from "./remote.ts";
import { trapInterrupts } from "./signals.ts";

// galley ab promote|abort|status APP: the end of an A/B deployment (galley deploy APP --ab N%),
// run by src/deploy/ab-end.ts. cli/ parses, calls and prints.

interface Values {
  server?: string;
  stack?: string;
  forks?: string;
  wait?: string;
  json: boolean;
  strategy?: string;
  batch?: string;
  "max-unavailable"?: string;
  "max-fail"?: string;
}

/** `galley ab promote|abort|status APP --stack S`. */
export const abCommand = {
  summary:
    "an A/B deployment's end: promote (B to every instance, with a strategy) or abort (B's instances back to A); status",
  usage: "promote|abort|status APP --stack STACK [--strategy …] [--batch N|N%] [--json]",
  options: {
    ...remoteStackOptions,
    strategy: {
      type: "string",
      description: "promote: cutover, pilot, parallel or rolling (default rolling)",
    },
    batch: { type: "string", description: "instances per batch: N or N% (pilot, rolling)" },
    "max-unavailable": { type: "string", description: "at most N (or N%) instances out of service at once" },
    "max-fail": { type: "string", description: "failed instances tolerated: N or N% (default 0)" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [action, app, ...rest] = positionals;
    if (!["promote", "abort", "status"].includes(action ?? "") || !app || rest.length > 0)
      throw new GalleyError("USAGE", "galley ab promote|abort|status APP", {
        hint: "galley ab status hello --stack webapp",
      });
    const remote = await remoteFor(values);
    if (remote) {
      const { remoteAbEnd, remoteAbStatus } = await import("./remote-commands.ts");
      if (action === "status") {
        const stack = values.stack ?? "";
        printAbStatus(
          await remoteAbStatus(remote, values.stack, app),
          values.json,
          path.basename(stack).replace(/\.ya?ml$/, ""),
        );
        return exitCodes.ok;
      }
      return remoteAbEnd(remote, action as "promote" | "abort", app, values);
    }
    if (action === "status") return withStack(values, "ab status", (context) => status(values, context, app));
    const { parseSize } = await import("../deploy/strategies/sizes.ts");
    const size = (flag: string, text: string | undefined, min: 0 | 1) =>
      text === undefined ? undefined : parseSize(flag, text, min);
    const params = {
      batch: size("--batch", values.batch, 1),
      maxUnavailable: size("--max-unavailable", values["max-unavailable"], 1),
      maxFail: size("--max-fail", values["max-fail"], 0),
    };
    return withStack(values, `ab ${action}`, async (context) => {
      const { promoteAb, abortAb } = await import("../deploy/ab-end.ts");
      const trap = trapInterrupts();
      try {
        const request = {
          context,
          app,
          strategy: values.strategy ?? "rolling",
          params,
          forks: values.forks ? Number(values.forks) : undefined,
          waitMs: waitMs(values),
          signal: trap.signal,
          ...progress(),
        };
        const detail: DeploymentDetail = await withFeed(context, (feed) =>
          action === "promote" ? promoteAb(feed.deployment(request)) : abortAb(feed.deployment(request)),
        );
        if (values.json) writeJson({ deployment: detail });
        else recap(detail);
        return trap.exitCode() ?? exitOf(detail);
      } finally {
        trap.dispose();
      }
    });
  },
};

async function status(values: Values, context: StackContext, app: string): Promise<number> {
  const { abStatus } = await import("../deploy/ab-end.ts");
  printAbStatus(await abStatus(context, app), values.json, context.file);
  return exitCodes.ok;
}

// galley ab status's output, local or from a server
function printAbStatus(ab: AbStatus, json: boolean, file: string): void {
  const { app } = ab;
  if (json) {
    writeJson({ ab });
    return;
  }
  if (!ab.deployment) write(`no A/B deployment of ${app} is under way\n`);
  else {
    write(
      `${paint("bold", `A/B #${ab.deployment.id}`)} ${app}: B ${ab.deployment.revision.slice(0, 12)} on ${ab.instances.join(", ")} for ${ab.share} (weights give ${ab.expected}); A ${ab.base?.revision.slice(0, 12) ?? "?"} (#${ab.base?.id ?? "?"}) elsewhere\n`,
    );
    write(`  then: galley ab promote ${app} --stack ${file}, or galley ab abort ${app} --stack ${file}\n`);
  }
  for (const [name, weight] of Object.entries(ab.weights)) write(`  ${name.padEnd(12)} weight ${weight}\n`);
}
