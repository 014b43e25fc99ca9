import { redacted } from "./report.ts";

// the secret values this process has seen (decrypted attributes): never printed, wherever they end up
const known = new Set<string>();
let ordered: string[] = [];

/** Registers secret values; every text Galley prints or reports is scrubbed of them from now on. */
export function registerSecrets(values: Iterable<string>): void {
  let added = false;
  for (const value of values) {
    if (value.length < 4) continue;
    // as written in JSON too, where quotes, backslashes and line breaks are escaped
    for (const form of [value, JSON.stringify(value).slice(1, -1)]) {
      if (known.has(form)) continue;
      known.add(form);
      added = true;
    }
  }
  // longest first, so that a secret containing another is replaced whole
  if (added) ordered = [...known].sort((a, b) => b.length - a.length);
}

/** The registered secrets, longest first. */
export function knownSecrets(): readonly string[] {
  return ordered;
}

/** `text` with every registered secret replaced by the redaction marker. */
export function scrubSecrets(text: string): string {
  let result = text;
  for (const secret of ordered) if (result.includes(secret)) result = result.split(secret).join(redacted);
  return result;
}

/** Whether a value (a string, or strings nested in arrays and objects) contains a registered secret. */
export function containsSecret(value: unknown): boolean {
  if (ordered.length === 0) return false;
  if (typeof value === "string") return ordered.some((secret) => value.includes(secret));
  if (Array.isArray(value)) return value.some(containsSecret);
  if (value && typeof value === "object") return Object.values(value).some(containsSecret);
  return false;
}

/**
 * Marks a value sensitive in a TypeScript attributes file or recipe: it is scrubbed from every
 * log, plan, report and error from now on, and resources holding it are sensitive.
 *
 * @example export default { db: { password: sensitive(process.env.DB_PASSWORD ?? "") } };
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
    if (text.length >= 4) found.add(text);
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
