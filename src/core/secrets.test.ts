import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { redacted } from "./report.ts";
import {
  containsSecret,
  currentSecrets,
  processSecrets,
  registerSecrets,
  Secrets,
  scrubSecrets,
  secretForms,
  sensitive,
  withSecrets,
} from "./secrets.ts";

// outside any run the registry is the process's: every test uses its own random secrets
const fresh = (prefix: string) => `${prefix}-${randomBytes(9).toString("base64url")}`;

test("secrets: the secret itself is hidden in any letter case, and nothing around it", () => {
  const secret = fresh("Tok");
  registerSecrets([secret]);
  for (const form of [
    secret,
    secret.toUpperCase(),
    secret.toLowerCase(),
    secret[0]!.toLowerCase() + secret.slice(1),
  ])
    assert.equal(scrubSecrets(`a=${form};`), `a=${redacted};`, form);
  assert.equal(scrubSecrets("nothing secret here"), "nothing secret here");
});

test("secrets: base64 and base64url of a secret inside a longer text are hidden at every byte offset", () => {
  // bytes that encode to + and / in base64 and to - and _ in base64url
  const secret = `pw>?~${randomBytes(6).toString("hex")}\u00ff?>`;
  registerSecrets([secret]);
  for (let before = 0; before < 6; before++) {
    for (let after = 0; after < 4; after++) {
      const bytes = Buffer.from(`${"u".repeat(before)}${secret}${"v".repeat(after)}`);
      for (const encoding of ["base64", "base64url"] as const) {
        const text = bytes.toString(encoding);
        const scrubbed = scrubSecrets(text);
        // every character that encodes only bytes of the secret is hidden; at most the partial ones at its edges stay
        const secretBytes = Buffer.byteLength(secret);
        const first = Math.ceil((8 * before) / 6);
        const last = Math.floor((8 * (before + secretBytes)) / 6);
        const at = scrubbed.indexOf(redacted);
        assert.ok(at >= 0 && at <= first, `${encoding} ${before}/${after}: ${scrubbed}`);
        assert.ok(scrubbed.length - at - redacted.length <= text.length - last, `${encoding}: ${scrubbed}`);
      }
    }
  }
  // HTTP Basic auth: base64 of user:password
  const basic = Buffer.from(`admin:${secret}`).toString("base64");
  assert.match(
    scrubSecrets(`Authorization: Basic ${basic}`),
    /^Authorization: Basic YWRtaW46\(sensitive\).{0,3}$/,
  );
});

test("secrets: hex, URL, shell-quoted and JSON-escaped forms are hidden", () => {
  const secret = `a b'c"d$e\\f&g/${randomBytes(4).toString("hex")}`;
  registerSecrets([secret]);
  const bytes = Buffer.from(secret);
  const forms = {
    hex: bytes.toString("hex"),
    HEX: bytes.toString("hex").toUpperCase(),
    uri: encodeURIComponent(secret),
    form: new URLSearchParams({ q: secret }).toString().slice(2),
    single: `'${secret.replaceAll("'", `'\\''`)}'`,
    double: `"${secret.replace(/[\\"$`]/g, "\\$&")}"`,
    json: JSON.stringify(secret),
    jsonUpper: JSON.stringify(secret.toUpperCase()),
  };
  for (const [name, form] of Object.entries(forms)) {
    const scrubbed = scrubSecrets(`<${form}>`);
    assert.doesNotMatch(scrubbed, /[0-9a-f]{8}/i, `${name}: ${scrubbed}`);
    assert.ok(scrubbed.startsWith("<") && scrubbed.endsWith(">") && scrubbed.includes(redacted), name);
  }
});

test("secrets: derived forms shorter than 6 characters are not registered; the secret from 4", () => {
  assert.deepEqual(secretForms("abc"), []);
  const forms = secretForms("wxyz");
  assert.ok(forms.includes("wxyz"));
  assert.ok(forms.includes("7778797a"), "hex is 8 characters");
  assert.ok(
    forms.every((form) => form === "wxyz" || form.length >= 6),
    forms.join(" "),
  );
});

test("secrets: overlapping occurrences of two secrets are hidden as one, leaving no part of either", () => {
  const tail = randomBytes(4).toString("hex");
  const a = `first-${tail}`;
  const b = `${tail}-second`;
  registerSecrets([a, b]);
  assert.equal(scrubSecrets(`<first-${tail}-second>`), `<${redacted}>`);
  assert.equal(scrubSecrets(`${a}${a}`), `${redacted}${redacted}`);
});

