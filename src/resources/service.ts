import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { defineResourceType, described } from "../core/resource.ts";
import type { ServiceCommand, ServiceProvider, ServiceState } from "./service/provider.ts";
import { systemd } from "./service/systemd.ts";
import { sysv } from "./service/sysv.ts";

const providers = { systemd, sysv } as const satisfies Record<string, ServiceProvider>;

const schema = v.strictObject({
  name: described(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9_@][A-Za-z0-9_.@:-]*$/, 'a service name like "nginx" or "getty@tty1.service"'),
    ),
    "the service: an /etc/init.d script name or a systemd unit (defaults to the resource name)",
  ),
  provider: v.optional(
    described(
      v.picklist(["systemd", "sysv"]),
      "the init system to use; by default systemd when it is PID 1, else sysv (service and update-rc.d)",
    ),
  ),
  statusCommand: v.optional(
    described(
      v.pipe(v.string(), v.minLength(1)),
      "a shell command whose exit 0 means running, for init scripts whose status action is missing or wrong",
    ),
  ),
});

type Props = v.InferOutput<typeof schema>;

/** A system service: running or stopped, started at boot or not. */
export const service = defineResourceType<typeof schema, ServiceState>({
  type: "service",
  description:
    "A system service: running or stopped, enabled at boot or not; restart acts every time, reload every time the service is running. systemd or SysV init.",
  actions: ["start", "stop", "restart", "reload", "enable", "disable"],
  imperative: ["restart", "reload"],
  schema,
  nameProperty: "name",

  key: (props) => props.name,

  async read(host, props) {
    return (await providerFor(host, props)).read(host, props);
  },

  diff(current, _desired, action) {
    // a service the init system does not know is neither running nor enabled: stop and disable are done
    if (!current)
      return action === "stop" || action === "disable"
        ? []
        : [{ property: "ensure", from: "absent", to: action }];
    switch (action) {
      case "stop":
        return current.running ? [{ property: "running", from: true, to: false }] : [];
      case "enable":
        return current.enabled ? [] : [{ property: "enabled", from: false, to: true }];
      case "disable":
        return current.enabled ? [{ property: "enabled", from: true, to: false }] : [];
      case "restart":
        return [{ property: "running", from: current.running, to: "restarted" }];
      case "reload":
        // like Chef: a stopped service has no configuration loaded to reload; its next start reads it
        return current.running ? [{ property: "config", to: "reloaded" }] : [];
      default:
        return current.running ? [] : [{ property: "running", from: false, to: true }];
    }
  },

  async apply(host, desired, action, current) {
    const provider = await providerFor(host, desired);
    const state = current ?? (await provider.read(host, desired));
    if (!state) throw unknownService(host, desired, provider);
    await provider.run(host, desired, action as ServiceCommand, state);
  },
});

async function providerFor(host: Host, props: Props): Promise<ServiceProvider> {
  return providers[props.provider ?? (await host.facts()).init];
}

function unknownService(host: Host, props: Props, provider: ServiceProvider): GalleyError {
  const where =
    provider.name === "sysv" ? `no init script /etc/init.d/${props.name}` : `no systemd unit ${props.name}`;
  return new GalleyError("APPLY_FAILED", `service[${props.name}]: ${where} on ${host.name}`, {
    hint: "check the name; install the package that provides the service first (and require it), or set provider",
  });
}
