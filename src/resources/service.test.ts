import * as v from "valibot";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import { after, before, test } from "node:test";
import type { ExecResult, Facts, Host } from "../core/host.ts";
import { LocalHost } from "../hosts/local.ts";
import { service } from "./service.ts";
import { convergeTwice, prepare } from "./testing.ts";

// A real LSB init script for a tiny daemon, run through the real `service` and `update-rc.d`.
const name = "galley-t-svc";
const script = `/etc/init.d/${name}`;
const pidFile = `/run/${name}.pid`;
const reloads = `/run/${name}.reloads`;
const host = new LocalHost();
const skip =
  process.getuid?.() !== 0
    ? "needs root: installs an init script in /etc/init.d"
    : (await host.facts()).init !== "sysv"
      ? "the sysv tests need a host whose PID 1 is not systemd"
      : false;
const stateDir = "/nonexistent";

const initScript = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ${name}
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Galley test daemon
### END INIT INFO
DAEMON=/usr/bin/sleep
PIDFILE=${pidFile}
case "$1" in
  start) start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile $PIDFILE --exec $DAEMON -- 100000 ;;
  stop) start-stop-daemon --stop --quiet --oknodo --retry TERM/5/KILL/5 --remove-pidfile --pidfile $PIDFILE --exec $DAEMON ;;
  restart) "$0" stop && "$0" start ;;
  reload) start-stop-daemon --status --pidfile $PIDFILE && echo reloaded >> ${reloads} ;;
  status) start-stop-daemon --status --pidfile $PIDFILE ;;
  *) echo "Usage: $0 {start|stop|restart|reload|status}" >&2; exit 3 ;;
