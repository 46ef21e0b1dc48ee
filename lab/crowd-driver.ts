/**
 * Many volunteers at once, from one process (lab/crowd.ts runs it in the initiator's namespace):
 * one initiator session per local address, each running the catalogue on every port exactly as
 * `mbprobe-initiator run` does (runTests, the same prober, judges and store), all at the same time.
 * Two cores cannot run 50 initiator processes, each with its own capture of every answer; one
 * process with one capture, one raw sender and one nftables table can.
 *
 *   node dist/lab/crowd-driver.js --responder ADDR --addresses A,B,... [--tests LIST] [--concurrency N]
 *
 * Prints one JSON line per finished test ({ address, session, test, port, verdict }) and a last
 * line { done: true, ms }.
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { CATALOGUE } from '../initiator/catalogue/index.js';
import { ControlClient } from '../initiator/control-client.js';
import { reserveFreshPorts } from '../initiator/local-ports.js';
import { Prober } from '../initiator/probe.js';
import { sourceRouteTo } from '../shared/net/route.js';
import { runTests } from '../initiator/runner.js';
import { DEFAULT_CONCURRENCY } from '../initiator/schedule.js';
import { openCapture } from '../shared/net/capture.js';
import { holdNftTable } from '../shared/net/firewall.js';
import { initiatorRules } from '../shared/net/kernel-tcp.js';
import { openRawSender } from '../shared/net/raw-send.js';
import { CONTROL_PORT, TEST_PORTS } from '../shared/ports.js';
import { Store } from '../shared/store.js';

const { values } = parseArgs({
  options: {
    responder: { type: 'string' },
    addresses: { type: 'string' },
    tests: { type: 'string', default: 'all' },
    concurrency: { type: 'string', default: String(DEFAULT_CONCURRENCY) },
  },
});
const responder = values.responder!;
const addresses = values.addresses!.split(',');
const tests = values.tests === 'all' ? [...CATALOGUE] : CATALOGUE.filter((t) => values.tests!.split(',').includes(t.name));
const ports = [...TEST_PORTS];
const route = sourceRouteTo(responder);

const store = Store.open(':memory:');
const firewall = await holdNftTable(`mbprobe_crowd_${process.pid}`, initiatorRules([responder], ports));
// Every session's answers through one capture: the prober hands each to the connection owning its local port.
const capture = openCapture({ iface: route.iface, filter: `tcp and src host ${responder}`, bufferBytes: 64 * 1024 * 1024 });
const sink = openRawSender({ family: 4 });
const prober = new Prober(capture, { 4: sink });
const started = Date.now();
try {
  await Promise.all(addresses.map(async (address) => {
    const client = new ControlClient(responder, CONTROL_PORT, 20_000, { insecure: true, localAddress: address });
    const reserved = await reserveFreshPorts(2 * tests.length * ports.length, new Set(), 4);
    const session = await client.openSession({ label: `crowd-${address}`, initiatorAddress: address, toolVersion: 'crowd' });
    const runId = randomUUID();
    store.insertRun({ id: runId, startedAt: new Date().toISOString(), label: `crowd-${address}`, responder, toolVersion: 'crowd', hostInfo: { source: address } });
    try {
      await runTests({
        runId, sessionId: session.sessionId, tests, ports, payload: 'auto', responderName: responder, local: address, responder,
        localPorts: reserved.ports, concurrency: Number(values.concurrency), timing: { timeoutMs: 1000, attempts: 3 }, settleMs: 30,
        onResult: (r) => process.stdout.write(`${JSON.stringify({ address, session: session.sessionId, test: r.name, port: r.port, verdict: r.verdict, runs: r.runs, ...(r.verdict === "inconclusive" || r.runs > 1 ? { why: JSON.stringify(r.detail).slice(0, 400) } : {}) })}\n`),
      }, prober, client, store);
    } finally {
      await client.closeSession(session.sessionId).catch(() => undefined);
      client.close();
      reserved.release();
    }
  }));
  process.stdout.write(`${JSON.stringify({ done: true, ms: Date.now() - started, capture: capture.statistics() })}\n`);
} finally {
  prober.close();
  sink.close();
  await firewall.close();
  store.close();
}
