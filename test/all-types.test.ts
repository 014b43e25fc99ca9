import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { compileRunList } from "../src/cookbooks/solo.ts";
import { converge } from "../src/core/converge.ts";
import type { Report, ResourceReport } from "../src/core/report.ts";
import { LocalHost } from "../src/hosts/local.ts";
import { resourceTypes } from "../src/resources/index.ts";
import { tempDir } from "../src/resources/testing.ts";
import { type AptRepo, aptGet, dpkgStatus, makeAptRepo } from "./support/apt-repo.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";

// One cookbook declaring every built-in resource type, converged on this machine through the real
// compile and converge: first apply, idempotence, plan, then drift by hand and its repair.
const host = new LocalHost();
const name = "galley-t-all"; // the user, the package, the service and the cron entry
const groupName = "galley-t-all-g";
const script = `/etc/init.d/${name}`;
const pidFile = `/run/${name}.pid`;
const skip =
  process.getuid?.() !== 0
    ? "needs root: installs a package, an init script, a user, a group and a crontab"
    : (await host.facts()).init !== "sysv"
      ? "the service is an LSB init script managed through sysv: needs a host whose PID 1 is not systemd"
      : false;

let out = ""; // every managed path lives here
let work = ""; // fixtures and logs that the cookbook does not manage
let kitchen = "";
let stateDir = "";
let apt: AptRepo | undefined;
let commits = { c1: "", c2: "" };
const requests: string[] = [];
const asset = "asset v1\n";
const server = http.createServer((request, response) => {
  requests.push(request.url ?? "");
  if (request.url === "/asset.txt") response.end(asset);
  else response.writeHead(404).end("not found");
});

const app = () => path.join(out, "app");
const paths = () => ({
  conf: path.join(app(), "app.conf"),
  daemon: path.join(app(), "daemon.conf"),
  current: path.join(app(), "current"),
  seed: path.join(app(), "seed"),
  asset: path.join(app(), "asset.txt"),
  src: path.join(out, "src"),
  settings: path.join(out, "settings.conf"),
});
/** The catalog's resource ids, by a short name. */
const ids = () => ({
  user: `user[${name}]`,
  group: `group[${groupName}]`,
  directory: `directory[${app()}]`,
  file: `file[${paths().conf}]`,
  template: `template[${paths().daemon}]`,
  link: `link[${paths().current}]`,
  seed: "execute[seed]",
  package: `package[${name}]`,
  service: `service[${name}]`,
  git: `git[${paths().src}]`,
  remoteFile: `remote_file[${paths().asset}]`,
  cron: `cron[${name}]`,
  line: `line[${paths().settings}]`,
  notified: "execute[notified]",
});

const conf = "name=galley\nport=8080\nworkers=4\n";

function kitchenRecipe(url: string, options: string[]): string {
  const p = paths();
  const r = (type: string, id: string, props: object) =>
    `r.${type}(${JSON.stringify(id)}, ${JSON.stringify(props)});`;
  const runNotified = { action: "run", resource: "execute[notified]" };
  return recipe(
    [
      r("user", name, { shell: "/bin/sh", home: path.join(out, "home"), comment: "Galley all-types test" }),
      r("group", groupName, { members: [name] }),
      r("directory", app(), { mode: "0750", owner: name, group: groupName }),
      r("file", p.conf, {
        content: conf,
        mode: "0640",
        owner: name,
        group: groupName,
        notifies: runNotified,
      }),
      r("template", p.daemon, {
        source: "daemon.conf.eta",
        variables: { port: 8080, user: name },
        notifies: { action: "restart", resource: `service[${name}]` },
      }),
      r("link", p.current, { to: p.conf }),
      r("execute", "seed", {
        command: `echo seeded > ${p.seed} && echo seed >> ${work}/seed.log`,
        creates: p.seed,
      }),
      r("package", name, { options }),
      r("service", name, { action: ["enable", "start"] }),
      r("git", p.src, { repository: path.join(work, "upstream.git"), revision: "main" }),
      r("remote_file", p.asset, { source: url, checksum: sha256(asset), mode: "0644" }),
      r("cron", name, { user: name, minute: "*/5", command: `/usr/bin/true ${name}` }),
      r("line", p.settings, { line: "answer=42", match: "^answer=", notifies: runNotified }),
      r("execute", "notified", { command: `echo fired >> ${work}/notified.log`, action: "nothing" }),
    ].join("\n"),
  );
}

const stopDaemon = `start-stop-daemon --stop --quiet --oknodo --retry TERM/5/KILL/5 --remove-pidfile --pidfile ${pidFile} --exec /usr/bin/sleep`;

