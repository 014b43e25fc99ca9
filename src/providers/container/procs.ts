import { readdirSync, readFileSync } from "node:fs";

/** A process's start time (clock ticks since boot), undefined when it is gone or a zombie. */
export function processStart(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // the command name may hold spaces and parentheses: fields start after the last ")"
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return Number(fields[19]);
}

/** Whether the process `pid` that started at `start` still runs (a reused pid does not count). */
export function isAlive(pid: number | undefined, start: number | undefined): boolean {
  if (pid === undefined) return false;
  const now = processStart(pid);
  return now !== undefined && (start === undefined || now === start);
}

/** The children of a process. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
      children.push(...text.split(" ").filter(Boolean).map(Number));
    } catch {}
  }
  return children;
}

/** Whether a process is PID 1 of a PID namespace below ours (its NSpid line ends in 1). */
export function isNamespaceInit(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    return nspid.length >= 2 && nspid.at(-1) === "1";
  } catch {
    return false;
  }
}

/**
 * The PID 1 of the namespace a launcher (systemd-nspawn, unshare) creates: the first descendant
 * that is a namespace's PID 1. Polls until `timeoutMs`; undefined if the launcher died or never made one.
 */
export async function findNamespaceInit(launcher: number, timeoutMs = 10_000): Promise<number | undefined> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    let level = [launcher];
    for (let depth = 0; depth < 3 && level.length > 0; depth++) {
      level = level.flatMap(childrenOf);
      const init = level.find(isNamespaceInit);
      if (init !== undefined) return init;
    }
    if (processStart(launcher) === undefined) return undefined;
    await sleep(20);
  }
  return undefined;
}

/** Waits until a process has gone; false if it still runs after `timeoutMs`. */
export async function waitExit(pid: number, start: number | undefined, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (isAlive(pid, start)) {
    if (performance.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/** Sends a signal, ignoring a process that has already gone. */
export function signal(pid: number, sig: NodeJS.Signals | number): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
