/**
 * `mbprobe-initiator locate` and `run --locate`: after a run, every test whose verdict says
 * interference (its first verdict is "none", inconclusive says nothing) runs again with copies of its
 * probe sent to every TTL (locate.ts), and its finding goes into the run's database (the test's
 * detail.location and its rows of hops) and onto the terminal. Registered by initiator/cli.ts, which
 * runs the tests and calls locateAfterRun with what the run set up.
 */
import { Command, Option } from 'commander';
import { parsePositiveInt, plural, UsageError, type CliIo } from '../../shared/cli.js';
import { openCapture } from '../../shared/net/capture.js';
import type { Store } from '../../shared/store.js';
import type { ControlClient } from '../control-client.js';
import { reserveFreshPorts } from '../local-ports.js';
import type { Prober, Timing } from '../probe.js';
import type { TestResult } from '../runner.js';
import type { TestCase } from '../test-case.js';
import { localisable, locateTargets, type LocateResult, type LocateTarget } from './locate.js';
import { IcmpListener } from './trace.js';
import { MAX_TAG_TTL } from './ttl-tags.js';
import { synBaseline } from '../catalogue/syn-baseline.js';

export const DEFAULT_MAX_HOPS = 30;
export const DEFAULT_RETRIES = 2;

/** What `run` needs to know to localise: its options as given. */
export interface LocateOptions {
  locate?: boolean;
  maxHops: string;
  retries: string;
  /** One TTL at a time (as traceroute), for comparison. */
  sequential?: boolean;
  /** `locate`: print the findings, not the verdict lines. */
  locateOnly?: boolean;
}

export function locateOptions(command: Command): Command {
  return command
    .option('--max-hops <n>', 'with --locate: send copies of each probe with TTL 1 to n', String(DEFAULT_MAX_HOPS))
    .option('--retries <n>', 'with --locate: send the copies whose hop did not answer again, at most this many times', String(DEFAULT_RETRIES))
    .addOption(new Option('--sequential', 'with --locate: one TTL at a time, as traceroute does (slower; for comparison)').hideHelp());
}

/**
 * `locate`: the options of `run` (it measures first) plus the locate ones; the action is `run` with
 * --locate, printing findings. `run` is initiator/cli.ts's action for `run`.
 */
export function registerLocateCommand(program: Command, run: (opts: Record<string, unknown>) => Promise<void>, runOptions: (command: Command) => Command): Command {
  const command = program.command('locate')
    .description('where on the path each interference happens: measures the tests, then sends copies of each interfered test\'s probe with TTL 1..N and reads what the routers quote in their ICMP errors');
  runOptions(command);
  locateOptions(command);
  return command.addHelpText('after', `
For each test whose verdict is not its first (no interference), the finding names the last hop that
still quotes the examined field as sent and the first that quotes it changed (their addresses), where
the copies stopped, the hop of a proxy that answers for the responder, or why the change cannot be
localised (no quotes, quotes too short, ICMP rate limiting, a NAT, the reverse path). Linux quotes a
packet before its own forwarding rules: a box's change shows first in the next hop's quote.
With --json: one JSON object per localised test. Everything is stored in --db (the test's
detail.location and the hops table).

Example:
  mbprobe-initiator locate --responder 198.19.0.2 --tests syn-mss,ip-ecn --json`)
    .action(async (opts: Record<string, unknown>) => run({ ...opts, locate: true, locateOnly: true }));
}

/** What a finished run hands to locate. */
export interface RunContext {
  runId: string;
  sessionId: string;
  store: Store;
  results: readonly TestResult[];
  tests: readonly TestCase[];
  local: string;
  iface: string;
  responder: string;
  responderName: string;
  payload?: 'auto' | 'raw';
  timing: Timing;
  concurrency: number;
  rttHintMs?: number;
  prober: Prober;
  client: ControlClient;
  send(bytes: Uint8Array): Promise<void>;
  /** Local ports not to use (recent runs' and this run's). */
  avoidPorts: ReadonlySet<number>;
  json: boolean;
  signal?: AbortSignal;
}

/** One JSON object per localised test (`locate --json`), and what the terminal shows. */
export interface LocatedLine {
  run: string;
  test: string;
  port: number;
  verdict: string;
  status: string;
  reason?: string;
  summary: string;
  location: LocateResult['location'] | { status: 'not-localisable'; reason: string; summary: string };
  /** The routers' addresses by hop (TTL), as they answered this test's copies. */
  routers: Array<{ ttl: number; address: string | null; kind: string }>;
}

/** Whether and how `locate` can localise a test, for `list`. */
export function locateAbility(test: TestCase): { localisable: boolean; examines?: readonly string[]; text: string } {
  const probe = test.probe;
  if (!probe) return { localisable: false, text: 'no (the test names no probe segment)' };
  if (probe.reversePath) return { localisable: false, text: 'no (its judge examines what the responder sends: the reverse path)' };
  if (probe.examines.length === 0) return { localisable: true, examines: [], text: 'yes (where the path ends at a box answering for the responder)' };
  return { localisable: true, examines: probe.examines, text: `yes (where ${probe.examines.join(', ')} changes)` };
}

/** Which tests of a run to localise: every verdict that says interference (not the first, not inconclusive). */
export function locateTargetsOf(results: readonly TestResult[], tests: readonly TestCase[]): Array<{ result: TestResult; test: TestCase }> {
  return results.flatMap((result) => {
    const test = tests.find((t) => t.name === result.name);
    return test && result.verdict !== test.verdicts[0] && result.verdict !== 'inconclusive' ? [{ result, test }] : [];
  });
}

