// Shared by drain.mjs and latency.mjs: command-line options, graphile-worker's configuration
// per mode, a schema of the benchmark's own that is always dropped, and small figure helpers.
//
// stdout carries exactly one JSON object (the figures) so a caller can parse it; everything
// else, graphile-worker's own log lines included, goes to stderr.

import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";

import { Logger, makeWorkerUtils, run } from "graphile-worker";

const require = createRequire(import.meta.url);
/** The installed graphile-worker version, reported with the figures. */
export const GRAPHILE_WORKER_VERSION = require("graphile-worker/package.json").version;

export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";

/** The task every job runs: it does nothing, so the figures are the queue's own cost. */
export const TASK = "gantry_bench_noop";

/**
 * graphile-worker's options for each mode.
 *
 * - `default`: the library's defaults (concurrentJobs 1, a pool of 10 connections, no local
 *   queue, every completion its own statement).
 * - `local-queue`: the configuration graphile-worker's performance page uses for its quick
 *   stats: concurrentJobs 24, a pool of 25, a local queue of 500 jobs fetched (and locked) per
 *   query, and job completions/failures batched (delay 0: whatever piled up during one tick).
 *
 * `--concurrency` overrides concurrentJobs; the pool then follows the docs' advice of at least
 * `concurrency + 1` connections (and at least graphile-worker's default of 10) so a large
 * concurrency is not starved of connections.
 */
export function workerOptions(mode, concurrency) {
  switch (mode) {
    case "default": {
      const options = {};
      if (concurrency !== undefined) {
        options.concurrentJobs = concurrency;
        options.maxPoolSize = Math.max(10, concurrency + 1);
      }
      return { options, concurrency: concurrency ?? 1 };
    }
    case "local-queue": {
      const jobs = concurrency ?? 24;
      return {
        options: {
          concurrentJobs: jobs,
          maxPoolSize: Math.max(10, jobs + 1),
          localQueue: { size: 500 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
        concurrency: jobs,
      };
    }
    default:
      throw new Error(`--mode must be \`default\` or \`local-queue\`, not \`${mode}\``);
  }
}

/** Parses the command line; `extra` declares the script's own options (as `parseArgs` wants). */
export function parseOptions(extra) {
  const { values } = parseArgs({
    options: {
      "database-url": { type: "string", default: DEFAULT_DATABASE_URL },
      mode: { type: "string", default: "default" },
      concurrency: { type: "string" },
      help: { type: "boolean", default: false },
      ...extra,
    },
    strict: true,
    allowPositionals: false,
  });
  return values;
}

/** A positive integer option, or a clear error naming it. */
export function positiveInt(name, text) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${name} must be a positive integer, not \`${text}\``);
  }
  return value;
}

/** Writes a progress line to stderr. */
export function progress(text) {
  process.stderr.write(`graphile-worker: ${text}\n`);
}

/**
 * graphile-worker's log lines go to stderr, and only warnings and errors: its info lines (one
 * per worker start and stop) would drown the progress lines and say nothing about figures.
 */
export const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    process.stderr.write(`graphile-worker [${level}]: ${message}\n`);
  }
});

/**
 * Runs `body(context)` against a schema made for this run (`gantry_bench_graphile_<pid>_<hex>`,
 * so concurrent runs never share one), and drops that schema afterwards whether `body`
 * succeeded, threw, or the process was interrupted (SIGINT/SIGTERM).
 *
 * The context holds the connection string, the schema, and `utils`: a WorkerUtils (its own
 * pool) that has already installed graphile-worker's tables in the schema.
 */
export async function withSchema(databaseUrl, body) {
  const schema = `gantry_bench_graphile_${process.pid}_${randomBytes(4).toString("hex")}`;
  const utils = await makeWorkerUtils({ connectionString: databaseUrl, schema, logger });
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    // The name is made above from the pid and hex digits only, so quoting it is enough.
    await utils.withPgClient((client) => client.query(`drop schema if exists "${schema}" cascade`));
  };
  // An interrupted benchmark must not leave a schema of 200,000 rows behind.
  const onSignal = (signal) => {
    interrupted = true;
    progress(`${signal}: stopping and dropping schema ${schema}`);
    // The runner goes first: its pending completions would fail loudly on a dropped schema.
    Promise.resolve(activeRunner?.stop())
      .catch(() => {})
      .then(drop)
      .catch((error) => progress(`cannot drop schema ${schema}: ${error.message}`))
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await warnOfOtherRuns(utils, schema);
    await utils.migrate();
    return await body({ databaseUrl, schema, utils });
  } finally {
    try {
      await drop();
    } finally {
      await utils.release();
    }
  }
}

