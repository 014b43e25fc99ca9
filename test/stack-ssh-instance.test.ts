import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { sshBanner } from "../src/providers/container/ready.ts";
import { cli } from "./support/cli.ts";
import { startSshd } from "./support/sshd.ts";

// An instance with the `ssh` provider: an existing machine (here this one, through a real sshd on
// 127.0.0.1). Starting it means reaching it; stopping it runs shutdown and leaves it running.

const root = process.getuid?.() === 0;

describe("a stack instance on an existing machine over SSH", {
  skip: root ? false : "needs root (sshd as root)",
}, () => {
  test("start: setup and configure over SSH with r.stack; stop: shutdown, the machine keeps running", async (t) => {
    const sshd = await startSshd(["root"]);
    t.after(() => sshd.stop());
    const kitchen = await tempDir("galley-stack-ssh-");
    const out = path.join(kitchen, "out");
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks/edge/recipes"), { recursive: true });
    await fs.writeFile(path.join(kitchen, "cookbooks/edge/cookbook.yaml"), "name: edge\nversion: 1.0.0\n");
    const recipe = (name: string) =>
      `export default function (r) {\n  r.file("${out}/${name}-" + r.stack.instance.name, { content: r.stack.online().map((i) => i.name).join(",") + " v" + r.stack.version + "\\n" });\n}\n`;
    for (const name of ["setup", "configure", "shutdown"])
      await fs.writeFile(path.join(kitchen, `cookbooks/edge/recipes/${name}.ts`), recipe(name));
    await fs.writeFile(
      path.join(kitchen, "stacks/edge.yaml"),
      `name: edge
cookbooks: ../cookbooks
layers:
  - name: edge
    recipes: { setup: [edge::setup], configure: [edge::configure], shutdown: [edge::shutdown] }
instances:
  - name: edge1
    layers: [edge]
    provider:
      type: ssh
      address: 127.0.0.1
      port: ${sshd.port}
      user: root
      key: ${sshd.clientKeyFile}
      known_hosts: ${sshd.knownHostsFile}
`,
    );
    await fs.mkdir(out);
    const up = cli(["stack", "up", "edge", "--json"], kitchen);
    assert.equal(up.code, 0, up.stderr);
    const instance = JSON.parse(up.stdout).instances[0];
    assert.deepEqual([instance.name, instance.status, instance.address], ["edge1", "online", "127.0.0.1"]);
    // setup ran before it was online (nobody online yet); configure saw it online
    assert.match(readFileSync(path.join(out, "setup-edge1"), "utf8"), /^ v\d+\n$/);
    assert.match(readFileSync(path.join(out, "configure-edge1"), "utf8"), /^edge1 v\d+\n$/);
    const stop = cli(["instance", "stop", "edge1", "--stack", "edge", "--json"], kitchen);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(JSON.parse(stop.stdout).instances[0].status, "stopped");
    assert.ok(existsSync(path.join(out, "shutdown-edge1")), "shutdown recipes ran over SSH");
    assert.match(
      (await sshBanner("127.0.0.1", 2000, sshd.port)) ?? "",
      /^SSH-2\.0-/,
      "the machine still runs",
    );
  });
});