/** Ports where the run's responder attributed flows only by address or as the only test waiting: locate runs one test at a time there. */
export function opaquePortsOf(results: readonly TestResult[]): Set<number> {
  const opaque = new Set<number>();
  for (const r of results) {
    const attribution = (r.detail.attribution as string[] | undefined) ?? [];
    if (attribution.some((a) => /by (address|only-test)$/.test(a))) opaque.add(r.port);
  }
  return opaque;
}

export async function locateAfterRun(ctx: RunContext, opts: LocateOptions, io: CliIo): Promise<LocatedLine[]> {
  const maxHops = parsePositiveInt(opts.maxHops, '--max-hops');
  if (maxHops > MAX_TAG_TTL) throw new UsageError('BAD_MAX_HOPS', `--max-hops ${maxHops}: at most ${MAX_TAG_TTL}`);
  const retries = Number(opts.retries);
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) throw new UsageError('BAD_RETRIES', `--retries ${opts.retries}: 0..10`);
  const chosen = locateTargetsOf(ctx.results, ctx.tests);
  const lines: LocatedLine[] = [];
  const notLocalisable = chosen.filter(({ test }) => !localisable(test));
  for (const { result } of notLocalisable) {
    const location = { status: 'not-localisable' as const, reason: 'no-probe-named', summary: 'the test names no probe segment (TestCase.probe), so it cannot be localised' };
    ctx.store.addLocation(result.testId, location, []);
    lines.push({ run: ctx.runId, test: result.name, port: result.port, verdict: result.verdict, status: location.status, reason: location.reason, summary: location.summary, location, routers: [] });
  }
  const targets = chosen.filter(({ test }) => localisable(test));
  if (targets.length === 0 || ctx.signal?.aborted) {
    report(lines, ctx, io);
    return lines;
  }
  if (!ctx.json) io.stderr(`mbprobe-initiator: locating ${plural(targets.length, 'test')} (copies of each probe with TTL 1..${maxHops})\n`);
  // A plain SYN per port as well: the hops it reaches name those after a box that drops a probe.
  const references = [...new Set(targets.map(({ result }) => result.port))]
    .filter((port) => !targets.some(({ test, result }) => test.name === synBaseline.name && result.port === port))
    .map((port): LocateTarget => ({ test: synBaseline, port, reference: true }));
  const ports = await reserveFreshPorts(targets.length + references.length, ctx.avoidPorts, ctx.local.includes(':') ? 6 : 4);
  const capture = openCapture({ iface: ctx.iface, filter: 'icmp or icmp6' });
  const listener = new IcmpListener(capture);
  const started = performance.now();
  let results: LocateResult[];
  try {
    results = await locateTargets({
      sessionId: ctx.sessionId, local: ctx.local, responder: ctx.responder, responderName: ctx.responderName, payload: ctx.payload, timing: ctx.timing,
      maxHops, retries, mode: opts.sequential ? 'sequential' : 'parallel', concurrency: ctx.concurrency, localPorts: ports.ports,
      opaquePorts: opaquePortsOf(ctx.results), ...(ctx.rttHintMs !== undefined ? { rttMs: ctx.rttHintMs } : {}), settleMs: 30,
    }, [...targets.map(({ test, result }): LocateTarget => ({ test, port: result.port })), ...references], { prober: ctx.prober, client: ctx.client, listener, send: ctx.send });
  } finally {
    capture.close();
    ports.release();
  }
  const elapsedMs = Math.round(performance.now() - started);
  ctx.store.mergeHostInfo(ctx.runId, { locate: { maxHops, retries, mode: opts.sequential ? 'sequential' : 'parallel', elapsedMs, localPorts: ports.ports } });
  for (const [i, r] of results.slice(0, targets.length).entries()) {
    const { result } = targets[i];
    const location = { ...r.location, rounds: r.rounds, tracingMs: r.tracingMs };
    ctx.store.addLocation(result.testId, location, r.hops);
    lines.push({
      run: ctx.runId, test: result.name, port: result.port, verdict: result.verdict, status: r.location.status, ...(r.location.reason ? { reason: r.location.reason } : {}),
      summary: r.location.summary, location, routers: r.hops.map((h) => ({ ttl: h.ttl, address: h.router, kind: h.kind })),
    });
  }
  report(lines, ctx, io);
  if (!ctx.json) io.stderr(`mbprobe-initiator: located in ${(elapsedMs / 1000).toFixed(1)} s; stored with run ${ctx.runId} in ${ctx.store.path} (mbprobe-results diffs --run ${ctx.runId} --test NAME shows the hops)\n`);
  return lines;
}

function report(lines: readonly LocatedLine[], ctx: RunContext, io: CliIo): void {
  const ordered = [...lines].sort((a, b) => a.port - b.port || a.test.localeCompare(b.test));
  if (ctx.json) {
    for (const line of ordered) io.stdout(`${JSON.stringify(line)}\n`);
    return;
  }
  if (ordered.length === 0) {
    io.stdout('\nno test showed interference: nothing to locate\n');
    return;
  }
  io.stdout(`\nwhere on the path:\n${ordered.map((l) => `  ${`${l.test}:${l.port}`.padEnd(30)} ${l.verdict.padEnd(18)} ${l.summary}`).join('\n')}\n`);
}
