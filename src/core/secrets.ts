import { Buffer } from "node:buffer";
import { redacted } from "./report.ts";

// every form of the secrets this process has seen (decrypted attributes, !sensitive, sensitive()),
// an ASCII one keyed by its lower case: matching ignores case, so those differing only in case are one
const forms = new Map<string, string>();
// the secrets whose forms are registered: a value registered again costs one lookup
const registered = new Set<string>();
// one pattern for all forms, rebuilt on first use after a registration (null: no secret yet); one
// object for testing and scrubbing: a second one, with other flags, would compile the pattern again
let matcher: RegExp | null = null;
let stale = false;

// the shortest secret hidden: masking "1" or "yes" everywhere would hide more than it protects
const minSecretLength = 4;
// the shortest derived form (upper case, base64, hex…) hidden: shorter ones are too common
const minDerivedLength = 6;

/**
 * Registers secret values; every text Galley prints, reports or stores is scrubbed of them, and of
 * the forms a recipe derives from them (see `secretForms`), from now on.
 */
export function registerSecrets(values: Iterable<string>): void {
  for (const value of values) {
    if (value.length < minSecretLength || registered.has(value)) continue;
    registered.add(value);
    for (const form of secretForms(value)) {
      // beyond ASCII, lower case and the matcher's case folding differ (the Kelvin sign): exact
      const key = /^[\x20-\x7e]*$/.test(form) ? form.toLowerCase() : form;
      if (forms.has(key)) continue;
      forms.set(key, form);
      stale = true;
    }
  }
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

function compiled(): RegExp | null {
  if (!stale) return matcher;
  stale = false;
  // longest first: at one position, the longest form matches whole
  const source = [...forms.values()]
    .sort((a, b) => b.length - a.length)
    .map((form) => form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("|");
  // u: Unicode case folding; without it V8 misses some non-ASCII forms (ſ, ς) in a long alternation
  matcher = new RegExp(source, "giu");
  return matcher;
}

/** Every registered form, longest first. */
export function knownSecrets(): readonly string[] {
  return [...forms.values()].sort((a, b) => b.length - a.length);
}

/**
 * `text` with every registered secret, in any of its forms and letter case, replaced by the
 * redaction marker; overlapping occurrences are replaced as one.
 */
export function scrubSecrets(text: string): string {
  const each = compiled();
  if (each === null) return text;
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
 * Whether a value (a string or number, or one nested in arrays and objects) contains a registered
 * secret in any of its forms.
 */
export function containsSecret(value: unknown): boolean {
  const any = compiled();
  return any !== null && holds(value, any);
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
 * log, plan, report and error from now on, and resources holding it are sensitive. Wrap what Galley
 * cannot recognise as derived from a secret, such as a hash of it.
 *
 * @example export default { db: { password: sensitive(process.env.DB_PASSWORD ?? "") } };
 * @example r.file("/etc/app/token.sha", { content: sensitive(sha256(r.attrs.app.token)) });
 */
export function sensitive<T extends string | number>(value: T): T {
  registerSecrets([String(value)]);
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
