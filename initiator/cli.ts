import { Command, Option } from 'commander';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname, platform, release } from 'node:os';
import { parsePortList, parsePositiveInt, processIo, requireNetworkPrivileges, runProgram, stopOnInterrupt, TOOL_VERSION, UsageError, type CliIo } from '../shared/cli.js';
import { openCapture } from '../shared/net/capture.js';
import { holdNftTable } from '../shared/net/firewall.js';
import { initiatorRules } from '../shared/net/kernel-tcp.js';
import { openRawSender } from '../shared/net/raw-send.js';
import { DEFAULT_DB_PATH, Store } from '../shared/store.js';
import { MbprobeError } from '../shared/wire/errors.js';
import { ControlClient, type ControlTransport } from './control-client.js';
import { Prober } from './probe.js';
import { sourceRouteTo } from '../shared/net/route.js';
import { runTests, type TestResult } from './runner.js';
import { allVerdicts, type TestCase } from './test-case.js';
import { loadTestFile } from './test-file.js';
import { PortLedger, recentlyUsedPorts, reserveFreshPorts } from './local-ports.js';
import { CATALOGUE } from './catalogue/index.js';
import { latestFinishedRun, prepareSubmission, sendSubmission } from './submit.js';
import { CONTROL_PORT, TEST_PORTS } from '../shared/ports.js';
import { DEFAULT_CONCURRENCY } from './schedule.js';
import { registerScanCommand } from './scan/command.js';
import { locateAbility, locateAfterRun, locateOptions, registerLocateCommand, type LocateOptions } from './locate/command.js';

interface RunOptions extends TransportOptions, LocateOptions {
  responder: string[];
  controlPort: string;
  ports: string;
  tests?: string;
  db: string;
  concurrency: string;
  label?: string;
  json?: boolean;
  timeout: string;
  attempts: string;
  testFile?: string[];
  tag?: string[];
  payload: 'auto' | 'raw';
  submit?: boolean;
  anonymize: boolean;
}

interface TransportOptions {
  ca?: string;
  insecure?: boolean;
}

/** --ca / --insecure: how the control port is reached (plain HTTP only when asked, with a warning). */
function transportFrom(opts: TransportOptions, io: CliIo): ControlTransport {
  if (opts.insecure && opts.ca) throw new UsageError('BAD_TRANSPORT', '--insecure talks plain HTTP, so --ca has nothing to verify: give one or the other');
  if (opts.insecure) {
    io.stderr('mbprobe-initiator: warning: --insecure: the control connection and any submission travel as plain HTTP; anyone on the path can read and change them\n');
    return { insecure: true };
  }
  if (!opts.ca) return {};
  try {
    return { ca: readFileSync(opts.ca) };
  } catch (error) {
    throw new UsageError('BAD_CA', `--ca ${opts.ca}: ${(error as Error).message}`);
  }
}

const collectValues = (value: string, previous: string[] = []): string[] => [...previous, value];
const CA_HELP = 'trust only the CA certificates in this PEM file for the responder\'s control port (default: the system\'s CAs)';
const INSECURE_HELP = 'talk plain HTTP to a responder without TLS (the lab); everything sent can be read and changed on the path';

export function selectTests(spec: string, catalogue: readonly TestCase[] = CATALOGUE): TestCase[] {
  if (spec === 'all') return [...catalogue];
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !catalogue.some((t) => t.name === n));
  if (unknown.length) throw new UsageError('UNKNOWN_TEST', `unknown test ${unknown.map((n) => `"${n}"`).join(', ')}; see mbprobe-initiator list`);
  return catalogue.filter((t) => names.includes(t.name));
}

/** The options of `run`, shared by `locate` (which runs the tests first). */
function runOptions(command: Command): Command {
  return command
    .option('--responder <host>', 'address or name of the mbprobe responder; give it several times to measure against each in turn (one run each)', collectValues)
    .option('--control-port <port>', 'the responder\'s control API port', String(CONTROL_PORT))
    .option('--ca <file>', CA_HELP)
    .option('--insecure', INSECURE_HELP)
    .option('--ports <list>', 'responder ports to test (comma-separated)', TEST_PORTS.join(','))
    .option('--tests <list>', 'test cases to run: all, or names from `list` (default: all, or only the --test-file tests when given)')
    .option('--db <path>', 'SQLite database to add the run to', DEFAULT_DB_PATH)
    .option('--concurrency <n>', 'at most this many tests at once (tests on one port overlap only as far as the responder can still tell them apart: README, "How tests are scheduled")', String(DEFAULT_CONCURRENCY))
    .option('--label <text>', 'a name for this path/run, used by mbprobe-results to group runs')
    .option('--tag <key=value...>', 'attributes of this path for grouping results, e.g. --tag country=de --tag network=mobile')
    .option('--json', 'print one JSON line per finished test instead of the progress display')
    .option('--test-file <path...>', 'also run the test case in this module (see README: writing a test case)')
    .addOption(new Option('--payload <shape>', 'payloads on ports 80/443: shaped like an HTTP request / TLS ClientHello (auto), or a plain pattern (raw)').choices(['auto', 'raw']).default('auto'))
    .addOption(new Option('--timeout <ms>', 'wait this long for an answer before resending a probe').default('1000'))
    .addOption(new Option('--attempts <n>', 'send a probe this many times before concluding it was lost').default('3'))
    .option('--submit', 'when the run has finished, submit it to the responder\'s collection endpoint (what is sent is printed first)')
    .option('--no-anonymize', 'with --submit: send your addresses and hostname whole (by default addresses are truncated to IPv4 /24, IPv6 /48 and the hostname is left out)');
}

