import autocannon from "autocannon";

/** What a load run saw: every response, the non-2xx among them, errors, and who answered. */
export interface LoadResult {
  /** responses received (any status) */
  requests: number;
  non2xx: number;
  /** connection errors, resets and timeouts */
  errors: number;
  /** responses counted by the first capture group of `byBody` on their body ("(none)" when it does not match) */
  byBody: Map<string, number>;
  /** the first few error messages and non-2xx answers, to say what went wrong */
  samples: string[];
}

/** A load run in progress. */
export interface Load {
  /** the counts so far (a copy) */
  snapshot(): LoadResult;
  /** stops the load and resolves with the final counts */
  stop(): Promise<LoadResult>;
  /** resolves with the final counts when the duration ends (or after stop) */
  done: Promise<LoadResult>;
}

/**
 * Requests `GET url` over `connections` keep-alive connections (autocannon) for `seconds`, or
 * until stopped, counting the responses by a regex on their body.
 *
 * @example const load = startLoad({ url: `http://${lb}/`, byBody: /hello from (\S+)/ }); …; const r = await load.stop();
 */
export function startLoad(options: {
  url: string;
  byBody: RegExp;
  /** how long the load runs unless stopped (default: an hour, i.e. until stopped) */
  seconds?: number;
  connections?: number;
  /** requests per second over all connections (default: as fast as the server answers) */
  rate?: number;
  /** seconds before a request without an answer counts as an error (default 10) */
  timeout?: number;
  /** stop after this many requests (then `done` resolves), whatever the duration */
  amount?: number;
}): Load {
  const counts: LoadResult = { requests: 0, non2xx: 0, errors: 0, byBody: new Map(), samples: [] };
  const sample = (line: string) => {
    if (counts.samples.length < 20) counts.samples.push(line);
  };
  const copy = (): LoadResult => ({
    ...counts,
    byBody: new Map(counts.byBody),
    samples: [...counts.samples],
  });
  let resolveDone: (result: LoadResult) => void = () => {};
  const done = new Promise<LoadResult>((resolve) => {
    resolveDone = resolve;
  });

  const instance = autocannon(
    {
      url: options.url,
      connections: options.connections ?? 8,
      duration: options.seconds ?? 3600,
      timeout: options.timeout ?? 10,
      ...(options.rate ? { overallRate: options.rate } : {}),
      ...(options.amount ? { amount: options.amount } : {}),
      requests: [
        {
          method: "GET",
          onResponse: (status: number, body: string) => {
            counts.requests++;
            if (status < 200 || status > 299) {
              counts.non2xx++;
              sample(`HTTP ${status}: ${body.slice(0, 200)}`);
            }
            const key = options.byBody.exec(body)?.[1] ?? "(none)";
            counts.byBody.set(key, (counts.byBody.get(key) ?? 0) + 1);
          },
        },
      ],
    },
    (error, result) => {
      if (error) {
        counts.errors++;
        sample(`autocannon: ${error.message}`);
      } else {
        // autocannon's own totals, in case an event was missed
        counts.errors = Math.max(counts.errors, result.errors);
        counts.non2xx = Math.max(counts.non2xx, result.non2xx);
      }
      resolveDone(copy());
    },
  );
  instance.on("reqError", (error: Error) => {
    counts.errors++;
    sample(`error: ${error.message}`);
  });

  return {
    snapshot: copy,
    stop: () => {
      instance.stop();
      return done;
    },
    done,
  };
}