esac
`;

function sh(command: string): string {
  return execFileSync("sh", ["-c", command], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  }).trim();
}

async function pid(): Promise<string | undefined> {
  return (await fs.readFile(pidFile, "utf8").catch(() => undefined))?.trim();
}

/** The rc links of the test service, e.g. ["rc0.d/K01galley-t-svc", "rc2.d/S01galley-t-svc", …]. */
function links(): string[] {
  return sh(`cd /etc && ls -1d rc?.d/[SK][0-9][0-9]${name} 2>/dev/null || true`).split("\n").filter(Boolean);
}

async function cleanUp(): Promise<void> {
  if (await fs.stat(script).catch(() => undefined)) sh(`service ${name} stop; update-rc.d -f ${name} remove`);
  await fs.rm(script, { force: true });
  await fs.rm(reloads, { force: true });
  await fs.rm(pidFile, { force: true });
}

before(async () => {
  if (skip) return;
  await cleanUp();
  await fs.writeFile(script, initScript, { mode: 0o755 });
});

after(async () => {
  if (!skip) await cleanUp();
});

test("service: start starts the daemon, then changes nothing; stop stops it, then changes nothing", {
  skip,
}, async () => {
  assert.deepEqual(await convergeTwice(host, service, { name }), [
    { property: "running", from: false, to: true },
  ]);
  const running = await pid();
  assert.ok(running && sh(`ps -o comm= -p ${running}`) === "sleep");
  assert.deepEqual(await convergeTwice(host, service, { name }, { action: "stop" }), [
    { property: "running", from: true, to: false },
  ]);
  assert.equal(await pid(), undefined);
  // gone, or a zombie where PID 1 does not reap orphans (as in some containers)
  assert.match(sh(`ps -o stat= -p ${running} || true`), /^(Z.*)?$/);
});

test("service: drift (the daemon killed behind Galley's back) is started again", { skip }, async () => {
  await convergeTwice(host, service, { name });
  sh(`kill $(cat ${pidFile}); rm -f ${pidFile}`);
  assert.deepEqual(await convergeTwice(host, service, { name }), [
    { property: "running", from: false, to: true },
  ]);
  await convergeTwice(host, service, { name }, { action: "stop" });
});

test("service: enable creates S links in 2-5, disable turns them into K links, both twice-converged", {
  skip,
}, async () => {
  assert.deepEqual(links(), []);
  // with no links at all the service is already disabled
  assert.deepEqual(await convergeTwice(host, service, { name }, { action: "disable" }), []);
  assert.deepEqual(await convergeTwice(host, service, { name }, { action: "enable" }), [
    { property: "enabled", from: false, to: true },
  ]);
  assert.deepEqual(
    links(),
    [0, 1, 2, 3, 4, 5, 6].map((l) => `rc${l}.d/${l >= 2 && l <= 5 ? "S" : "K"}01${name}`),
  );
  assert.deepEqual(await convergeTwice(host, service, { name }, { action: "disable" }), [
    { property: "enabled", from: true, to: false },
  ]);
  assert.deepEqual(
    links(),
    [0, 1, 2, 3, 4, 5, 6].map((l) => `rc${l}.d/K01${name}`),
  );
  // enabling again turns the K links back, without a second set of links
  await convergeTwice(host, service, { name }, { action: "enable" });
  assert.equal(links().filter((link) => link.includes("/S")).length, 4);
  assert.equal(links().length, 7);
});

test("service: restart starts a new process every time", { skip }, async () => {
  await convergeTwice(host, service, { name });
  const before = await pid();
  const changes = await convergeTwice(host, service, { name }, { action: "restart" });
  assert.deepEqual(changes, [{ property: "running", from: true, to: "restarted" }]);
  const after = await pid();
  assert.ok(before && after && before !== after, `pid ${before} → ${after}`);
  await convergeTwice(host, service, { name }, { action: "restart" });
  assert.notEqual(await pid(), after);
});

test("service: reload runs the script's reload every time", { skip }, async () => {
  await convergeTwice(host, service, { name });
  const before = await pid();
  await fs.rm(reloads, { force: true });
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await convergeTwice(host, service, { name }, { action: "reload" }), [
      { property: "config", to: "reloaded" },
    ]);
  }
  assert.equal(await fs.readFile(reloads, "utf8"), "reloaded\nreloaded\n");
  assert.equal(await pid(), before);
});

test("service: statusCommand decides what running means", { skip }, async () => {
  await convergeTwice(host, service, { name }, { action: "stop" });
  // a status that always says running: start has nothing to do
  assert.deepEqual(await convergeTwice(host, service, { name, statusCommand: "true" }), []);
  assert.equal(await pid(), undefined);
  const statusCommand = `test -s ${pidFile}`;
  assert.deepEqual(await convergeTwice(host, service, { name, statusCommand }), [
    { property: "running", from: false, to: true },
  ]);
});

test("service: an unknown service reads as absent, is an error to start and is already stopped", {
  skip,
}, async () => {
  const props = await prepare(service, { name: "galley-t-nosuch" });
  const current = await service.read(host, props);
  assert.equal(current, undefined);
  assert.deepEqual(service.diff(current, props, "start"), [
    { property: "ensure", from: "absent", to: "start" },
  ]);
  assert.deepEqual(service.diff(current, props, "stop"), []);
  assert.deepEqual(service.diff(current, props, "disable"), []);
  for (const action of ["start", "enable", "restart", "reload"]) {
    await assert.rejects(
      service.apply(host, props, action, current, { stateDir }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "APPLY_FAILED");
        assert.match(
          error.message,
          /service\[galley-t-nosuch\]: no init script \/etc\/init\.d\/galley-t-nosuch/,
        );
        return true;
      },
    );
  }
});

test("service: reloading a stopped service changes nothing", { skip }, async () => {
  await convergeTwice(host, service, { name }, { action: "stop" });
  const props = await prepare(service, { name });
  assert.deepEqual(service.diff(await service.read(host, props), props, "reload"), []);
});

test("service: a failing init script command is an APPLY_FAILED error with its output", {
  skip,
}, async () => {
  await convergeTwice(host, service, { name }, { action: "stop" });
  const props = await prepare(service, { name });
  // the script's reload refuses a stopped daemon
  await assert.rejects(
    service.apply(host, props, "reload", await service.read(host, props), { stateDir }),
    /service\[galley-t-svc\]: service galley-t-svc reload exited 3/,
  );
});

test("service: the schema refuses option-like names, unknown providers and unknown properties", () => {
  for (const input of [
    { name: "-x" },
    { name: "a/b" },
    { name: "nginx", provider: "upstart" },
    { name: "nginx", enabled: true },
  ]) {
    assert.equal(v.safeParse(service.schema, input).success, false, JSON.stringify(input));
  }
});

/**
 * A recorded-exec Host, used ONLY for the systemd provider: this machine's PID 1 is not systemd,
 * so these tests check the systemctl command lines and the parsing of their output, nothing more.
 */
class RecordedExecHost implements Host {
  readonly name = "recorded";
  readonly calls: string[] = [];
  readonly replies: Record<string, Partial<ExecResult>>;
  constructor(replies: Record<string, Partial<ExecResult>>) {
    this.replies = replies;
  }
  async exec(argv: readonly string[]): Promise<ExecResult> {
    const line = argv.join(" ");
    this.calls.push(line);
    const reply = this.replies[line] ?? { exitCode: 0 };
    return { argv, exitCode: 0, stdout: "", stderr: "", timedOut: false, durationMs: 0, ...reply };
  }
  readFile = async () => undefined;
  writeFile = async () => {};
  stat = async () => undefined;
  async facts(): Promise<Facts> {
    return { ...(await host.facts()), init: "systemd" };
  }
}

const show = (unit: string) => `systemctl show --property=LoadState,ActiveState ${unit}`;

test("service (systemd, recorded exec): read parses show and is-enabled", async () => {
  const recorded = new RecordedExecHost({
    [show("nginx")]: { stdout: "LoadState=loaded\nActiveState=active\n" },
    "systemctl is-enabled nginx": { exitCode: 1, stdout: "disabled\n" },
    [show("nosuch")]: { stdout: "LoadState=not-found\nActiveState=inactive\n" },
  });
  const nginx = await prepare(service, { name: "nginx" });
  assert.deepEqual(await service.read(recorded, nginx), {
    running: true,
    enabled: false,
    enabledState: "disabled",
  });
  assert.equal(await service.read(recorded, await prepare(service, { name: "nosuch" })), undefined);
  assert.deepEqual(recorded.calls, [show("nginx"), "systemctl is-enabled nginx", show("nosuch")]);
});

test("service (systemd, recorded exec): each action runs its systemctl command", async () => {
  const props = await prepare(service, { name: "nginx" });
  const current = { running: true, enabled: true, enabledState: "enabled" };
  for (const action of service.actions) {
    const recorded = new RecordedExecHost({});
    await service.apply(recorded, props, action, current, { stateDir });
    assert.deepEqual(recorded.calls, [`systemctl ${action} nginx`]);
  }
});

test("service (systemd, recorded exec): errors name the unit", async () => {
  const props = await prepare(service, { name: "nginx" });
  const failing = new RecordedExecHost({
    "systemctl start nginx": { exitCode: 1, stderr: "Job for nginx.service failed." },
  });
  await assert.rejects(
    service.apply(failing, props, "start", { running: false, enabled: false }, { stateDir }),
    /service\[nginx\]: systemctl start nginx exited 1: Job for nginx.service failed/,
  );
  const missing = new RecordedExecHost({ [show("nginx")]: { stdout: "LoadState=not-found\n" } });
  await assert.rejects(
    service.apply(missing, props, "start", undefined, { stateDir }),
    /service\[nginx\]: no systemd unit nginx/,
  );
  const statics = new RecordedExecHost({});
  await assert.rejects(
    service.apply(
      statics,
      props,
      "disable",
      { running: true, enabled: true, enabledState: "static" },
      { stateDir },
    ),
    /a static unit cannot be disabled/,
  );
  assert.deepEqual(statics.calls, []);
});

test("service: the provider property overrides the facts", { skip }, async () => {
  // a test double for the init fact only: everything else is the real local host
  class SystemdFactsHost extends LocalHost {
    override async facts(): Promise<Facts> {
      return { ...(await super.facts()), init: "systemd" };
    }
  }
  const pretend = new SystemdFactsHost();
  await convergeTwice(host, service, { name }, { action: "stop" });
  assert.deepEqual(await service.read(pretend, await prepare(service, { name, provider: "sysv" })), {
    running: false,
    enabled: links().some((link) => link.includes("/S")),
  });
  // by the facts it is systemd, which does not run here: systemctl fails and the error says what to do
  await assert.rejects(
    service.read(pretend, await prepare(service, { name })),
    /service\[galley-t-svc\]: systemctl show failed/,
  );
});
