// Takes a host's run lock and holds it until killed: `node hold-run-lock.ts TARGET_JSON STATE_DIR`
// over SSH, or `node hold-run-lock.ts local STATE_DIR` on this machine. Prints "locked" once held.
import { acquireRunLock } from "../../src/core/runlock.ts";
import { LocalHost } from "../../src/hosts/local.ts";
import { SshHost } from "../../src/hosts/ssh.ts";

const [where, stateDir] = process.argv.slice(2);
const host = where === "local" ? new LocalHost() : await SshHost.connect(JSON.parse(where!));
await acquireRunLock(host, stateDir!, { waitMs: 0, command: "hold-run-lock" });
process.stdout.write("locked\n");
setInterval(() => {}, 60_000);
