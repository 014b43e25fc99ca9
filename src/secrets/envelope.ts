// What tells an encrypted file apart, without loading node:crypto (10 ms) for every attribute file.

/** The start of every encrypted file's header line, whatever the format version. */
export const headerPrefix = "$GALLEY_VAULT;";

/** Whether `text` is an encrypted file (any version), i.e. starts with the `$GALLEY_VAULT;` header. */
export function isEncrypted(text: string): boolean {
  return text.startsWith(headerPrefix);
}
