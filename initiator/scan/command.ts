/**
 * `mbprobe-initiator scan`: the server tests of initiator/catalogue/server/ against a list of ordinary
 * servers, stored as a run of kind 'server-scan'. Registered on the initiator's program by
 * initiator/cli.ts; everything the command does lives here and in the modules beside it.
 */
import { Command, Option } from 'commander';
import { lookup } from 'node:dns/promises';
import { readFileSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname, platform, release } from 'node:os';
import { isIP } from 'node:net';
import PQueue from 'p-queue';
import { parsePortList, parsePositiveInt, plural, requireNetworkPrivileges, stopOnInterrupt, TOOL_VERSION, UsageError, type CliIo } from '../../shared/cli.js';
import { openCapture, type LiveCapture } from '../../shared/net/capture.js';
import { holdNftTable } from '../../shared/net/firewall.js';
import { openRawSender, type PacketSink } from '../../shared/net/raw-send.js';
import { DEFAULT_DB_PATH, Store } from '../../shared/store.js';
import { MbprobeError } from '../../shared/wire/errors.js';
import { sourceRouteTo as routeTo } from '../../shared/net/route.js';
import { recentlyUsedPorts, reserveFreshPorts } from '../local-ports.js';
import { SERVER_CATALOGUE, allServerVerdicts, type ServerTest } from '../catalogue/server/index.js';
import { scanRules } from './firewall.js';
import { SynRate, realClock } from './pace.js';
import { formatDuration, formatProgress, RateMeter } from './progress.js';
import { ScanProber } from './prober.js';
import { scanTargets, type ServerResult } from './scanner.js';
import {
  collectTargets, emptyExclusions, isExcluded, parseExclusions, reservedRange, resolveTarget, type Exclusions, type Lookup, type RejectedSpec, type TargetSpec,
} from './targets.js';

/** Ports scanned when a target names none: the web's. */
export const DEFAULT_SCAN_PORTS = [443, 80] as const;
/** Targets at once. */
export const DEFAULT_SCAN_CONCURRENCY = 100;
/** SYNs per second over the whole scan (every connection's first SYN and every retransmission). */
export const DEFAULT_SYN_RATE = 200;
/** Per server: from the end of one connection to the next one's SYN. */
export const DEFAULT_GAP_MS = 200;

