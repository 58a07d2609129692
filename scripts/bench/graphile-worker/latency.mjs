// Start latency: a graphile-worker runner waits on an empty queue; no-op jobs are then added
// one `addJob` call each at a steady offered rate for some seconds (open loop: a slow add does
// not delay the next one), and each job's task notes when it started. Latency is the task's
// start minus the moment its `addJob` was called, both read from this process's monotonic
// clock (producer and worker share the process, so no clock skew enters the figure).
//
// Prints one JSON object on stdout; progress on stderr. See README.md for the options.

import { performance } from "node:perf_hooks";
import { EventEmitter } from "node:events";

import {
  GRAPHILE_WORKER_VERSION,
  TASK,
  positiveInt,
  progress,
  quantile,
  round,
  runMain,
  startRunner,
  withSchema,
  workerOptions,
} from "./lib.mjs";

const USAGE = `usage: node latency.mjs [--database-url URL] [--rate R] [--seconds S]
                        [--mode default|local-queue] [--concurrency C] [--grace-seconds G]
`;

/**
 * A run kept up when every job had started by this long after the run's scheduled end: a queue
 * that keeps up has no backlog beyond its latency, one that falls behind 10 % over 10 s is
 * a second behind at the end.
 */
const KEPT_UP_SLACK_MS = 1000;

async function main(args) {
  const rate = positiveInt("rate", args.rate);
  const seconds = positiveInt("seconds", args.seconds);
  const graceSeconds = positiveInt("grace-seconds", args["grace-seconds"]);
  const concurrencyArg =
    args.concurrency === undefined ? undefined : positiveInt("concurrency", args.concurrency);
  const { options, concurrency } = workerOptions(args.mode, concurrencyArg);
  const total = rate * seconds;

  return withSchema(args["database-url"], async ({ databaseUrl, schema, utils }) => {
    const calledAt = new Float64Array(total);
    const returnedAt = new Float64Array(total).fill(NaN);
    const startedAt = new Float64Array(total).fill(NaN);
    let started = 0;
    const taskList = {
      [TASK]: async (payload) => {
        startedAt[payload.i] = performance.now();
        started += 1;
      },
    };

    // Jobs are only added once the runner listens for new-job notifications, so the first jobs
    // do not wait for its start-up.
    const events = new EventEmitter();
    const listening = new Promise((resolve) => events.once("pool:listen:success", resolve));
    const runner = await startRunner({ databaseUrl, schema }, taskList, options, events);
    try {
      await Promise.race([listening, runner.stopped]);
      // Let the first empty fetch settle so the run starts against an idle worker.
      await new Promise((resolve) => setTimeout(resolve, 500));
      progress(`schema ${schema}: offering ${rate} jobs/s for ${seconds} s (${args.mode}, concurrency ${concurrency})`);

      const interval = 1000 / rate;
      const t0 = performance.now();
      let producerLagMax = 0;
      let addErrors = 0;
      let firstAddError;
      let next = 0;
      const produced = new Promise((resolve) => {
        const tick = () => {
          const now = performance.now();
          // Every job whose time has come is added now, so a late timer never lowers the
          // offered rate; the lateness is recorded instead.
          while (next < total && t0 + next * interval <= now) {
            const i = next++;
            const called = performance.now();
            producerLagMax = Math.max(producerLagMax, called - (t0 + i * interval));
            calledAt[i] = called;
            utils.addJob(TASK, { i }).then(
              () => (returnedAt[i] = performance.now()),
              (error) => {
                addErrors += 1;
                firstAddError ??= error;
              },
            );
          }
          if (next < total) {
            setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
          } else {
            resolve();
          }
        };
        tick();
      });
      const ticker = setInterval(() => {
        progress(`${next}/${total} added, ${started} started`);
      }, 1000);
      try {
        await Promise.race([produced, runner.stopped]);
        // Wait for stragglers: until every job started or the grace period is over.
        const deadline = performance.now() + graceSeconds * 1000;
        while (started < total && addErrors === 0 && performance.now() < deadline) {
          await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), runner.stopped]);
        }
      } finally {
        clearInterval(ticker);
      }
      const cutoff = performance.now();
      if (addErrors > 0) {
        throw new Error(`${addErrors} addJob calls failed; the first: ${firstAddError?.message}`);
      }

      // A job that never started counts with the time it had waited at the cutoff: a lower
      // bound of its latency, so falling behind shows in the percentiles instead of hiding.
      const latencies = new Float64Array(total);
      const adds = [];
      // From `addJob` returning (the job committed) to its start: the queue's pick-up alone,
      // without the producer's wait for its insert. Slightly negative when the task started
      // before this process got round to the insert's reply.
      const pickups = [];
      let lastStart = 0;
      for (let i = 0; i < total; i++) {
        const start = Number.isNaN(startedAt[i]) ? cutoff : startedAt[i];
        latencies[i] = start - calledAt[i];
        lastStart = Math.max(lastStart, start);
        if (!Number.isNaN(returnedAt[i])) {
          adds.push(returnedAt[i] - calledAt[i]);
          pickups.push(start - returnedAt[i]);
        }
      }
      latencies.sort();
      const ascending = (a, b) => a - b;
      adds.sort(ascending);
      pickups.sort(ascending);
      const scheduledEnd = t0 + seconds * 1000;
      const keptUp = started === total && lastStart <= scheduledEnd + KEPT_UP_SLACK_MS;
      const offeredSecs = (calledAt[total - 1] - t0 + interval) / 1000;
      progress(
        `${started}/${total} started; p50 ${quantile(latencies, 0.5).toFixed(1)} ms, ` +
          `p99 ${quantile(latencies, 0.99).toFixed(1)} ms, kept up: ${keptUp}`,
      );

      return {
        benchmark: "graphile-worker-latency",
        version: GRAPHILE_WORKER_VERSION,
        mode: args.mode,
        concurrency,
        rate,
        seconds,
        offered: total,
        offered_per_sec: Math.round(total / offeredSecs),
        started,
        measured_from: "addJob called",
        p50_ms: round(quantile(latencies, 0.5)),
        p99_ms: round(quantile(latencies, 0.99)),
        max_ms: round(latencies[total - 1]),
        add_p50_ms: round(quantile(adds, 0.5)),
        add_p99_ms: round(quantile(adds, 0.99)),
        from_return_p50_ms: round(quantile(pickups, 0.5)),
        from_return_p99_ms: round(quantile(pickups, 0.99)),
        from_return_max_ms: round(pickups[pickups.length - 1] ?? null),
        producer_lag_max_ms: round(producerLagMax),
        kept_up: keptUp,
      };
    } finally {
      await runner.stop();
    }
  });
}

runMain(USAGE, {
  options: {
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
    "grace-seconds": { type: "string", default: "30" },
  },
  run: main,
});
