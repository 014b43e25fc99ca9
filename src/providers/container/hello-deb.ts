import * as fs from "node:fs/promises";
import * as path from "node:path";
import { runOk } from "./run.ts";

/** The tiny package made here for tests: installs /usr/share/galley-hello/hello.txt. */
export const helloPackage = {
  name: "galley-hello",
  version: "1.0",
  file: "/usr/share/galley-hello/hello.txt",
};

/** Builds the galley-hello .deb with dpkg-deb in `work`, writing it into `repo`. */
export async function buildHelloDeb(work: string, repo: string): Promise<void> {
  const { name, version } = helloPackage;
  await fs.mkdir(path.join(work, "DEBIAN"), { recursive: true });
  await fs.mkdir(path.join(work, "usr", "share", name), { recursive: true });
  const control = [
    `Package: ${name}`,
    `Version: ${version}`,
    "Architecture: all",
    "Maintainer: Galley <hosts@galley.invalid>",
    "Section: misc",
    "Priority: optional",
    "Description: Galley's test package",
    " Installs one file; the container hosts' tests install it from the local repository.",
    "",
  ].join("\n");
  await fs.writeFile(path.join(work, "DEBIAN", "control"), control);
  await fs.writeFile(path.join(work, helloPackage.file), `hello from ${name} ${version}\n`);
  const deb = path.join(repo, `${name}_${version}_all.deb`);
  await runOk(["dpkg-deb", "--root-owner-group", "--build", work, deb], "building galley-hello");
  await fs.rm(work, { recursive: true, force: true });
}