interface ScanOptions {
  targets?: string[];
  ports: string;
  tests: string;
  family?: '4' | '6';
  concurrency: string;
  rate: string;
  gap: string;
  timeout: string;
  attempts: string;
  limit?: string;
  exclude?: string[];
  allowPrivate?: boolean;
  contact?: string;
  dryRun?: boolean;
  db: string;
  label?: string;
  tag?: string[];
  json?: boolean;
  listTests?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerScanCommand(program: Command, io: CliIo, parseTags: (specs: readonly string[]) => Record<string, string>): Command {
  return program.command('scan')
    .description('probe ordinary servers (no responder): what they and the paths to them support (TFO, MPTCP, ECN, AccECN, options, data in SYN)')
    .argument('[targets...]', 'the same as --targets')
    .option('--targets <target...>', 'HOST, HOST:PORT, [IPv6]:PORT, or a FILE of them (one per line, # comments, or a CSV top list with a rank column); - reads standard input', collect)
    .option('--ports <list>', 'ports of targets given without one', DEFAULT_SCAN_PORTS.join(','))
    .option('--tests <list>', `server tests to run: all, or names from --list-tests (${SERVER_CATALOGUE.map((t) => t.name).join(', ')})`, 'all')
    .addOption(new Option('--family <n>', 'only this address family of names that resolve to both (default: every address)').choices(['4', '6']))
    .option('--concurrency <n>', 'targets probed at once (each one connection at a time)', String(DEFAULT_SCAN_CONCURRENCY))
    .option('--rate <syn-per-second>', 'at most this many SYNs per second over the whole scan (first SYNs and retransmissions)', String(DEFAULT_SYN_RATE))
    .option('--gap <ms>', 'per server: at least this long from the end of one connection to the next one\'s SYN', String(DEFAULT_GAP_MS))
    .option('--timeout <ms>', 'wait this long for an answer to a SYN before sending it again (until the server\'s round trip is measured)', '1000')
    .option('--attempts <n>', 'send a SYN this many times before concluding no answer comes', '3')
    .option('--limit <n>', 'only the first N targets of the list (e.g. the top N of a top list)')
    .option('--exclude <file>', 'never probe the addresses, prefixes (CIDR), names and *.domains in this file (an opt-out list; give it several times)', collect)
    .option('--allow-private', 'also probe private, loopback, link-local, documentation, benchmarking and other reserved addresses (a lab)')
    .option('--contact <text>', 'put this (an e-mail address or URL) in the User-Agent of the HTTP requests, so server operators can reach you')
    .option('--dry-run', 'list the targets and what would be sent to each; resolve names but send nothing')
    .option('--db <path>', 'SQLite database to add the scan to', DEFAULT_DB_PATH)
    .option('--label <text>', 'a name for this scan (its vantage point), used by mbprobe-results to group runs')
    .option('--tag <key=value...>', 'attributes of this scan for grouping results, e.g. --tag country=de')
    .option('--json', 'print one JSON line per finished test instead of the progress display')
    .option('--list-tests', 'list the server tests (what each sends, its verdicts) and exit')
    .addHelpText('after', `
What a scan sends, and to whom: README, "Scanning servers". Each server sees SYNs from one
connection at a time; a connection ends with a RST right after the SYN-ACK, or with a FIN after the
answer when a test sent a request (an HTTP HEAD request naming mbprobe in its User-Agent, or a TLS
ClientHello on 443). Private and reserved addresses are refused unless --allow-private.

Needs root (or CAP_NET_RAW + CAP_NET_ADMIN), like run. Every finished test is committed to --db at
once; Ctrl-C stops after the tests under way and keeps what finished.

Examples:
  mbprobe-initiator scan --targets example.org --dry-run
  mbprobe-initiator scan --targets top-1m.csv --limit 1000 --exclude optout.txt --contact me@example.org --label campus`)
    .action(async (positional: string[], opts: ScanOptions) => scan({ ...opts, targets: [...positional, ...(opts.targets ?? [])] }, io, parseTags));
}

function selectServerTests(spec: string): ServerTest[] {
  if (spec === 'all') return [...SERVER_CATALOGUE];
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !SERVER_CATALOGUE.some((t) => t.name === n));
  if (unknown.length) throw new UsageError('UNKNOWN_TEST', `unknown server test ${unknown.map((n) => `"${n}"`).join(', ')}; see mbprobe-initiator scan --list-tests`);
  return SERVER_CATALOGUE.filter((t) => names.includes(t.name));
}

const describeRejected = (rejected: readonly RejectedSpec[]): string =>
  rejected.slice(0, 5).map((r) => `${r.from}: "${r.text.trim()}": ${r.reason}`).join('\n  ') + (rejected.length > 5 ? `\n  ... and ${rejected.length - 5} more` : '');

/** The number of SYNs a test sends a server that answers every one of them (no retransmission, no confirming run). */
const synsPerTest = (test: ServerTest): number => test.connections.filter((c) => !c.startsWith('only if')).length;

