import { AsyncLocalStorage } from "node:async_hooks";
import { Buffer } from "node:buffer";
import { redacted } from "./report.ts";

// the shortest secret hidden: masking "1" or "yes" everywhere would hide more than it protects
const minSecretLength = 4;
// the shortest derived form (upper case, base64, hex…) hidden: shorter ones are too common
const minDerivedLength = 6;

/**
 * A registry of secrets to hide, with the forms derived from them (see `secretForms`). Every run
 * owns one (a CLI command, a fleet run, a lifecycle event: see `withSecrets`), a store keeps the
 * one it was opened with; scrubbing with it also hides every secret of its parent (the process
 * registry, for a run's), so a child never shows less than the process would. Secrets registered
 * in a child are hidden by that child only: two runs of one process do not see each other's.
 *
 * @example const run = new Secrets(); run.register(["hunter22"]); run.scrub("pw hunter22") // "pw (sensitive)"
 */
export class Secrets {
  readonly #parent: Secrets | undefined;
  // every form, an ASCII one keyed by its lower case: matching ignores case, so those differing only in case are one
  readonly #forms = new Map<string, string>();
  // the secrets whose forms are registered: a value registered again costs one lookup
  readonly #registered = new Set<string>();
  #version = 0;
  // one pattern for all forms (own and the parent's), rebuilt on first use after a registration
  // (null: no secret yet); one object for testing and scrubbing: a second would compile it again
  #matcher: RegExp | null = null;
  #compiledAt = 0;

  /** A registry whose scrubbing also hides the secrets of `parent` (none: a root registry). */
  constructor(parent?: Secrets) {
    this.#parent = parent;
  }

