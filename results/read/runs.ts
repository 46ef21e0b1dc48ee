/** Finding the run and tests a command names: `--run` (an id or a unique prefix), `--test`, `--port`. */
import { UsageError } from '../../shared/cli.js';
import type { RunRow, Store, TestRow } from '../../shared/store.js';

/** The run whose id is `idOrPrefix`, or the one run whose id starts with it; UsageError listing the runs otherwise. */
export function resolveRun(store: Store, idOrPrefix: string | undefined): RunRow {
  const prefix = idOrPrefix ?? '';
  const exact = idOrPrefix === undefined ? undefined : store.run(idOrPrefix);
  if (exact) return exact;
  const runs = store.runs();
  if (runs.length === 0) throw new UsageError('NO_RUNS', `${store.path} holds no runs yet: run mbprobe-initiator first, or give another database`);
  const candidates = runs.filter((r) => r.id.startsWith(prefix));
  if (candidates.length === 1) return candidates[0];
  if (idOrPrefix === undefined) {
    throw new UsageError('RUN_REQUIRED', `${store.path} holds ${runs.length} runs; choose one with --run ID (a unique prefix is enough):\n${listRuns(runs)}`);
  }
  if (candidates.length === 0) {
    throw new UsageError('RUN_NOT_FOUND', `no run ${JSON.stringify(idOrPrefix)} in ${store.path}; the runs are:\n${listRuns(runs)}`);
  }
  throw new UsageError('RUN_AMBIGUOUS', `--run ${idOrPrefix} matches ${candidates.length} runs in ${store.path}; give more of the id:\n${listRuns(candidates)}`);
}

function listRuns(runs: readonly RunRow[]): string {
  return runs.map((r) => `  ${r.id}  ${r.startedAt}${r.label ? `  ${r.label}` : ''}`).join('\n');
}

/**
 * The tests of a run named `name` (every port, or only `port`), in the order they ran; without a name,
 * every test of the run (on `port` if given). UsageError listing what exists when nothing matches.
 */
export function testsOfRun(store: Store, run: RunRow, name?: string, port?: number): TestRow[] {
  const all = store.tests(run.id);
  const named = name === undefined ? all : all.filter((t) => t.name === name);
  const selected = port === undefined ? named : named.filter((t) => t.port === port);
  if (selected.length > 0 || (name === undefined && port === undefined)) return selected;
  if (all.length === 0) throw new UsageError('TEST_NOT_FOUND', `run ${run.id} holds no tests`);
  if (named.length === 0) {
    throw new UsageError('TEST_NOT_FOUND', `run ${run.id} has no test ${JSON.stringify(name)}; its tests are:\n${listTests(all)}`);
  }
  const what = name === undefined ? 'no test' : `no test ${name}`;
  throw new UsageError('TEST_NOT_FOUND', `run ${run.id} has ${what} on port ${port}; ${name === undefined ? 'its tests are' : `${name} ran on`}:\n${listTests(named)}`);
}

function listTests(tests: readonly TestRow[]): string {
  const ports = new Map<string, number[]>();
  for (const t of tests) ports.set(t.name, [...(ports.get(t.name) ?? []), t.port]);
  return [...ports].map(([name, list]) => `  ${name} (${new Set(list).size > 1 ? "ports" : "port"} ${[...new Set(list)].join(", ")})`).join('\n');
}
