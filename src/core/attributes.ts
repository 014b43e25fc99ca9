/** Deployment-specific configuration: JSON-like data merged by precedence. */
export interface Attributes {
  // biome-ignore lint/suspicious/noExplicitAny: attributes are free-form user data, read as r.attrs.app.port
  [key: string]: any;
}

/**
 * Merges `higher` over `lower`: objects merge key by key, arrays and scalars replace.
 * Neither input is changed.
 *
 * @example deepMerge({ app: { port: 80, tags: ["a"] } }, { app: { tags: ["b"] } }) // { app: { port: 80, tags: ["b"] } }
 */
export function deepMerge(lower: Attributes, higher: Attributes): Attributes {
  const result: Attributes = { ...lower };
  for (const [key, value] of Object.entries(higher)) {
    const base = result[key];
    result[key] = isPlainObject(base) && isPlainObject(value) ? deepMerge(base, value) : value;
  }
  return result;
}

export function isPlainObject(value: unknown): value is Attributes {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}
