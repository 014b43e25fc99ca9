import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../../resources/testing.ts";
import { formatOneLine, parseDeb822, parseOneLine, releaseSources } from "./sources.ts";

test("one-line sources: deb lines with options, comments and deb-src skipped", () => {
  const text = [
    "# a comment",
    "deb [arch=amd64 signed-by=/k.gpg] http://mirror/debian bookworm main contrib # trailing",
    "deb-src http://mirror/debian bookworm main",
    "deb http://security/debian-security bookworm-security main",
  ].join("\n");
  assert.deepEqual(parseOneLine(text), [
    { uri: "http://mirror/debian", suite: "bookworm", components: ["main", "contrib"], signedBy: "/k.gpg" },
    { uri: "http://security/debian-security", suite: "bookworm-security", components: ["main"] },
  ]);
});

test("deb822 sources: every URI × suite, disabled stanzas and deb-src skipped", () => {
  const text = [
    "Types: deb",
    "URIs: http://a/debian http://b/debian",
    "Suites: bookworm bookworm-updates",
    "Components: main",
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
    "",
    "Types: deb-src",
    "URIs: http://a/debian",
    "Suites: bookworm",
    "Components: main",
    "",
    "Types: deb",
    "Enabled: no",
    "URIs: http://c/debian",
    "Suites: bookworm",
    "Components: main",
  ].join("\n");
  const sources = parseDeb822(text);
  assert.deepEqual(
    sources.map((s) => `${s.uri} ${s.suite}`),
    [
      "http://a/debian bookworm",
      "http://a/debian bookworm-updates",
      "http://b/debian bookworm",
      "http://b/debian bookworm-updates",
    ],
  );
  assert.equal(sources[0]!.signedBy, "/usr/share/keyrings/debian-archive-keyring.gpg");
  assert.deepEqual(formatOneLine(sources.slice(0, 1)), [
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://a/debian bookworm main",
  ]);
});

test("releaseSources keeps only the release's suites and falls back to deb.debian.org", async () => {
  const etc = await tempDir();
  await fs.mkdir(path.join(etc, "sources.list.d"));
  await fs.writeFile(path.join(etc, "sources.list"), "deb http://m/debian bookworm main\n");
  await fs.writeFile(
    path.join(etc, "sources.list.d", "other.sources"),
    "Types: deb\nURIs: http://m/other\nSuites: jammy\nComponents: main\n",
  );
  assert.deepEqual(
    (await releaseSources("bookworm", etc)).map((s) => s.uri),
    ["http://m/debian"],
  );
  const fallback = await releaseSources("trixie", etc);
  assert.deepEqual(
    fallback.map((s) => s.suite),
    ["trixie", "trixie-updates", "trixie-security"],
  );
});
