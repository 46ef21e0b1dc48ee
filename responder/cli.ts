import { Command, Option } from 'commander';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hostname } from 'node:os';
import { ExitCode, parsePortList, parsePositiveInt, processIo, requireNetworkPrivileges, runProgram, TOOL_VERSION, UsageError, type CliIo } from '../shared/cli.js';
import { openCapture, type CaptureStatistics } from '../shared/net/capture.js';
import { holdNftTable } from '../shared/net/firewall.js';
import { responderRules } from '../shared/net/kernel-tcp.js';
import { openRawSender } from '../shared/net/raw-send.js';
import { Store } from '../shared/store.js';
import { startControlApi } from './control-api.js';
import { ResponderService } from './service.js';
import { CONTROL_PORT, TEST_PORTS } from '../shared/ports.js';
import { createMetrics } from './metrics.js';
import { DEFAULT_UNATTRIBUTED_LIMITS } from './unattributed.js';
import { reserveTestPorts } from './ports.js';

export const DEFAULT_TEST_PORTS = TEST_PORTS;
export const DEFAULT_CONTROL_PORT = CONTROL_PORT;
const SESSION_IDLE_MS = 10 * 60_000;
/** Captured packets waiting for the packet loop at most (about 200 bytes each in memory). */
const CAPTURE_QUEUE = 100_000;
/** How often the kept unattributed segments are written (replacing the previous copy). */
const UNATTRIBUTED_FLUSH_MS = 60_000;
/** How often the capture's losses are checked and, when they grew, logged. */
const LOSS_LOG_MS = 60_000;

interface ResponderCliOptions {
  ports: string;
  controlPort: string;
  iface?: string;
  db: string;
  rate: string;
  collect: boolean;
  uploadsPerHour: string;
  tlsCert?: string;
  tlsKey?: string;
  captureBuffer: string;
  unattributedKeep: string;
  unattributedSources: string;
}

