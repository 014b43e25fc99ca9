// Rewrites one file atomically, forever, until killed: node atomic-writer.ts FILE SIZE
// Each version is SIZE bytes of one letter (a, b, c, …), so a reader can tell a whole one from a torn one.
import { writeFileAtomic } from "../../src/hosts/atomic-write.ts";

const [file, size] = process.argv.slice(2) as [string, string];
process.stdout.write("ready\n");
for (let n = 0; ; n++) {
  await writeFileAtomic(file, Buffer.alloc(Number(size), 97 + (n % 26)), { mode: 0o640 });
}