  /** Registers secret values: scrubbing with this registry hides them, and their derived forms, from now on. */
  register(values: Iterable<string>): void {
    for (const value of values) {
      if (value.length < minSecretLength || this.#registered.has(value)) continue;
      this.#registered.add(value);
      for (const form of secretForms(value)) {
        // beyond ASCII, lower case and the matcher's case folding differ (the Kelvin sign): exact
        const key = /^[\x20-\x7e]*$/.test(form) ? form.toLowerCase() : form;
        if (this.#forms.has(key)) continue;
        this.#forms.set(key, form);
        this.#version += 1;
      }
    }
  }

  /** The secret values registered here (not their forms, nor the parent's), in registration order. */
  values(): readonly string[] {
    return [...this.#registered];
  }

  /** The secret values registered here and in its parents (what a run hands to an agent, so that it hides them too). */
  allValues(): readonly string[] {
    return [...new Set([...(this.#parent?.allValues() ?? []), ...this.#registered])];
  }

  /** Changes with every registration here or in a parent (forms only grow: a sum of counts is enough). */
  get version(): number {
    return this.#version + (this.#parent?.version ?? 0);
  }

  /** Every form hidden, this registry's and its parents', longest first. */
  known(): readonly string[] {
    return [...this.#allForms().values()].sort((a, b) => b.length - a.length);
  }

  /**
   * `text` with every secret, in any of its forms and letter case, replaced by the redaction
   * marker; overlapping occurrences are replaced as one.
   */
  scrub(text: string): string {
    const each = this.#compiled();
    return each === null ? text : scrubWith(each, text);
  }

  /** Whether a value (a string or number, or one nested in arrays and objects) holds a secret in any form. */
  contains(value: unknown): boolean {
    const any = this.#compiled();
    return any !== null && holds(value, any);
  }

  #allForms(): Map<string, string> {
    const all = this.#parent ? this.#parent.#allForms() : new Map<string, string>();
    for (const [key, form] of this.#forms) all.set(key, form);
    return all;
  }

  #compiled(): RegExp | null {
    const version = this.version;
    if (version === this.#compiledAt) return this.#matcher;
    this.#compiledAt = version;
    // longest first: at one position, the longest form matches whole
    const source = this.known()
      .map((form) => form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("|");
    // u: Unicode case folding; without it V8 misses some non-ASCII forms (ſ, ς) in a long alternation
    this.#matcher = source === "" ? null : new RegExp(source, "giu");
    return this.#matcher;
  }
}

/**
 * The process registry: the parent of every run's registry, and the fallback where no run is
 * (`currentSecrets` outside `withSecrets`): a module's top level evaluated outside any run, a
 * library caller that never opened one. What is registered here is hidden by every run.
 */
export const processSecrets = new Secrets();

// the registry of the run whose code executes: recipes, attribute files and callbacks carry it along
const runSecrets = new AsyncLocalStorage<Secrets>();

/**
 * Runs `work` as part of the run that owns `secrets`: `sensitive()`, `!sensitive` values and
 * decrypted attribute files met inside it (in any callback or timer it starts too) register there,
 * and `currentSecrets()` inside it is that registry.
 *
 * @example const secrets = new Secrets(processSecrets); await withSecrets(secrets, () => runFleet({ …, secrets }));
 */
export function withSecrets<T>(secrets: Secrets, work: () => T): T {
  return runSecrets.run(secrets, work);
}

/** The registry of the run whose code is executing (see `withSecrets`); the process registry where none is. */
export function currentSecrets(): Secrets {
  return runSecrets.getStore() ?? processSecrets;
}

/**
 * Registers secret values in the current run's registry (the process's outside any run): every
 * text that run prints, reports or stores is scrubbed of them, and of the forms a recipe derives
 * from them (see `secretForms`), from now on.
 */
export function registerSecrets(values: Iterable<string>): void {
  currentSecrets().register(values);
}

/**
 * The forms of one secret that Galley hides (none under 4 characters): the secret, and, when 6
 * characters or longer, its upper and lower case, its shell-quoted forms (inside '…' and "…"), its
 * URL encodings (encodeURIComponent, and form encoding with + for spaces), the hex of its UTF-8
 * bytes, and its base64 and base64url at each of the 3 byte offsets it may have inside a longer
 * encoded text, without the partial characters at either edge; each also as escaped inside a JSON
 * string. Matching ignores letter case (Unicode simple case folding).
 *
 * @example secretForms("hunter2!").includes("aHVudGVyMi") // base64, as in Basic auth of "admin:hunter2!"
 */
export function secretForms(secret: string): string[] {
  if (secret.length < minSecretLength) return [];
  const bytes = Buffer.from(secret, "utf8");
  const derived = [
    secret.toUpperCase(),
    secret.toLowerCase(),
    secret.replaceAll("'", `'\\''`),
    secret.replace(/[\\"$`]/g, "\\$&"),
    ...urlEncodings(secret),
    bytes.toString("hex"),
    ...base64Forms(bytes),
  ].filter((form) => form.length >= minDerivedLength);
  const result = new Set<string>();
  for (const form of [secret, ...derived]) {
    result.add(form);
    // as written in JSON too, where quotes, backslashes and control characters are escaped
    result.add(JSON.stringify(form).slice(1, -1));
  }
  return [...result];
}

function urlEncodings(secret: string): string[] {
  try {
    return [encodeURIComponent(secret), new URLSearchParams([["", secret]]).toString().slice(1)];
  } catch {
    return []; // a lone surrogate has no URL encoding
  }
}

/**
 * Base64 and base64url of `bytes` as they appear at byte offset 0, 1 or 2 of a longer encoded
 * text (`admin:` + secret in Basic auth): only the characters that depend on the secret's bytes alone.
 */
function base64Forms(bytes: Buffer): string[] {
  const result: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString("base64");
    // character i encodes bits 6i to 6i+6 of the text: keep those within the secret's bits
    const form = encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
    result.push(form, form.replaceAll("+", "-").replaceAll("/", "_"));
  }
  return result;
}

/** Every form the current run's registry hides (see `currentSecrets`), longest first. */
export function knownSecrets(): readonly string[] {
  return currentSecrets().known();
}

/**
 * `text` with every secret of the current run's registry (see `currentSecrets`), in any of its
 * forms and letter case, replaced by the redaction marker; overlapping occurrences are replaced as one.
 */
export function scrubSecrets(text: string): string {
  return currentSecrets().scrub(text);
}

function scrubWith(each: RegExp, text: string): string {
  each.lastIndex = 0;
  let match = each.exec(text);
  if (match === null) return text;
  let result = "";
  let copied = 0;
  let start = match.index;
  let end = start + match[0].length;
  for (;;) {
    // from the next character, not the match's end: an occurrence overlapping this one is hidden too
    each.lastIndex = match.index + (isPairAt(text, match.index) ? 2 : 1);
    match = each.exec(text);
    if (match !== null && match.index < end) {
      end = Math.max(end, match.index + match[0].length);
      continue;
    }
    result += text.slice(copied, start) + redacted;
    copied = end;
    if (match === null) break;
    start = match.index;
    end = start + match[0].length;
  }
  return result + text.slice(copied);
}

// a surrogate pair is one character to a unicode pattern: never search from its middle
function isPairAt(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(at + 1) & 0xfc00) === 0xdc00;
}

/**
 * Whether a value (a string or number, or one nested in arrays and objects) contains a secret of
 * the current run's registry (see `currentSecrets`) in any of its forms.
 */
export function containsSecret(value: unknown): boolean {
  return currentSecrets().contains(value);
}

function holds(value: unknown, any: RegExp): boolean {
  if (typeof value === "number" || typeof value === "bigint") return holds(String(value), any);
  if (typeof value === "string") {
    any.lastIndex = 0;
    return any.test(value);
  }
  if (Array.isArray(value)) return value.some((item) => holds(item, any));
  if (value && typeof value === "object" && !ArrayBuffer.isView(value))
    return Object.values(value).some((item) => holds(item, any));
  return false;
}

/**
 * Marks a value sensitive in a TypeScript attributes file or recipe: it is scrubbed from every
 * log, plan, report and error of the run from now on, and resources holding it are sensitive. It
 * registers in the run whose code calls it (see `withSecrets`); at a module's top level, in every
 * run that imports the module (see `importCookbookModule`). Wrap what Galley cannot recognise as
 * derived from a secret, such as a hash of it.
 *
 * @example export default { db: { password: sensitive(process.env.DB_PASSWORD ?? "") } };
 * @example r.file("/etc/app/token.sha", { content: sensitive(sha256(r.attrs.app.token)) });
 */
export function sensitive<T extends string | number>(value: T): T {
  currentSecrets().register([String(value)]);
  return value;
}

/**
 * The strings a redactor must hide: every string and number leaf of `values` (numbers as written by
 * String()), and each trimmed line of a multi-line string, keeping only those of 4 characters or more
 * (masking "1" or "yes" everywhere would hide more than it protects). Unique, longest first, so that
 * replacing them in order never leaves part of a longer secret.
 *
 * @example secretValues({ db: { password: "s3cret!", port: 5432, ssl: true } }) // ["s3cret!", "5432"]
 */
export function secretValues(values: unknown): string[] {
  const found = new Set<string>();
  const add = (text: string) => {
    if (text.length >= minSecretLength) found.add(text);
  };
  const walk = (value: unknown): void => {
    if (typeof value === "string") {
      add(value);
      if (value.includes("\n")) for (const line of value.split(/\r?\n/)) add(line.trim());
    } else if (typeof value === "number" || typeof value === "bigint") add(String(value));
    else if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(walk);
  };
  walk(values);
  return [...found].sort((a, b) => b.length - a.length || a.localeCompare(b));
}
