import { GalleyError } from "../../core/errors.ts";
import type { Host } from "../../core/host.ts";

/** What a service provider needs from the resource's properties. */
export interface ServiceTarget {
  name: string;
  /** a shell command whose exit 0 means "running", for init scripts without a usable status action */
  statusCommand?: string | undefined;
}

/** A service as its init system sees it; read returns undefined when the init system does not know it. */
export interface ServiceState {
  running: boolean;
  enabled: boolean;
  /** the init system's own word for the boot state, e.g. systemd's "static" or "masked" */
  enabledState?: string;
}

export type ServiceCommand = "start" | "stop" | "restart" | "reload" | "enable" | "disable";

/** How one init system reads and changes services: systemd or sysv. */
export interface ServiceProvider {
  name: "systemd" | "sysv";
  read(host: Host, target: ServiceTarget): Promise<ServiceState | undefined>;
  run(host: Host, target: ServiceTarget, command: ServiceCommand, current: ServiceState): Promise<void>;
}

/** Runs `statusCommand` when given: exit 0 is running, anything else stopped. */
export async function statusByCommand(host: Host, target: ServiceTarget): Promise<boolean | undefined> {
  if (target.statusCommand === undefined) return undefined;
  return (await host.exec(["sh", "-c", target.statusCommand])).exitCode === 0;
}

/** Runs one init-system command; a non-zero exit is the resource's failure, with the command's output. */
export async function serviceCommand(host: Host, service: string, argv: readonly string[]): Promise<void> {
  const result = await host.exec(argv);
  if (result.exitCode === 0) return;
  const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-5).join("\n");
  throw new GalleyError(
    "APPLY_FAILED",
    `service[${service}]: ${argv.join(" ")} exited ${result.exitCode}${output ? `: ${output}` : ""}`,
    {
      hint: "read the init system's message above, then the service's own log; fix the service's configuration",
    },
  );
}