async function scan(opts: ScanOptions, io: CliIo, parseTags: (specs: readonly string[]) => Record<string, string>): Promise<void> {
  if (opts.listTests) {
    for (const t of SERVER_CATALOGUE) {
      io.stdout(`${t.name}\n  sends:       ${t.sends}\n  connections: ${t.connections.join('\n               ')}\n  verdicts:    ${allServerVerdicts(t).join(', ')}\n`);
    }
    return;
  }
  const tests = selectServerTests(opts.tests);
  const ports = parsePortList(opts.ports);
  const concurrency = parsePositiveInt(opts.concurrency, '--concurrency');
  const rate = parsePositiveInt(opts.rate, '--rate');
  const gapMs = parsePositiveInt(opts.gap, '--gap', 0);
  const timing = { timeoutMs: parsePositiveInt(opts.timeout, '--timeout'), attempts: parsePositiveInt(opts.attempts, '--attempts') };
  const family = opts.family === undefined ? undefined : (Number(opts.family) as 4 | 6);
  const tags = parseTags(opts.tag ?? []);
  if (opts.contact !== undefined && !/^[\x20-\x7e]{1,120}$/.test(opts.contact)) throw new UsageError('BAD_CONTACT', '--contact: printable ASCII, at most 120 characters (an e-mail address or a URL)');
  if (!opts.targets?.length) throw new UsageError('NO_TARGETS', 'give the servers to scan: --targets HOST[:PORT] ... or --targets FILE');

  const fileIo = {
    isFile: (path: string): boolean => {
      try {
        return statSync(path).isFile();
      } catch {
        return false;
      }
    },
    read: (path: string): string => {
      try {
        return readFileSync(path === '-' ? 0 : path, 'utf8');
      } catch (error) {
        throw new UsageError('BAD_TARGETS', `--targets ${path}: ${(error as Error).message}`);
      }
    },
  };
  const collected = collectTargets(opts.targets, fileIo);
  const fromArguments = collected.rejected.filter((r) => r.from === 'argument');
  if (fromArguments.length) throw new UsageError('BAD_TARGET', `--targets: ${describeRejected(fromArguments)}`);
  if (collected.rejected.length) io.stderr(`mbprobe-initiator: skipping ${plural(collected.rejected.length, 'line')} of the target list that name no target:\n  ${describeRejected(collected.rejected)}\n`);
  const limit = opts.limit === undefined ? undefined : parsePositiveInt(opts.limit, '--limit');
  const entries = limit === undefined ? collected.targets : collected.targets.slice(0, limit);
  if (entries.length === 0) throw new UsageError('NO_TARGETS', 'the target list names no target');

  const exclusions = emptyExclusions();
  for (const file of opts.exclude ?? []) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError('BAD_EXCLUDE', `--exclude ${file}: ${(error as Error).message}`);
    }
    const bad = parseExclusions(text, file, exclusions);
    if (bad.length) throw new UsageError('BAD_EXCLUDE', `--exclude: ${describeRejected(bad)}`);
  }
  // An address given outright in a reserved range is a mistake to point out, not a line to skip.
  const reservedLiterals = entries.filter((e) => isIP(e.host) && reservedRange(e.host) !== undefined && !isExcluded(exclusions, { address: e.host }));
  if (reservedLiterals.length && !opts.allowPrivate) {
    throw new UsageError('PRIVATE_TARGET', `refusing to scan ${reservedLiterals.slice(0, 5).map((e) => `${e.host} (${reservedRange(e.host)}, ${e.from})`).join(', ')}` +
      `${reservedLiterals.length > 5 ? ` and ${reservedLiterals.length - 5} more` : ''}: private and reserved addresses are not ordinary servers; --allow-private scans them (a lab)`);
  }
  const resolver: Lookup = (name) => lookup(name, { all: true, verbatim: true });

  if (opts.dryRun) return dryRun(entries, { tests, ports, family, exclusions, allowPrivate: opts.allowPrivate ?? false, rate, lookup: resolver, json: opts.json ?? false }, io);

  requireNetworkPrivileges('mbprobe-initiator');
  const serverPorts = [...new Set([...ports, ...entries.flatMap((e) => (e.port === undefined ? [] : [e.port]))])];
  const store = Store.open(opts.db, { createdBy: `mbprobe-initiator ${TOOL_VERSION}` });
  const runId = randomUUID();
  const stop = stopOnInterrupt('mbprobe-initiator', io);
  const cleanups: Array<() => unknown> = [stop.release];
  try {
    // Enough that no server sees a local port twice (tests x connections x confirming runs x ports), and the kernel leaves them alone.
    // Not the ports of this database's scans of the last 2 MSL: a server may still hold those 4-tuples (TIME_WAIT).
    const reserved = await reserveFreshPorts(Math.min(8192, Math.max(256, 64 * serverPorts.length)), recentlyUsedPorts(store, null));
    cleanups.push(() => reserved.release());
    const firewall = await holdNftTable(`mbprobe_scan_${process.pid}`, scanRules(reserved.ports, serverPorts));
    cleanups.push(() => firewall.close());
    const sinks: { 4?: PacketSink; 6?: PacketSink } = {};
    for (const f of [4, 6] as const) {
      try {
        sinks[f] = openRawSender({ family: f });
      } catch (error) {
        // A host without IPv6 still scans IPv4 (its IPv6 targets count as without route).
        if (f === 4 || (error instanceof MbprobeError && error.code === 'NOT_PRIVILEGED')) throw error;
      }
    }
    cleanups.push(() => Object.values(sinks).forEach((s) => s.close()));
    const prober = new ScanProber(sinks);
    cleanups.push(() => prober.close());
    const captures = new Map<string, LiveCapture>();
    const routes = new Map<4 | 6, Promise<{ iface: string; source: string } | undefined>>();
    const sources: { 4?: string; 6?: string } = {};
    const filter = `tcp and (${serverPorts.length > 64 ? 'tcp' : serverPorts.map((p) => `src port ${p}`).join(' or ')})`;
    const route = (address: string): Promise<string | undefined> => {
      const f = isIP(address) === 6 ? 6 : 4;
      if (!sinks[f]) return Promise.resolve(undefined);
      if (!routes.has(f)) {
        routes.set(f, (async () => {
          let found: { iface: string; source: string };
          try {
            found = routeTo(address);
          } catch {
            return undefined;
          }
          if (!captures.has(found.iface)) {
            // A ring that holds a few seconds of answers at a high --rate, should the event loop fall behind.
            const capture = openCapture({ iface: found.iface, filter, queue: 65_536, bufferBytes: 32 << 20 });
            captures.set(found.iface, capture);
            prober.attach(capture);
          }
          // Recorded at once: a submission truncates these addresses (initiator/anonymize.ts) wherever they appear.
          sources[f] = found.source;
          store.mergeHostInfo(runId, { source: sources[4] ?? sources[6], sources: { ...sources }, ifaces: [...captures.keys()] });
          return found;
        })());
      }
      return routes.get(f)!.then((r) => r?.source);
    };
    const synRate = new SynRate(rate, realClock);
    store.insertRun({
      id: runId, startedAt: new Date().toISOString(), label: opts.label ?? null, responder: null, toolVersion: TOOL_VERSION, tags, kind: 'server-scan',
      hostInfo: {
        hostname: hostname(), platform: platform(), kernel: release(), ports: serverPorts, tests: tests.map((t) => t.name), concurrency, rate, gapMs,
        timeoutMs: timing.timeoutMs, attempts: timing.attempts, family: family ?? null, targets: entries.length, targetFiles: collected.files,
        excludeEntries: exclusions.entries, allowPrivate: opts.allowPrivate ?? false, localPorts: reserved.ports,
      },
    });
    const started = performance.now();
    const meter = new RateMeter();
    const progress = !opts.json && process.stderr.isTTY;
    let entriesDone = 0;
    let testsDone = 0;
    const show = (): void => {
      const now = performance.now();
      io.stderr(`\r\x1b[K${formatProgress({ done: entriesDone, total: entries.length, tests: testsDone, synPerSecond: meter.add(now, synRate.sent), elapsedMs: now - started })}`);
    };
    const ticker = progress ? setInterval(show, 250) : undefined;
    cleanups.push(() => ticker && clearInterval(ticker));
    const verdictCounts = new Map<string, Map<string, number>>();
    const summary = await scanTargets(entries, {
      runId, tests, ports, family, concurrency, synRate, gapMs, timing, localPorts: reserved.ports, exclusions, allowPrivate: opts.allowPrivate ?? false,
      lookup: resolver, route, contact: opts.contact, signal: stop.signal,
      onResult: (r: ServerResult) => {
        testsDone++;
        const counts = verdictCounts.get(r.name) ?? new Map<string, number>();
        counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
        verdictCounts.set(r.name, counts);
        if (opts.json) io.stdout(`${JSON.stringify({ run: r.runId, target: r.target.address, targetName: r.target.name ?? null, port: r.target.port, test: r.name, verdict: r.verdict, detail: r.detail, runs: r.runs })}\n`);
      },
      onEntry: (entry, outcome) => {
        entriesDone++;
        if (outcome.unresolved && !opts.json) io.stderr(`${progress ? '\r\x1b[K' : ''}mbprobe-initiator: ${entry.host} (${entry.from}): not scanned: ${outcome.unresolved}\n`);
      },
    }, prober, store);
    if (progress) io.stderr('\r\x1b[K');
    const elapsedMs = performance.now() - started;
    const left = { excluded: summary.excluded, reserved: summary.reserved, duplicate: summary.duplicate, noRoute: summary.noRoute, unresolved: summary.unresolved };
    // Answers the capture lost look like servers that did not answer: said, and kept with the run.
    const lost = [...captures.values()].map((c) => c.statistics()).reduce((n, st) => n + st.queueDropped + (st.kernel?.drops ?? 0), 0);
    store.mergeHostInfo(runId, { leftOut: left, synsSent: synRate.sent, elapsedMs: Math.round(elapsedMs), interrupted: summary.interrupted, capturedPacketsLost: lost });
    if (lost > 0) io.stderr(`mbprobe-initiator: warning: the capture lost ${plural(lost, 'packet')} (this host could not keep up): some servers may seem not to answer; scan again with a lower --rate\n`);
    store.finishRun(runId, new Date().toISOString());
    if (!opts.json) io.stdout(formatScanSummary(tests, verdictCounts));
    const leftOut = Object.entries(left).filter(([, n]) => n > 0).map(([why, n]) => `${n} ${why === 'noRoute' ? 'without a route' : why}`);
    io.stderr(`scan ${runId}: ${plural(summary.tests, 'test')} of ${plural(summary.scannedTargets, 'server port')} stored in ${opts.db}; ` +
      `${synRate.sent} SYNs in ${formatDuration(elapsedMs)}${leftOut.length ? `; left out: ${leftOut.join(', ')}` : ''}\n`);
    if (summary.interrupted) throw new MbprobeError('INTERRUPTED', `interrupted: ${summary.tests} tests finished and are stored in ${opts.db} (run ${runId})`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    store.close();
  }
}

