import { GalleyError } from "../../core/errors.ts";

/** A count of instances as the user gave it: `3` or `25%`. */
export type Size = { count: number } | { percent: number };

/**
 * Parses a `--batch`, `--max-unavailable` or `--max-fail` value: a whole number or a percentage.
 * `min` is the smallest count allowed (a batch of 0 makes no progress; a max-fail of 0 is fine).
 *
 * @example parseSize("--batch", "25%", 1) // { percent: 25 }
 */
export function parseSize(flag: string, text: string, min: 0 | 1): Size {
  const match = /^(\d{1,6})(%?)$/.exec(text.trim());
  const value = match ? Number(match[1]) : Number.NaN;
  const percent = match?.[2] === "%";
  if (!match || value < min || (percent && value > 100) || (percent && min === 1 && value === 0)) {
    throw new GalleyError(
      "USAGE",
      `${flag} ${text}: ${percent ? `a share from ${min === 1 ? 1 : 0}% to 100%` : `a whole number of instances, at least ${min}`}`,
      { hint: `e.g. ${flag} 2 or ${flag} 25%` },
    );
  }
  return percent ? { percent: value } : { count: value };
}

/** A size as a number of instances out of `total`: a share rounds up, so 10% of 3 is 1. */
export function countOf(size: Size, total: number): number {
  return "count" in size ? size.count : Math.ceil((size.percent * total) / 100);
}

/** How a size reads in a plan or a record: "2" or "25%". */
export function sizeText(size: Size): string {
  return "count" in size ? String(size.count) : `${size.percent}%`;
}