export function buildProgram(io: CliIo): Command {
  const program = new Command('mbprobe-initiator')
    .description('Runs mbprobe test cases across a network path to an mbprobe responder and records what the middleboxes on the path did to TCP.')
    .version(TOOL_VERSION);

  runOptions(program.command('run')
    .description('run test cases against a responder and store segments, diffs and verdicts in SQLite'))
    .option('--locate', 'after the run, find where on the path each interference happens (as `locate` does; its options --max-hops, --retries)')
    .addHelpText('after', `
Needs root (or CAP_NET_RAW + CAP_NET_ADMIN): it sends crafted segments on raw sockets, captures the
answers, and holds an nftables table that stops this host's kernel from resetting the crafted
connections. The table disappears when the initiator exits, however it exits.
Every finished test is committed to --db at once; Ctrl-C stops after the tests under way.

With --submit, the finished run also goes to the researchers' responder; the local database keeps
its own copy either way.

Example:
  mbprobe-initiator run --responder responder.example.org --label home-dsl --tests syn-baseline,nat --submit`)
    .action(async (opts: RunOptions) => run(opts, io));
  locateOptions(program.commands.find((c) => c.name() === 'run')!);
  registerLocateCommand(program, (opts) => run(opts as unknown as RunOptions, io), runOptions);

  program.command('submit')
    .description('submit a finished run from your database to the responder\'s collection endpoint (e.g. when `run --submit` could not reach it)')
    .requiredOption('--responder <host>', 'address or name of the mbprobe responder that collects runs')
    .option('--control-port <port>', 'the responder\'s control API port', String(CONTROL_PORT))
    .option('--ca <file>', CA_HELP)
    .option('--insecure', INSECURE_HELP)
    .option('--db <path>', 'the database holding the run', DEFAULT_DB_PATH)
    .option('--run <id>', 'the run to submit (default: the latest finished run)')
    .option('--no-anonymize', 'send your addresses and hostname whole (by default addresses are truncated to IPv4 /24, IPv6 /48 and the hostname is left out)')
    .option('--dry-run', 'print the exact JSON that would be sent, and send nothing')
    .action(async (opts: TransportOptions & { responder: string; controlPort: string; db: string; run?: string; anonymize: boolean; dryRun?: boolean }) => {
      const controlPort = parsePositiveInt(opts.controlPort, '--control-port');
      const transport = opts.dryRun ? {} : transportFrom(opts, io);
      const store = Store.open(opts.db, { readonly: true });
      try {
        const runId = opts.run ?? latestFinishedRun(store);
        if (runId === undefined) throw new UsageError('NO_RUN', `${opts.db} has no finished run to submit; measure one with mbprobe-initiator run`);
        const destination = `${opts.responder}:${controlPort}`;
        const submission = prepareSubmission(store, runId, { anonymize: opts.anonymize, destination });
        if (opts.dryRun) {
          io.stderr(`${submission.notice.replace('Submitting', 'Would submit')}\n`);
          io.stdout(`${JSON.stringify(submission.upload, null, 2)}\n`);
          return;
        }
        io.stderr(`${submission.notice}\n`);
        const client = new ControlClient(opts.responder, controlPort, undefined, transport);
        try {
          io.stderr(`${await sendSubmission(client, submission, retryCommand({ ...opts, responder: opts.responder, controlPort, runId }))}\n`);
        } finally {
          client.close();
        }
      } finally {
        store.close();
      }
    });

  program.command('list')
    .description('list every test case: its name, what it sends, and the verdicts it can give')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const rows = CATALOGUE.map((t) => ({ name: t.name, sends: t.sends, verdicts: allVerdicts(t), locate: locateAbility(t) }));
      if (opts.json) return io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
      for (const r of rows) io.stdout(`${r.name}\n  sends:    ${r.sends}\n  verdicts: ${r.verdicts.join(', ')}\n  locate:   ${r.locate.text}\n`);
    });
  registerScanCommand(program, io, parseTags);
  return program;
}