/** An LSB init script for a sleeping daemon that logs each start, stop and restart to service.log. */
function initScript(): string {
  const start = `start-stop-daemon --start --quiet --oknodo --background --make-pidfile --pidfile ${pidFile} --exec /usr/bin/sleep -- 100000`;
  return `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ${name}
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Galley all-types test daemon
### END INIT INFO
LOG=${work}/service.log
case "$1" in
  start) echo start >> $LOG; ${start} ;;
  stop) echo stop >> $LOG; ${stopDaemon} ;;
  restart) echo restart >> $LOG; ${stopDaemon} && ${start} ;;
  status) start-stop-daemon --status --pidfile ${pidFile} ;;
  *) echo "Usage: $0 {start|stop|restart|status}" >&2; exit 3 ;;
esac
`;
}

function sh(command: string, env: Record<string, string> = {}): string {
  return execFileSync("sh", ["-c", command], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  }).trim();
}

/** Runs a clean-up step; what is already gone is fine. */
function quietly(command: string): void {
  try {
    sh(command);
  } catch {}
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** type, mode, owner and group of a path. */
async function attributes(file: string) {
  const stat = await host.stat(file);
  return stat && [stat.type, stat.mode, stat.owner, stat.group];
}

const read = (file: string) => fs.readFile(file, "utf8").catch(() => "");

async function converges(mode: "apply" | "plan"): Promise<Report> {
  const catalog = await compileRunList({
    runList: ["all"],
    cookbooksDir: path.join(kitchen, "cookbooks"),
    attributeFiles: [],
    host,
  });
  const report = await converge(catalog, host, { mode, stateDir, types: resourceTypes });
  for (const resource of report.resources) assert.equal(resource.error, undefined, JSON.stringify(resource));
  return report;
}

/** The ids with this status, sorted. */
function withStatus(report: Report, status: ResourceReport["status"]): string[] {
  return report.resources
    .filter((r) => r.status === status)
    .map((r) => r.id)
    .sort();
}

function resource(report: Report, id: string): ResourceReport {
  return report.resources.find((r) => r.id === id) ?? assert.fail(`no ${id} in the report`);
}

/** The target got exactly one notification, with this action and status, sent by these sources. */
function assertNotifiedOnce(
  report: Report,
  target: string,
  expected: { action: string; status: ResourceReport["status"]; by: string[] },
): void {
  const notified = resource(report, target).notified ?? [];
  assert.equal(notified.length, 1, `${target} is notified once: ${JSON.stringify(notified)}`);
  const [{ action, status, by } = assert.fail()] = notified;
  assert.deepEqual({ action, status }, { action: expected.action, status: expected.status });
  // a deduplicated notification names its first source, or (since converge.ts names them all) every one
  assert.equal(by, expected.by.join(", "), `${target} notified by ${by}`);
}

/** A converge that must change nothing: every resource unchanged. */
async function assertInState(mode: "apply" | "plan"): Promise<void> {
  const report = await converges(mode);
  assert.equal(report.status, "ok");
  assert.deepEqual(
    withStatus(report, "unchanged"),
    Object.values(ids()).sort(),
    `${mode} must change nothing`,
  );
  assert.equal(report.summary.changed + report.summary.pending + report.summary.failed, 0);
}

async function cleanUp(): Promise<void> {
  if (await fs.stat(script).catch(() => undefined)) quietly(`${script} stop; update-rc.d -f ${name} remove`);
  quietly(stopDaemon);
  await fs.rm(script, { force: true });
  await fs.rm(pidFile, { force: true });
  if (apt) aptGet(apt.options, ["purge", "-y", "-q", name]);
  else if (dpkgStatus(name) !== "unknown") quietly(`dpkg --purge ${name}`);
  quietly(`crontab -r -u ${name}`);
  quietly(`userdel ${name}`);
  quietly(`groupdel ${groupName}`);
  quietly(`groupdel ${name}`);
}

/** A bare repository with two commits on main. */
function upstream(): { c1: string; c2: string } {
  const env = {
    GIT_AUTHOR_NAME: "Galley Test",
    GIT_AUTHOR_EMAIL: "test@galley.invalid",
    GIT_COMMITTER_NAME: "Galley Test",
    GIT_COMMITTER_EMAIL: "test@galley.invalid",
    GIT_CONFIG_NOSYSTEM: "1",
  };
  sh(
    `cd ${work} && git init -q --bare --initial-branch=main upstream.git && git clone -q upstream.git clone`,
    env,
  );
  const commit = (message: string) =>
    sh(
      `cd ${work}/clone && echo ${message} > README && git add README && git commit -qm ${message} && git push -q origin HEAD:main && git rev-parse HEAD`,
      env,
    );
  return { c1: commit("one"), c2: commit("two") };
}

describe("all types: one cookbook converged through the real engine", { skip }, () => {
  before(async () => {
    if (skip) return;
    await cleanUp();
    out = await tempDir("galley-t-all-");
    work = await tempDir("galley-t-all-work-");
    stateDir = await tempDir("galley-t-all-state-");
    apt = await makeAptRepo(work, name, ["1.0"]);
    commits = upstream();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/asset.txt`;
    await fs.writeFile(script, initScript(), { mode: 0o755 });
    // a hand-made config file the line resource edits
    await fs.writeFile(paths().settings, "# settings\nname=galley\n");
    kitchen = await makeKitchen({
      all: {
        recipes: { default: kitchenRecipe(url, apt.options) },
        templates: { "daemon.conf.eta": "listen <%= it.port %>\nuser <%= it.user %>\n" },
      },
    });
  });

  after(async () => {
    if (skip) return;
    await cleanUp();
    server.close();
    for (const dir of [out, work, stateDir, kitchen])
      if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test("the first apply changes every resource; delayed notifications fire once", async () => {
    const report = await converges("apply");
    const id = ids();
    assert.equal(report.status, "ok");
    assert.deepEqual(withStatus(report, "changed"), Object.values(id).sort());
    assert.equal(report.summary.changed, 14);
    // file and line both notify execute[notified]; the template notifies the service's restart
    assertNotifiedOnce(report, id.notified, { action: "run", status: "changed", by: [id.file, id.line] });
    assertNotifiedOnce(report, id.service, { action: "restart", status: "changed", by: [id.template] });
    assert.equal(await read(`${work}/notified.log`), "fired\n");
    assert.equal(await read(`${work}/service.log`), "start\nrestart\n");
    assert.equal(await read(`${work}/seed.log`), "seed\n");
    assert.deepEqual(requests, ["/asset.txt"]);

    const p = paths();
    assert.deepEqual(await attributes(app()), ["directory", 0o750, name, groupName]);
    assert.deepEqual(await attributes(p.conf), ["file", 0o640, name, groupName]);
    assert.equal(await read(p.conf), conf);
    assert.equal(await read(p.daemon), `listen 8080\nuser ${name}\n`);
    assert.equal((await host.stat(p.current))?.target, p.conf);
    assert.equal(await read(p.seed), "seeded\n");
    assert.equal(await read(p.asset), asset);
    assert.equal(await read(p.settings), "# settings\nname=galley\nanswer=42\n");
    assert.equal(dpkgStatus(name), "install ok installed 1.0");
    assert.equal(sh(`${script} status >/dev/null && echo running`), "running");
    assert.match(sh(`ls /etc/rc2.d`), new RegExp(`^S\\d\\d${name}$`, "m"));
    assert.equal(sh(`getent passwd ${name} | cut -d: -f7`), "/bin/sh");
    assert.equal(sh(`getent group ${groupName} | cut -d: -f4`), name);
    assert.equal(sh(`git -C ${p.src} rev-parse HEAD`), commits.c2);
    assert.match(
      sh(`crontab -l -u ${name}`),
      new RegExp(`^\\*/5 \\* \\* \\* \\* /usr/bin/true ${name}$`, "m"),
    );
  });

  test("a second apply changes nothing, and a plan shows nothing pending", async () => {
    await assertInState("apply");
    await assertInState("plan");
    assert.equal(await read(`${work}/notified.log`), "fired\n");
    assert.equal(await read(`${work}/service.log`), "start\nrestart\n");
    assert.deepEqual(requests, ["/asset.txt"]);
  });

  test("drift in a file, a mode, a line, a link and the service: plan shows it, apply repairs only it", async () => {
    const p = paths();
    const id = ids();
    await fs.writeFile(p.conf, "name=galley\nport=9999\nworkers=4\n");
    await fs.chmod(app(), 0o755);
    await fs.writeFile(p.settings, "# settings\nname=galley\n");
    await fs.rm(p.current);
    sh(stopDaemon);
    const drifted = [id.file, id.directory, id.line, id.link, id.service];

    const plan = await converges("plan");
    assert.equal(plan.status, "ok");
    // the notified execute would run too: a plan shows it pending, notified by both drifted sources
    assert.deepEqual(withStatus(plan, "pending"), [...drifted, id.notified].sort());
    assertNotifiedOnce(plan, id.notified, { action: "run", status: "pending", by: [id.file, id.line] });
    const content = resource(plan, id.file).diff?.find((c) => c.property === "content");
    assert.ok(content?.diff, "the content change carries a unified diff");
    assert.match(content.diff, new RegExp(`^--- ${p.conf}$`, "m"));
    assert.match(content.diff, new RegExp(`^\\+\\+\\+ ${p.conf}$`, "m"));
    assert.match(content.diff, /^@@ -1,3 \+1,3 @@$/m);
    assert.match(content.diff, /^-port=9999$/m);
    assert.match(content.diff, /^\+port=8080$/m);
    assert.deepEqual(resource(plan, id.directory).diff, [{ property: "mode", from: "0755", to: "0750" }]);
    assert.deepEqual(resource(plan, id.service).diff, [{ property: "running", from: false, to: true }]);
    // a plan touches nothing
    assert.equal(await read(p.conf), "name=galley\nport=9999\nworkers=4\n");
    assert.equal(await host.stat(p.current), undefined);
    assert.equal(await read(`${work}/notified.log`), "fired\n");

    const apply = await converges("apply");
    assert.equal(apply.status, "ok");
    assert.deepEqual(withStatus(apply, "changed"), [...drifted, id.notified].sort());
    assert.equal(apply.summary.unchanged, 14 - drifted.length - 1);
    assertNotifiedOnce(apply, id.notified, { action: "run", status: "changed", by: [id.file, id.line] });
    assert.equal(resource(apply, id.service).notified, undefined);
    assert.equal(await read(`${work}/notified.log`), "fired\nfired\n");
    assert.equal(await read(`${work}/service.log`), "start\nrestart\nstart\n");
    assert.equal(await read(p.conf), conf);
    assert.equal((await host.stat(app()))?.mode, 0o750);
    assert.equal(await read(p.settings), "# settings\nname=galley\nanswer=42\n");
    assert.equal((await host.stat(p.current))?.target, p.conf);
    assert.equal(sh(`${script} status >/dev/null && echo running`), "running");
    await assertInState("apply");
  });

  test("drift in the template, execute, package, user, group, git, remote_file and cron: repaired alone", async () => {
    const p = paths();
    const id = ids();
    await fs.appendFile(p.daemon, "# edited by hand\n");
    await fs.rm(p.seed);
    assert.ok(aptGet(apt!.options, ["remove", "-y", "-q", name]));
    sh(`usermod -s /bin/bash ${name}`);
    sh(`gpasswd -d ${name} ${groupName}`);
    sh(`git -C ${p.src} reset -q --hard ${commits.c1}`);
    await fs.writeFile(p.asset, "tampered\n");
    sh(`crontab -r -u ${name}`);
    const drifted = [id.template, id.seed, id.package, id.user, id.group, id.git, id.remoteFile, id.cron];

    const plan = await converges("plan");
    // the template's change would restart the service
    assert.deepEqual(withStatus(plan, "pending"), [...drifted, id.service].sort());
    assertNotifiedOnce(plan, id.service, { action: "restart", status: "pending", by: [id.template] });
    assert.match(resource(plan, id.template).diff?.[0]?.diff ?? "", /^-# edited by hand$/m);
    assert.deepEqual(resource(plan, id.user).diff, [{ property: "shell", from: "/bin/bash", to: "/bin/sh" }]);
    assert.deepEqual(resource(plan, id.group).diff, [{ property: "members", from: [], to: [name] }]);
    assert.deepEqual(resource(plan, id.package).diff, [{ property: "version", from: "absent", to: "1.0" }]);
    assert.doesNotMatch(dpkgStatus(name), / installed /);
    assert.deepEqual(requests, ["/asset.txt"]);

    const apply = await converges("apply");
    assert.equal(apply.status, "ok");
    assert.deepEqual(withStatus(apply, "changed"), [...drifted, id.service].sort());
    assert.equal(apply.summary.unchanged, 14 - drifted.length - 1);
    assertNotifiedOnce(apply, id.service, { action: "restart", status: "changed", by: [id.template] });
    assert.equal(resource(apply, id.notified).notified, undefined);
    assert.equal(await read(`${work}/service.log`), "start\nrestart\nstart\nrestart\n");
    assert.equal(await read(`${work}/notified.log`), "fired\nfired\n");
    assert.equal(await read(`${work}/seed.log`), "seed\nseed\n");
    assert.deepEqual(requests, ["/asset.txt", "/asset.txt"]);
    assert.equal(await read(p.daemon), `listen 8080\nuser ${name}\n`);
    assert.equal(dpkgStatus(name), "install ok installed 1.0");
    assert.equal(sh(`getent passwd ${name} | cut -d: -f7`), "/bin/sh");
    assert.equal(sh(`getent group ${groupName} | cut -d: -f4`), name);
    assert.equal(sh(`git -C ${p.src} rev-parse HEAD`), commits.c2);
    assert.equal(await read(p.asset), asset);
    assert.match(sh(`crontab -l -u ${name}`), new RegExp(`/usr/bin/true ${name}$`, "m"));
    await assertInState("apply");
    await assertInState("plan");
  });
});
