import { Command, Option } from 'commander';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ExitCode, parsePortList, parsePositiveInt, processIo, requireNetworkPrivileges, runProgram, TOOL_VERSION, type CliIo } from '../shared/cli.js';
import { openCapture } from '../shared/net/capture.js';
import { holdNftTable } from '../shared/net/firewall.js';
import { reservePorts, responderRules } from '../shared/net/kernel-tcp.js';
import { openRawSender } from '../shared/net/raw-send.js';
import { Store } from '../shared/store.js';
import { startControlApi } from './control-api.js';
import { ResponderService } from './service.js';
import { CONTROL_PORT, TEST_PORTS } from '../shared/ports.js';

export const DEFAULT_TEST_PORTS = TEST_PORTS;
export const DEFAULT_CONTROL_PORT = CONTROL_PORT;
const SESSION_IDLE_MS = 10 * 60_000;

export function buildProgram(io: CliIo, signal?: AbortSignal): Command {
  return new Command('mbprobe-responder')
    .description('Stateless TCP responder for mbprobe: answers test segments with raw segments, records everything it receives and sends, and tells initiators what arrived.')
    .version(TOOL_VERSION)
    .option('--ports <list>', 'test ports to answer on (comma-separated)', DEFAULT_TEST_PORTS.join(','))
    .option('--control-port <port>', 'port of the control API (HTTP + JSON)', String(DEFAULT_CONTROL_PORT))
    .option('--iface <name>', 'interface to capture on (default: any)')
    .option('--db <path>', 'SQLite database recording every segment', 'responder.sqlite')
    .addOption(new Option('--rate <segments/s>', 'per-source segment rate limit').default('20000'))
    .option('--no-collect', 'refuse volunteers\' run submissions (POST /v1/runs); by default they are stored in --db')
    .addOption(new Option('--uploads-per-hour <n>', 'run submissions accepted per hour from one address').default('60'))
    .addHelpText('after', `
Runs as root (or with CAP_NET_RAW and CAP_NET_ADMIN). While it runs, the kernel's own TCP stack is kept
away from the test ports by an nftables table that disappears when the responder exits, however it exits.
Volunteers' finished runs, submitted with \`mbprobe-initiator run --submit\`, are validated and stored in
the same database (each run once); \`mbprobe-results table\` on it gives the paper table of every path.
Stop it with Ctrl-C; every collected test is already in the database.`)
    .action(async (opts: { ports: string; controlPort: string; iface?: string; db: string; rate: string; collect: boolean; uploadsPerHour: string }) => {
      const ports = parsePortList(opts.ports);
      const controlPort = parsePositiveInt(opts.controlPort, '--control-port');
      const rate = parsePositiveInt(opts.rate, '--rate');
      const uploadsPerHour = parsePositiveInt(opts.uploadsPerHour, '--uploads-per-hour');
      requireNetworkPrivileges('mbprobe-responder');
      const iface = opts.iface ?? 'any';
      const store = Store.open(opts.db);
      const runId = `responder-${randomUUID()}`;
      store.insertRun({ id: runId, startedAt: new Date().toISOString(), label: 'responder', responder: hostname(), toolVersion: TOOL_VERSION, hostInfo: { role: 'responder', iface, ports, controlPort } });
      const cleanups: Array<() => unknown> = [];
      try {
        const reserved = await reservePorts(ports);
        cleanups.push(() => reserved.release());
        const firewall = await holdNftTable(`mbprobe_responder_${process.pid}`, responderRules(ports));
        cleanups.push(() => firewall.close());
        const source = openCapture({ iface, filter: `tcp and (${ports.map((p) => `dst port ${p}`).join(' or ')})` });
        const sinks = { 4: openRawSender({ family: 4 }), 6: openRawSender({ family: 6 }) };
        cleanups.push(() => sinks[4].close(), () => sinks[6].close());
        const service = new ResponderService({ ports, source, sinks, store, runId, segmentsPerSecond: rate, log: (l) => io.stderr(`${l}\n`) });
        cleanups.push(() => service.close());
        const api = await startControlApi({ port: controlPort, service, ports, collection: opts.collect ? store : undefined, uploadsPerHour });
        cleanups.push(() => api.close());
        io.stderr(`mbprobe-responder ${TOOL_VERSION}: answering on ${iface} ports ${ports.join(', ')}; control API on port ${api.port}; recording to ${opts.db}` +
          `${opts.collect ? ', collecting submitted runs there too' : ''}\n`);
        // Idle sessions are closed (their tests committed) and stray segments committed regularly,
        // so a responder killed without warning loses at most the last few seconds of strays.
        const housekeeping = setInterval(() => {
          service.expireIdleSessions(SESSION_IDLE_MS);
          service.flushUnattributed();
        }, 5_000);
        cleanups.push(() => clearInterval(housekeeping));
        await waitForStop(signal);
        io.stderr(`mbprobe-responder: stopping (${service.stats.received} segments received, ${service.stats.sent} sent)\n`);
      } finally {
        for (const cleanup of cleanups.reverse()) await cleanup();
        store.finishRun(runId, new Date().toISOString());
        store.close();
      }
    });
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
