import { GalleyError } from "../core/errors.ts";

// Failed logins slow an attacker down: after `limit` failures for one key (a user name, a remote
// address) within `windowMs`, that key is refused at once until its oldest failure leaves the
// window. Kept in the server's memory: a restart forgets, and each server counts its own.

/** How many failed logins one user name or one address may have within the window. */
export const loginFailureLimit = 5;
/** The window failed logins are counted over. */
export const loginWindowMs = 15 * 60_000;
/** The most keys remembered (an attacker cycling addresses cannot grow the map without bound). */
const maxKeys = 10_000;

/** Counts failed logins per key. */
export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;

  constructor(limit = loginFailureLimit, windowMs = loginWindowMs) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** How long until none of the keys has `limit` failures within the window (0: none has now). */
  waitMs(keys: readonly string[], now = Date.now()): number {
    let until = now;
    for (const key of keys) {
      const recent = this.#recent(key, now);
      if (recent.length >= this.#limit)
        until = Math.max(until, (recent[recent.length - this.#limit] ?? now) + this.#windowMs);
    }
    return until - now;
  }

  /** Refuses (LOGIN_THROTTLED) when any of the keys had `limit` failures within the window. */
  check(keys: readonly string[], now = Date.now()): void {
    const wait = this.waitMs(keys, now);
    if (wait <= 0) return;
    const minutes = Math.max(1, Math.ceil(wait / 60_000));
    throw new GalleyError(
      "LOGIN_THROTTLED",
      `too many failed logins for this user or from this address: try again in ${minutes} min`,
      { hint: "wait, or ask an admin to set the password again (galley user passwd)" },
    );
  }

  /** Records a failed login for each key. */
  fail(keys: readonly string[], now = Date.now()): void {
    for (const key of keys) {
      const recent = this.#recent(key, now);
      recent.push(now);
      this.#failures.delete(key); // re-inserted last: the map's order is by last failure
      this.#failures.set(key, recent.slice(-this.#limit));
    }
    while (this.#failures.size > maxKeys) {
      const oldest = this.#failures.keys().next().value;
      if (oldest === undefined) break;
      this.#failures.delete(oldest);
    }
  }

  /** Takes back one failure recorded at `at` for each key (an attempt counted before it was known to succeed). */
  forgive(keys: readonly string[], at: number): void {
    for (const key of keys) {
      const failures = this.#failures.get(key);
      const index = failures?.lastIndexOf(at) ?? -1;
      if (failures !== undefined && index >= 0) failures.splice(index, 1);
    }
  }

  /** Forgets a key's failures (a user who logged in). */
  clear(key: string): void {
    this.#failures.delete(key);
  }

  #recent(key: string, now: number): number[] {
    const recent = (this.#failures.get(key) ?? []).filter((at) => at > now - this.#windowMs);
    if (recent.length === 0) this.#failures.delete(key);
    return recent;
  }
}
