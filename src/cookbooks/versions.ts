import { createRequire } from "node:module";

// semver takes ~20 ms to load: a run whose cookbooks declare no version constraints never loads it
let loaded: typeof import("semver") | undefined;
function semver(): typeof import("semver") {
  loaded ??= createRequire(import.meta.url)("semver") as typeof import("semver");
  return loaded;
}

// the grammar of semver.org 2.0.0, without a leading "v" or "="
const versionPattern =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** Whether `version` is a semantic version like 1.2.3 or 2.0.0-rc.1. */
export function isVersion(version: string): boolean {
  return versionPattern.test(version);
}

/** Whether `range` is a version constraint semver understands ("^1.2", "~2.3", ">= 1 < 2", "*"). */
export function isConstraint(range: string): boolean {
  return range.trim() === "*" || semver().validRange(range) !== null;
}

/** Whether `version` satisfies `range` ("*" matches everything without loading semver). */
export function satisfies(version: string, range: string): boolean {
  return range.trim() === "*" || semver().satisfies(version, range);
}

/** The highest of `versions` that satisfies every one of `ranges`, or undefined. */
export function highestSatisfying(
  versions: readonly string[],
  ranges: readonly string[],
): string | undefined {
  const sorted = [...versions].sort((a, b) => semver().rcompare(a, b));
  return sorted.find((version) => ranges.every((range) => satisfies(version, range)));
}

/** Sorts versions ascending. */
export function sortVersions(versions: readonly string[]): string[] {
  return [...versions].sort((a, b) => semver().compare(a, b));
}