async function run(opts: RunOptions, io: CliIo): Promise<void> {
  const responders = opts.responder ?? [];
  if (responders.length === 0) throw new UsageError('NO_RESPONDER', 'give the responder to measure against: --responder HOST (several times for several responders)');
  const transport = transportFrom(opts, io);
  // One run per responder, in turn: each its own session, run id and verdicts, recorded with the responder's name.
  if (responders.length === 1) return runAgainst(responders[0], opts, transport, io);
  const failed: string[] = [];
  for (const [i, responder] of responders.entries()) {
    io.stderr(`mbprobe-initiator: responder ${i + 1} of ${responders.length}: ${responder}\n`);
    try {
      await runAgainst(responder, opts, transport, io);
    } catch (error) {
      // One unreachable responder does not cost the volunteer the others; an interruption stops them all.
      if (!(error instanceof MbprobeError) || error instanceof UsageError || error.code === 'INTERRUPTED') throw error;
      io.stderr(`mbprobe-initiator: ${responder}: ${error.message} [${error.code}]\n`);
      failed.push(responder);
    }
  }
  if (failed.length) throw new MbprobeError('RESPONDERS_FAILED', `the run against ${failed.join(', ')} failed (see above); the other responders' runs are stored`);
}

async function runAgainst(responderName: string, opts: RunOptions, transport: ControlTransport, io: CliIo): Promise<void> {
  const ports = parsePortList(opts.ports);
  const controlPort = parsePositiveInt(opts.controlPort, '--control-port');
  const concurrency = parsePositiveInt(opts.concurrency, '--concurrency');
  const timing = { timeoutMs: parsePositiveInt(opts.timeout, '--timeout'), attempts: parsePositiveInt(opts.attempts, '--attempts') };
  const tags = parseTags(opts.tag ?? []);
  const extra: TestCase[] = [];
  for (const file of opts.testFile ?? []) extra.push(await loadTestFile(file, [...CATALOGUE, ...extra].map((t) => t.name)));
  // With --test-file, only those tests run unless --tests names catalogue tests too.
  const tests = [...(opts.tests ? selectTests(opts.tests) : extra.length ? [] : [...CATALOGUE]), ...extra];
  requireNetworkPrivileges('mbprobe-initiator');
  const responder = (await lookup(responderName).catch(() => {
    throw new UsageError('UNKNOWN_HOST', `--responder ${responderName}: no such host`);
  })).address;
  const route = sourceRouteTo(responder);
  const client = new ControlClient(responder, controlPort, undefined, { ...transport, serverName: responderName });
  // Meanwhile, a control connection for each test that may register at once (and each port's wait
  // for a flow): ready (its handshakes and its own hello done) by the time the session is open, so
  // that the first registrations cost a round trip each, not a TCP and TLS handshake more.
  void client.warm(Math.min(concurrency, tests.length * ports.length) + ports.length);
  const hello = await client.hello().catch((error: unknown) => {
    client.close();
    throw error;
  });
  const missing = ports.filter((p) => !hello.ports.includes(p));
  if (missing.length) {
    client.close();
    throw new UsageError('PORT_NOT_SERVED', `the responder does not answer on port ${missing.join(', ')} (it serves ${hello.ports.join(', ')})`);
  }

  const store = Store.open(opts.db, { createdBy: `mbprobe-initiator ${TOOL_VERSION}` });
  const runId = randomUUID();
  const stop = stopOnInterrupt('mbprobe-initiator', io);
  const cleanups: Array<() => unknown> = [stop.release, () => client.close()];
  try {
    // Twice the jobs: spare ports for the runs that confirm a verdict (initiator/confirm.ts).
    const ledger = new PortLedger();
    const recent = new Set([...recentlyUsedPorts(store, responderName), ...ledger.recent(responderName)]);
    const reserved = await reserveFreshPorts(2 * tests.length * ports.length, recent, route.source.includes(':') ? 6 : 4);
    cleanups.push(() => reserved.release());
    ledger.record(runId, responderName, reserved.ports);
    // One request on the control connection opened by hello(): about one round trip, the first estimate of the path's.
    const sessionStarted = performance.now();
    const session = await client.openSession({ label: opts.label, initiatorAddress: route.source, toolVersion: TOOL_VERSION });
    const rttHintMs = performance.now() - sessionStarted;
    cleanups.push(() => client.closeSession(session.sessionId).catch(() => undefined));
    store.insertRun({
      id: runId, startedAt: new Date().toISOString(), label: opts.label ?? null, responder: responderName, toolVersion: TOOL_VERSION, tags,
      hostInfo: { responderAddress: responder, hostname: hostname(), platform: platform(), kernel: release(), iface: route.iface, source: route.source, observedAddress: session.observedAddress, ports, tests: tests.map((t) => t.name), concurrency, localPorts: reserved.ports },
    });
    const firewall = await holdNftTable(`mbprobe_initiator_${process.pid}`, initiatorRules([responder], ports));
    cleanups.push(() => firewall.close());
    // Only what the responder sends us: answers it sends other hosts (a busy responder's) cost nothing here.
    const source = openCapture({ iface: route.iface, filter: `tcp and src host ${responder} and dst host ${route.source}` });
    const family = route.source.includes(':') ? 6 : 4;
    const sink = openRawSender({ family });
    cleanups.push(() => sink.close());
    const prober = new Prober(source, { [family]: sink });
    cleanups.push(() => prober.close());
    const total = tests.length * ports.length;
    const progress = !opts.json && process.stderr.isTTY;
    const results = await runTests({
      runId, sessionId: session.sessionId, tests, ports, payload: opts.payload, responderName, local: route.source, responder, localPorts: reserved.ports, concurrency, timing, rttHintMs, settleMs: 30, signal: stop.signal,
      responderTakesTokens: hello.features?.includes('token') ?? false,
      onResult: (r, done) => {
        if (opts.json && !opts.locateOnly) io.stdout(`${JSON.stringify({ run: r.runId, responder: responderName, test: r.name, port: r.port, verdict: r.verdict, detail: r.detail, timeoutWaitMs: r.timeoutWaitMs, watchMs: r.watchMs, runs: r.runs })}\n`);
        else if (progress) io.stderr(`\r\x1b[K[${done}/${total}] ${r.name} :${r.port} → ${r.verdict}`);
      },
    }, prober, client, store);
    if (progress) io.stderr('\r\x1b[K');
    if (!opts.json) io.stdout(formatVerdictTable(results, ports) + `\nrun ${runId}: ${results.length} tests stored in ${opts.db}\n`);
    if (opts.locate && !stop.signal.aborted) {
      await locateAfterRun({
        runId, sessionId: session.sessionId, store, results, tests, local: route.source, iface: route.iface, responder, responderName, payload: opts.payload, timing, concurrency, rttHintMs,
        prober, client, send: (bytes) => sink.send(bytes), avoidPorts: new Set([...recent, ...reserved.ports]), json: opts.json === true, signal: stop.signal,
      }, opts, io);
    }
    store.finishRun(runId, new Date().toISOString());
    if (stop.signal.aborted) {
      const unsent = opts.submit ? '; an interrupted run is not submitted' : '';
      throw new MbprobeError('INTERRUPTED', `interrupted: ${results.length} of ${total} tests finished and are stored in ${opts.db} (run ${runId})${unsent}`);
    }
    if (opts.submit) {
      const submission = prepareSubmission(store, runId, { anonymize: opts.anonymize, destination: `${responderName}:${controlPort}` });
      io.stderr(`${submission.notice}\n`);
      io.stderr(`${await sendSubmission(client, submission, retryCommand({ ...opts, responder: responderName, controlPort, runId }))}\n`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    store.close();
  }
}

/** The command that submits a stored run again, for when a submission failed. */
function retryCommand(o: TransportOptions & { responder: string; controlPort: number; db: string; runId: string; anonymize: boolean }): string {
  const transport = o.insecure ? ' --insecure' : o.ca ? ` --ca ${o.ca}` : '';
  return `mbprobe-initiator submit --responder ${o.responder} --control-port ${o.controlPort}${transport} --db ${o.db} --run ${o.runId}${o.anonymize ? '' : ' --no-anonymize'}`;
}

/** "--tag country=de --tag network=mobile" -> { country: 'de', network: 'mobile' }. */
export function parseTags(specs: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const spec of specs) {
    const match = /^([A-Za-z][A-Za-z0-9_-]{0,31})=(.{1,200})$/.exec(spec);
    if (!match) throw new UsageError('BAD_TAG', `--tag ${spec}: write it as key=value (key: letters, digits, - and _), e.g. --tag country=de`);
    tags[match[1]] = match[2];
  }
  return tags;
}

/** Tests down, ports across, verdicts in the cells; non-clean verdicts marked with '*'. */
export function formatVerdictTable(results: readonly Pick<TestResult, 'name' | 'port' | 'verdict'>[], ports: readonly number[]): string {
  const names = [...new Set(results.map((r) => r.name))];
  const cell = (name: string, port: number): string => results.find((r) => r.name === name && r.port === port)?.verdict ?? '-';
  const header = ['test', ...ports.map(String)];
  const rows = names.map((n) => [n, ...ports.map((p) => cell(n, p))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildProgram(io), argv, io);
}