export function buildProgram(io: CliIo, signal?: AbortSignal): Command {
  return new Command('mbprobe-responder')
    .description('Stateless TCP responder for mbprobe: answers test segments with raw segments, records everything it receives and sends, and tells initiators what arrived.')
    .version(TOOL_VERSION)
    .option('--ports <list>', 'test ports to answer on (comma-separated)', DEFAULT_TEST_PORTS.join(','))
    .option('--control-port <port>', 'port of the control API (HTTP + JSON)', String(DEFAULT_CONTROL_PORT))
    .option('--iface <name>', 'interface to capture on (default: the only one up besides lo, else any)')
    .option('--db <path>', 'SQLite database recording every segment', 'responder.sqlite')
    .addOption(new Option('--rate <segments/s>', 'per-source segment rate limit').default('20000'))
    .option('--no-collect', 'refuse volunteers\' run submissions (POST /v1/runs); by default they are stored in --db')
    .addOption(new Option('--uploads-per-hour <n>', 'run submissions accepted per hour from one address').default('60'))
    .option('--tls-cert <file>', 'serve the control port over HTTPS with this certificate chain (PEM; e.g. an ACME client\'s fullchain.pem); read again on SIGHUP')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM); read again on SIGHUP')
    .addOption(new Option('--capture-buffer <MiB>', 'libpcap\'s kernel ring buffer (on --iface any each packet takes a 64 KiB slot of it)').default('64'))
    .addOption(new Option('--unattributed-keep <n>', 'segments no test could take (scanners) kept whole: the last n; 0 keeps none (all are counted per source /24 or /48 and port)').default(String(DEFAULT_UNATTRIBUTED_LIMITS.keep)))
    .addOption(new Option('--unattributed-sources <n>', '(source network, port) pairs counted separately; further ones are counted together').default(String(DEFAULT_UNATTRIBUTED_LIMITS.sources)))
    .addHelpText('after', `
Runs as root (or with CAP_NET_RAW and CAP_NET_ADMIN). While it runs, the kernel's own TCP stack is kept
away from the test ports by an nftables table that disappears when the responder exits, however it exits.
Volunteers' finished runs, submitted with \`mbprobe-initiator run --submit\`, are validated and stored in
the same database (each run once); \`mbprobe-results table\` on it gives the paper table of every path.
Without --tls-cert the control port speaks plain HTTP and initiators must pass --insecure.
GET /metrics (Prometheus) and GET /healthz on the control port are for the researchers' monitoring.
Stop it with Ctrl-C or SIGTERM; every collected test is already in the database. SIGHUP reloads
the TLS certificate and key (after an ACME client renewed them).`)
    .action(async (opts: ResponderCliOptions) => {
      const ports = parsePortList(opts.ports);
      const controlPort = parsePositiveInt(opts.controlPort, '--control-port');
      const rate = parsePositiveInt(opts.rate, '--rate');
      const uploadsPerHour = parsePositiveInt(opts.uploadsPerHour, '--uploads-per-hour');
      const captureBufferMiB = parsePositiveInt(opts.captureBuffer, '--capture-buffer');
      const unattributed = { keep: parseCount(opts.unattributedKeep, '--unattributed-keep'), sources: parsePositiveInt(opts.unattributedSources, '--unattributed-sources') };
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError('TLS_INCOMPLETE', 'give both --tls-cert and --tls-key (or neither, for plain HTTP)');
      const tls = opts.tlsCert && opts.tlsKey ? { certPath: resolve(opts.tlsCert), keyPath: resolve(opts.tlsKey) } : undefined;
      requireNetworkPrivileges('mbprobe-responder');
      const iface = opts.iface ?? defaultInterface();
      for (const warning of offloadWarnings(iface)) io.stderr(`mbprobe-responder: warning: ${warning}\n`);
      const store = Store.open(opts.db);
      const runId = `responder-${randomUUID()}`;
      store.insertRun({ id: runId, startedAt: new Date().toISOString(), label: 'responder', responder: hostname(), toolVersion: TOOL_VERSION, hostInfo: { role: 'responder', iface, ports, controlPort } });
      const cleanups: Array<() => unknown> = [];
      try {
        const reserved = await reserveTestPorts(ports);
        for (const note of reserved.notes) io.stderr(`mbprobe-responder: ${note}\n`);
        cleanups.push(() => reserved.release());
        const firewall = await holdNftTable(`mbprobe_responder_${process.pid}`, responderRules(ports));
        cleanups.push(() => firewall.close());
        const source = openCapture({ iface, filter: `tcp and (${ports.map((p) => `dst port ${p}`).join(' or ')})`, bufferBytes: captureBufferMiB * 1024 * 1024, queue: CAPTURE_QUEUE });
        const sinks = { 4: openRawSender({ family: 4 }), 6: openRawSender({ family: 6 }) };
        cleanups.push(() => sinks[4].close(), () => sinks[6].close());
        const service = new ResponderService({ ports, source, sinks, store, runId, segmentsPerSecond: rate, unattributed, log: (l) => io.stderr(`${l}\n`) });
        cleanups.push(() => service.close());
        let captureOpen = true;
        cleanups.push(() => void (captureOpen = false));
        const metrics = createMetrics({ service, capture: () => source.statistics(), databasePath: opts.db === ':memory:' ? undefined : resolve(opts.db) });
        const health = (): string[] => [
          ...(captureOpen ? [] : ['the capture is closed']),
          ...(databaseWritable(store) ? [] : [`the database ${opts.db} cannot be written`]),
        ];
        const api = await startControlApi({ port: controlPort, service, ports, collection: opts.collect ? store : undefined, uploadsPerHour, tls, metrics, health });
        cleanups.push(() => api.close());
        io.stderr(`mbprobe-responder ${TOOL_VERSION}: answering on ${iface} ports ${ports.join(', ')}; control API on port ${api.port} (${tls ? 'HTTPS' : 'plain HTTP'}); recording to ${opts.db}` +
          `${opts.collect ? ', collecting submitted runs there too' : ''}\n`);
        if (!tls) io.stderr('mbprobe-responder: warning: no --tls-cert: sessions and submitted runs travel as plain HTTP, and initiators must pass --insecure\n');
        const onHangup = (): void => {
          try {
            api.reloadTls();
            if (tls) io.stderr(`mbprobe-responder: reloaded the TLS certificate ${tls.certPath}\n`);
          } catch (error) {
            io.stderr(`mbprobe-responder: SIGHUP: kept the previous certificate: ${(error as Error).message}\n`);
          }
        };
        process.on('SIGHUP', onHangup);
        cleanups.push(() => process.off('SIGHUP', onHangup));
        let reported: CaptureStatistics = source.statistics();
        const reportLosses = (always: boolean): void => {
          const now = source.statistics();
          const kernel = now.kernel ? `${now.kernel.drops} dropped by the kernel (ring buffer full) of ${now.kernel.packets}` : 'kernel drops unknown';
          const grew = (now.kernel?.drops ?? 0) > (reported.kernel?.drops ?? 0) || now.queueDropped > reported.queueDropped;
          if (always || grew) io.stderr(`mbprobe-responder: capture: ${now.delivered} packets delivered, ${kernel}, ${now.queueDropped} dropped by the responder's full queue\n`);
          reported = now;
        };
        const lossCheck = setInterval(() => reportLosses(false), LOSS_LOG_MS);
        cleanups.push(() => clearInterval(lossCheck));
        // Idle sessions are closed (their tests committed) and token buckets that refilled forgotten.
        const housekeeping = setInterval(() => {
          service.expireIdleSessions(SESSION_IDLE_MS);
          service.pruneBuckets();
        }, 5_000);
        cleanups.push(() => clearInterval(housekeeping));
        // The bounded record of unattributed segments is rewritten once a minute: a SIGKILL loses at most a minute of scanners.
        const unattributedFlush = setInterval(() => service.flushUnattributed(), UNATTRIBUTED_FLUSH_MS);
        cleanups.push(() => clearInterval(unattributedFlush));
        await waitForStop(signal);
        io.stderr(`mbprobe-responder: stopping (${service.stats.received} segments received, ${service.stats.sent} sent, ${service.stats.unattributed} unattributed)\n`);
        reportLosses(true);
      } finally {
        for (const cleanup of cleanups.reverse()) await cleanup();
        store.finishRun(runId, new Date().toISOString());
        store.close();
      }
    });
}

