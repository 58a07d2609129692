// Queue drain: N no-op jobs are added in bulk (`addJobs`, which calls graphile-worker's
// `add_jobs` SQL function), then one graphile-worker runner is started and timed until every
// job has run and its row is gone. Adding is timed separately and not part of the drain.
//
// Prints one JSON object on stdout; progress on stderr. See README.md for the options.

import { performance } from "node:perf_hooks";

import {
  GRAPHILE_WORKER_VERSION,
  TASK,
  positiveInt,
  progress,
  round,
  runMain,
  startRunner,
  withSchema,
  workerOptions,
} from "./lib.mjs";

const USAGE = `usage: node drain.mjs [--database-url URL] [--jobs N] [--mode default|local-queue]
                      [--concurrency C] [--timeout-seconds S]
`;

/**
 * Jobs per `addJobs` call: each call is one statement with the specs as a JSON parameter, so a
 * bounded batch keeps that parameter (and the statement's memory) small while still being
 * thousands of rows per round trip.
 */
const ADD_BATCH = 10_000;

async function main(args) {
  const jobs = positiveInt("jobs", args.jobs);
  const timeoutSeconds = positiveInt("timeout-seconds", args["timeout-seconds"]);
  const concurrencyArg =
    args.concurrency === undefined ? undefined : positiveInt("concurrency", args.concurrency);
  const { options, concurrency } = workerOptions(args.mode, concurrencyArg);

  return withSchema(args["database-url"], async ({ databaseUrl, schema, utils }) => {
    progress(`schema ${schema}: adding ${jobs} jobs in batches of ${ADD_BATCH}`);
    const addStart = performance.now();
    for (let added = 0; added < jobs; ) {
      const count = Math.min(ADD_BATCH, jobs - added);
      const specs = new Array(count);
      for (let i = 0; i < count; i++) specs[i] = { identifier: TASK, payload: {} };
      await utils.addJobs(specs);
      added += count;
    }
    const addSecs = (performance.now() - addStart) / 1000;
    progress(`added ${jobs} jobs in ${addSecs.toFixed(2)} s; draining (${args.mode}, concurrency ${concurrency})`);

    let done = 0;
    let allDone;
    const finished = new Promise((resolve) => (allDone = resolve));
    const taskList = {
      [TASK]: async () => {
        done += 1;
        if (done === jobs) allDone();
      },
    };

    // The clock starts before the runner so its start-up (connecting, LISTEN, first fetch) is
    // part of the drain, as it would be for any queue started on a backlog.
    const drainStart = performance.now();
    const runner = await startRunner({ databaseUrl, schema }, taskList, options);
    const ticker = setInterval(() => {
      const secs = (performance.now() - drainStart) / 1000;
      progress(`${done}/${jobs} done, ${Math.round(done / secs)} jobs/s`);
    }, 1000);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`only ${done} of ${jobs} jobs ran within ${timeoutSeconds} s`)),
        timeoutSeconds * 1000,
      );
    });
    try {
      await Promise.race([finished, timeout, runner.stopped]);
      // Stopping flushes batched completions (local-queue mode), so after it every job's row
      // is deleted: the drain is complete only then.
      await runner.stop();
    } finally {
      await runner.stop();
      clearInterval(ticker);
      clearTimeout(timer);
    }
    const drainSecs = (performance.now() - drainStart) / 1000;

    // A queue that "ran" every task but left rows behind has not drained; check the table.
    const {
      rows: [{ count }],
    } = await utils.withPgClient((client) =>
      client.query(`select count(*)::int as count from "${schema}"._private_jobs`),
    );
    if (done !== jobs || count !== 0) {
      throw new Error(`drain incomplete: ${done} of ${jobs} tasks ran, ${count} job rows remain`);
    }
    progress(`drained ${jobs} jobs in ${drainSecs.toFixed(2)} s`);

    return {
      benchmark: "graphile-worker-drain",
      version: GRAPHILE_WORKER_VERSION,
      mode: args.mode,
      concurrency,
      jobs,
      add_secs: round(addSecs),
      add_jobs_per_sec: Math.round(jobs / addSecs),
      drain_secs: round(drainSecs),
      jobs_per_sec: Math.round(jobs / drainSecs),
    };
  });
}

runMain(USAGE, {
  options: {
    jobs: { type: "string", default: "200000" },
    "timeout-seconds": { type: "string", default: "3600" },
  },
  run: main,
});