test("secrets: containsSecret finds any form in nested strings and numbers", () => {
  const secret = fresh("nest");
  registerSecrets([secret]);
  const basic = Buffer.from(`user:${secret}`).toString("base64");
  assert.ok(containsSecret({ a: [{ b: `Basic ${basic}` }] }));
  assert.ok(containsSecret(["x", secret.toUpperCase()]));
  assert.ok(!containsSecret({ a: ["x", 1, null, true] }));
  const number = 9_000_000_000 + Math.floor(Math.random() * 1_000_000);
  registerSecrets([String(number)]);
  assert.ok(containsSecret({ port: number }));
});

test("secrets: what cannot be recognised, such as a hash, is hidden once wrapped with sensitive()", () => {
  const secret = fresh("hash");
  registerSecrets([secret]);
  const digest = createHash("sha256").update(secret).digest("hex");
  assert.ok(!containsSecret(digest), "a hash is not a form of the secret");
  assert.equal(sensitive(digest), digest);
  assert.equal(scrubSecrets(`sha=${digest}`), `sha=${redacted}`);
});

test("secrets: every form of many secrets with non-ASCII letters and emoji is hidden, and scrubbing ends", () => {
  // letters with several case forms (σ ς Σ, ſ s S, K k K), ß, an astral character, quotes and escapes
  const alphabet = [..."abcXYZ019-_!é ÉßÄöΣσςДдİıſK😀'\"$\\"];
  let seed = 42;
  const pick = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return alphabet[seed % alphabet.length]!;
  };
  const secrets = Array.from({ length: 300 }, (_, i) => Array.from({ length: 6 + (i % 10) }, pick).join(""));
  registerSecrets(secrets);
  const missed = secrets.flatMap((secret) =>
    secretForms(secret).filter((form) => scrubSecrets(`<${form}>`).includes(form)),
  );
  assert.deepEqual(missed, []);
  // overlapping occurrences around surrogate pairs: one marker, in bounded time
  const emoji = "😀😀-emoji-secret-😀😀";
  registerSecrets([emoji, "😀-emoji"]);
  assert.equal(scrubSecrets(`<😀${emoji}😀>`), `<😀${redacted}😀>`);
  assert.equal(scrubSecrets(`<${emoji}-emoji>`), `<${redacted}>`, "the second overlaps the first's last 😀");
});

test("secrets: a registry per run hides its own and the process's secrets; runs do not share theirs", () => {
  const first = new Secrets(processSecrets);
  const second = new Secrets(processSecrets);
  const mine = fresh("run1");
  const theirs = fresh("run2");
  first.register([mine]);
  second.register([theirs]);
  assert.equal(first.scrub(`a ${mine} b`), `a ${redacted} b`);
  assert.equal(first.scrub(`a ${theirs} b`), `a ${theirs} b`, "the other run's secret is not this run's");
  assert.equal(second.scrub(`a ${theirs}`), `a ${redacted}`);
  assert.equal(scrubSecrets(`a ${mine}`), `a ${mine}`, "a run's secret stays out of the process registry");
  assert.ok(first.contains({ deep: [mine.toUpperCase()] }));
  assert.ok(!second.contains({ deep: [mine] }));
  // registered in the process after the runs began: every run hides it at once
  const later = fresh("later");
  registerSecrets([later]);
  for (const run of [first, second]) {
    assert.equal(run.scrub(`x ${later} y`), `x ${redacted} y`);
    assert.ok(run.known().includes(later));
  }
  // its derived forms too: the base64 of a run's secret is hidden by that run only
  const encoded = Buffer.from(mine).toString("base64");
  assert.ok(first.scrub(`auth ${encoded}`).includes(redacted));
  assert.equal(second.scrub(`auth ${encoded}`), `auth ${encoded}`);
  // a root registry without a parent hides only its own
  const alone = new Secrets();
  assert.equal(alone.scrub(`${later} ${mine}`), `${later} ${mine}`);
});

test("secrets: inside withSecrets the run's registry is current, in its callbacks and timers too; outside, the process's", async () => {
  assert.equal(currentSecrets(), processSecrets);
  const run = new Secrets(processSecrets);
  const mine = fresh("run");
  const later = fresh("later");
  await withSecrets(run, async () => {
    assert.equal(currentSecrets(), run);
    sensitive(mine);
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        registerSecrets([later]);
        resolve();
      }, 1),
    );
    assert.equal(scrubSecrets(`${mine} ${later}`), `${redacted} ${redacted}`);
    assert.ok(containsSecret({ deep: [later] }));
  });
  assert.deepEqual(run.values(), [mine, later]);
  // the process registry, and so every other run, never learnt them
  assert.equal(scrubSecrets(`${mine} ${later}`), `${mine} ${later}`);
  assert.equal(new Secrets(processSecrets).scrub(mine), mine);
  // what the process registry holds, a run hides too
  const global = fresh("proc");
  registerSecrets([global]);
  assert.equal(run.scrub(global), redacted);
});