/**
 * The interface to capture on when none is given: the host's only interface that is up besides
 * loopback, else "any". On "any" (Linux cooked capture) libpcap gives each packet a ring slot of
 * the whole 64 KiB snap length; on an Ethernet interface without receive offloads, of its MTU, so
 * the same --capture-buffer holds about 30 times as many packets (a crowd's bursts fit).
 */
export function defaultInterface(): string {
  try {
    const up = readdirSync('/sys/class/net').filter((name) => name !== 'lo' && readFileSync(`/sys/class/net/${name}/operstate`, 'utf8').trim() !== 'down');
    return up.length === 1 ? up[0] : 'any';
  } catch {
    return 'any';
  }
}

/** Receive offloads that make the kernel merge a flow's segments before capture (and libpcap use 64 KiB ring slots). */
function offloadWarnings(iface: string): string[] {
  if (iface === 'any') return [];
  let features = '';
  try {
    features = execFileSync('ethtool', ['-k', iface], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return [];
  }
  const on = ['generic-receive-offload', 'large-receive-offload'].filter((f) => new RegExp(`^${f}: on`, 'm').test(features));
  return on.length ? [`${on.join(' and ')} on ${iface}: the kernel merges consecutive segments of a flow before they are captured, so the responder sees fewer, larger segments than the initiator sent; turn it off: ethtool -K ${iface} gro off lro off`] : [];
}

function parseCount(text: string, option: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError('BAD_NUMBER', `${option}: "${text}" is not a whole number`);
  return Number(text);
}

function databaseWritable(store: Store): boolean {
  try {
    return store.db.open && !store.db.readonly && store.db.prepare('SELECT 1').get() !== undefined;
  } catch {
    return false;
  }
}

function waitForStop(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
}

export function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildProgram(io), argv, io);
}

export { ExitCode };