/**
 * Starts a graphile-worker runner with the mode's options on the benchmark's schema; the
 * returned `stopped` promise rejects if the runner stops before `stop()` is called (it shuts
 * itself down, for instance, when any graphile-worker on the database migrates a schema).
 */
export async function startRunner({ databaseUrl, schema }, taskList, options, events) {
  const runner = await run({
    noHandleSignals: true,
    taskList,
    preset: { worker: { connectionString: databaseUrl, schema, logger, ...(events ? { events } : {}), ...options } },
  });
  let stopping = false;
  const handle = {};
  activeRunner = handle;
  const stopped = runner.promise.then(() => {
    if (!stopping) throw new Error("the graphile-worker runner stopped on its own (see its log above)");
  });
  // Without a handler a rejection nobody awaited would end the process before the cleanup.
  stopped.catch(() => {});
  let stopDone;
  return Object.assign(handle, {
    stopped,
    /** Stops the runner once; stopping a runner that already stopped is not an error here. */
    stop() {
      stopping = true;
      stopDone ??= runner.stop().catch((error) => {
        if (!/already stopped/.test(error?.message ?? "")) throw error;
      });
      return stopDone;
    },
  });
}

/** The runner of this process, stopped before the schema is dropped on an interruption. */
let activeRunner;
/**
 * Set on SIGINT/SIGTERM: the signal handler then owns the exit (130), and whatever the
 * interrupted benchmark does next (it fails on the dropped schema) is not reported.
 */
let interrupted = false;

/**
 * graphile-worker's NOTIFY channels (`jobs:insert`, `worker:migrate`) are shared by every
 * schema of a database: a run migrating its fresh schema makes the runners of every other run
 * shut down, and inserts nudge their workers. Runs must therefore not overlap; say so when
 * another run's schema is present (it may also be one a killed run left behind).
 */
async function warnOfOtherRuns(utils, schema) {
  const { rows } = await utils.withPgClient((client) =>
    client.query(
      "select nspname from pg_namespace where nspname like 'gantry\\_bench\\_graphile\\_%' and nspname <> $1",
      [schema],
    ),
  );
  if (rows.length > 0) {
    const names = rows.map((row) => row.nspname).join(", ");
    progress(
      `warning: other benchmark schemas exist (${names}); a concurrent run on this database ` +
        "disturbs this one (graphile-worker's notifications are database-wide), and one left " +
        "by a killed run can be dropped by hand",
    );
  }
}

/** The value at quantile `q` (0..1) of ascending `sorted`, by nearest rank. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Rounds to `digits` decimals so the JSON stays readable. */
export function round(value, digits = 3) {
  if (value === null || value === undefined) return value;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * Runs a script's `main`, prints its figures as one JSON line on stdout, and exits: 0 on
 * success, 1 with the error on stderr otherwise. Exiting explicitly means a connection left
 * open by a failure cannot keep the process alive.
 */
export function runMain(usage, main) {
  let options;
  try {
    options = parseOptions(main.options);
  } catch (error) {
    process.stderr.write(`error: ${error.message}\n${usage}`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  main
    .run(options)
    .then((figures) => {
      if (interrupted) return;
      process.stdout.write(`${JSON.stringify(figures)}\n`, () => process.exit(0));
    })
    .catch((error) => {
      if (interrupted) return;
      // The message says what failed; the stack is for debugging graphile-worker itself.
      process.stderr.write(`error: ${error?.message ?? error}\n`);
      if (process.env.GANTRY_BENCH_DEBUG) process.stderr.write(`${error?.stack}\n`);
      process.exit(1);
    });
}
