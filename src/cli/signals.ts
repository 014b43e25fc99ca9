import { Interrupted, type InterruptSignal } from "../core/interrupt.ts";

/** A run's Ctrl-C and SIGTERM: an AbortSignal the run watches, while the trap is set. */
export interface InterruptTrap {
  signal: AbortSignal;
  /** the exit code of the signal received (130, 143), or undefined */
  exitCode(): number | undefined;
  /** the trap's handlers are removed: the signals end the process again */
  dispose(): void;
}

/**
 * Traps SIGINT and SIGTERM for a run: the first one aborts the run (the host forwards it to the
 * command it runs, then kills that after a grace period) and the run ends interrupted; a second
 * one ends Galley at once.
 *
 * @example const trap = trapInterrupts(); try { … converge(…, { signal: trap.signal }) } finally { trap.dispose(); }
 */
export function trapInterrupts(stream: NodeJS.WritableStream = process.stderr): InterruptTrap {
  const controller = new AbortController();
  let received: Interrupted | undefined;
  const handlers = new Map<InterruptSignal, () => void>();
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    const handler = () => {
      if (received) {
        stream.write(`galley: ${name} again: exiting now\n`);
        process.exit(received.exitCode);
      }
      received = new Interrupted(name);
      stream.write(
        `galley: ${name}: stopping the run (the command it runs gets ${name}, then SIGKILL after 5 s)\n`,
      );
      controller.abort(received);
    };
    handlers.set(name, handler);
    process.on(name, handler);
  }
  return {
    signal: controller.signal,
    exitCode: () => received?.exitCode,
    dispose: () => {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}