/** Per test, how many servers gave each verdict, in the test's verdict order. */
export function formatScanSummary(tests: readonly ServerTest[], counts: ReadonlyMap<string, ReadonlyMap<string, number>>): string {
  const width = Math.max(...tests.map((t) => t.name.length));
  return tests.map((t) => {
    const byVerdict = counts.get(t.name);
    const cells = allServerVerdicts(t).filter((v) => byVerdict?.get(v)).map((v) => `${v} ${byVerdict!.get(v)}`);
    return `${t.name.padEnd(width)}  ${cells.join(', ') || '-'}`;
  }).join('\n') + '\n';
}

interface DryRunOptions {
  tests: readonly ServerTest[];
  ports: readonly number[];
  family?: 4 | 6;
  exclusions: Exclusions;
  allowPrivate: boolean;
  rate: number;
  lookup: Lookup;
  json: boolean;
}

/** What a scan would do: each target with its addresses (or why it is left out), what each test sends, how many SYNs at least. Sends nothing. */
async function dryRun(entries: readonly TargetSpec[], o: DryRunOptions, io: CliIo): Promise<void> {
  const lookups = new PQueue({ concurrency: 16 });
  const resolved = await Promise.all(entries.map((entry) => lookups.add(async () => {
    const name = isIP(entry.host) ? undefined : entry.host;
    if (name !== undefined && isExcluded(o.exclusions, { name })) return { entry, addresses: [], left: ['excluded (opt-out list)'] };
    const { addresses, error } = await resolveTarget(entry, o.family, o.lookup);
    const left: string[] = error || addresses.length === 0 ? [`does not resolve${error ? ` (${error})` : o.family ? ` to an IPv${o.family} address` : ''}`] : [];
    const kept = addresses.filter((a) => {
      if (isExcluded(o.exclusions, { address: a, name })) left.push(`${a}: excluded (opt-out list)`);
      else if (!o.allowPrivate && reservedRange(a)) left.push(`${a}: ${reservedRange(a)}, refused without --allow-private`);
      else return true;
      return false;
    });
    return { entry, addresses: kept, left };
  })));
  const perServerPort = o.tests.reduce((n, t) => n + synsPerTest(t), 0);
  const serverPorts = resolved.reduce((n, r) => n + r.addresses.length * (r.entry.port !== undefined ? 1 : o.ports.length), 0);
  if (o.json) {
    io.stdout(`${JSON.stringify({
      targets: resolved.map((r) => ({ target: r.entry.host, from: r.entry.from, ports: r.entry.port !== undefined ? [r.entry.port] : o.ports, addresses: r.addresses, leftOut: r.left })),
      tests: o.tests.map((t) => ({ name: t.name, sends: t.sends, connections: t.connections })),
      serverPorts, synsAtLeast: serverPorts * perServerPort,
    }, null, 2)}\n`);
    return;
  }
  io.stdout('Targets (nothing is sent in a dry run):\n');
  for (const r of resolved) {
    const portsText = (r.entry.port !== undefined ? [r.entry.port] : o.ports).join(',');
    io.stdout(`  ${r.entry.host} port ${portsText}: ${r.addresses.length ? r.addresses.join(', ') : 'not scanned'}${r.left.length ? `\n      left out: ${r.left.join('; ')}` : ''}\n`);
  }
  io.stdout('\nTo each server address and port, one connection at a time:\n');
  for (const t of o.tests) io.stdout(`  ${t.name}:\n    ${t.connections.join('\n    ')}\n`);
  const syns = serverPorts * perServerPort;
  io.stdout(`\n${plural(serverPorts, 'server port')}; at least ${plural(syns, 'SYN')} (more when SYNs go unanswered: each is sent up to --attempts times, ` +
    `and a verdict resting on a missing answer is confirmed by a second run); at ${o.rate} SYN/s at least ${formatDuration((syns * 1000) / o.rate)}.\n`);
}
