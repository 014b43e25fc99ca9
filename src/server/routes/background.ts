import * as v from "valibot";
import { errorMessage, GalleyError, isGalleyError } from "../../core/errors.ts";
import { processSecrets, Secrets, withSecrets } from "../../core/secrets.ts";
import type { StackActionResult } from "../../deploy/actions.ts";
import type { ServerContext } from "../context.ts";
import type { RouteInput } from "../openapi.ts";
import { withoutKitchenPath } from "./stacks.ts";

// The server's long actions (events and deployments started through the API): they run on after
// the request is answered, each in a secrets scope of its own, and stop with the server.

/** A long action the server runs on after answering: an event or a deployment. */
export interface BackgroundAction {
  status: "running" | "done" | "failed";
  exitCode?: number;
  /** what the action returned (a lifecycle outcome for events) */
  result?: unknown;
  error?: { code: string; message: string; hint?: string };
}

const backgrounds = new WeakMap<ServerContext, Map<string, BackgroundAction>>();
const keptActions = 1000;

/** The background action `key` ("event:7", "deployment:3") of this server, if it ran one. */
export function backgroundAction(ctx: ServerContext, key: string): BackgroundAction | undefined {
  return backgrounds.get(ctx)?.get(key);
}

/**
 * Runs `work` on after the request: resolves with the id `work` reports through `started` (its
 * event or deployment record exists), or rejects with the error `work` fails with before that
 * (a lock held, an unknown app), so that those are answered as errors, not as 202.
 * The work runs in a secrets scope of its own: what it decrypts is scrubbed from what it reports.
 */
export function startInBackground(
  ctx: ServerContext,
  kind: "event" | "deployment",
  work: (
    started: (id: number) => void,
    signal: AbortSignal,
  ) => Promise<{ exitCode: number; result?: unknown }>,
): Promise<number> {
  const map = backgrounds.get(ctx) ?? new Map<string, BackgroundAction>();
  backgrounds.set(ctx, map);
  const runs = running(ctx);
  if (runs.stop.signal.aborted)
    return Promise.reject(
      new GalleyError("INTERRUPTED", "the server is stopping: it starts nothing new", {
        hint: "ask again once it runs again",
      }),
    );
  const secrets = new Secrets(processSecrets);
  return new Promise((resolve, reject) => {
    let id: number | undefined;
    const entry: BackgroundAction = { status: "running" };
    const started = (n: number) => {
      if (id !== undefined) return;
      id = n;
      map.set(`${kind}:${n}`, entry);
      while (map.size > keptActions) map.delete(map.keys().next().value!);
      resolve(n);
    };
    const run = withSecrets(secrets, () => work(started, runs.stop.signal));
    runs.all.add(run);
    const forget = () => runs.all.delete(run);
    run.then(forget, forget);
    run.then(
      ({ exitCode, result }) => {
        Object.assign(entry, { status: "done", exitCode, result });
        if (id === undefined)
          reject(
            new GalleyError("ARGS_INVALID", `nothing to run: no ${kind} was started`, {
              hint: "check the instances' status",
            }),
          );
      },
      (error: unknown) => {
        const body = errorBody(withoutKitchenPath(ctx, error), secrets);
        if (id === undefined) reject(withoutKitchenPath(ctx, error));
        else {
          Object.assign(entry, { status: "failed", exitCode: 1, error: body });
          ctx.log(`${kind} #${id} failed: ${body.code}: ${body.message}`);
        }
      },
    );
  });
}

const runningBy = new WeakMap<ServerContext, { stop: AbortController; all: Set<Promise<unknown>> }>();

function running(ctx: ServerContext): { stop: AbortController; all: Set<Promise<unknown>> } {
  let runs = runningBy.get(ctx);
  if (!runs) {
    runs = { stop: new AbortController(), all: new Set() };
    runningBy.set(ctx, runs);
  }
  return runs;
}

/**
 * Stops this server's background events and deployments (as Ctrl-C stops the CLI's: running
 * converges end interrupted, a deployment rolls back what it switched) and waits for them to end.
 * For the server's shutdown, before it closes the store.
 */
export async function stopBackground(ctx: ServerContext): Promise<void> {
  const runs = running(ctx);
  runs.stop.abort(
    new GalleyError("INTERRUPTED", "the server is stopping", {
      hint: "resume it once the server runs again",
    }),
  );
  await Promise.allSettled([...runs.all]);
}

/** The background work as a server service: `startServer({ services: [backgroundService] })` stops it on close. */
export function backgroundService(ctx: ServerContext): { stop(): Promise<void> } {
  return { stop: () => stopBackground(ctx) };
}

function errorBody(error: unknown, secrets: Secrets): NonNullable<BackgroundAction["error"]> {
  if (isGalleyError(error))
    return {
      code: error.code,
      message: secrets.scrub(error.message),
      ...(error.hint === undefined ? {} : { hint: secrets.scrub(error.hint) }),
    };
  return { code: "INTERNAL", message: secrets.scrub(errorMessage(error)), hint: "see the server's log" };
}

/** The body of a stack action (up, down, start, stop): none, or `{ "wait": false }` to run it on in the background. */
export const waitBody = v.optional(
  v.strictObject({
    wait: v.optional(
      v.boolean("true (answer when done, the default) or false (202 with the first event's id at once)"),
    ),
  }),
);

/** What a stack action run on in the background is given: the server's stop, and where its first event's id goes. */
export type InBackground = { signal?: AbortSignal; onEventStarted?: (event: { id: number }) => void };

type WaitableInput<P extends v.GenericSchema> = RouteInput<P, undefined, typeof waitBody>;

/**
 * A stack action's handler (up, down, start, stop) that runs on in the background when asked with
 * `{ "wait": false }`: answered 202 `{ id }` with its first event's id once that event is
 * recorded (followed like any event: GET /v1/events/:id). An action that ends without running any
 * event (nothing to do, or no host started) is answered with its result, as when waited for, and
 * `id: null` (200).
 * What fails before the first event is answered as the error it is. Without it, `action` runs
 * and is answered when done.
 */
export function waitable<P extends v.GenericSchema>(
  ctx: ServerContext,
  action: (input: WaitableInput<P>, background: InBackground) => Promise<StackActionResult>,
): (input: WaitableInput<P>) => Promise<StackActionResult | Response> {
  return async (input) => {
    if (input.body?.wait !== false) return action(input, {});
    let ended: StackActionResult | undefined;
    try {
      const id = await startInBackground(ctx, "event", async (started, signal) => {
        ended = await action(input, { signal, onEventStarted: (event) => started(event.id) });
        return { exitCode: ended.exitCode, result: ended.outcome };
      });
      return input.c.json({ id }, 202);
    } catch (error) {
      // the action ran to its end without an event: its result is the answer
      if (ended !== undefined) return input.c.json({ id: null, ...ended }, 200);
      throw error;
    }
  };
}
