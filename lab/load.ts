/**
 * Load on a lab path's responder (scripts/bench.ts): the real mbprobe-responder or the C yardstick
 * (lab/tools/echo-responder.c) in the responder's namespace, and floods of crafted segments from the
 * initiator's namespace (lab/tools/flood.c), the answers counted where they arrive.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from './profile.js';
import type { Lab } from './topology.js';

let built: { flood: string; echo: string } | undefined;

/** Compiles the flood generator and the C echo responder (Debian's gcc and libpcap-dev) once per process. */
export function buildLoadTools(): { flood: string; echo: string } {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-tools-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const source = (name: string): string => join(projectRoot(), 'lab/tools', name);
  const flood = join(dir, 'flood');
  const echo = join(dir, 'echo-responder');
  execFileSync('cc', ['-O2', '-Wall', '-o', flood, source('flood.c')], { stdio: 'pipe' });
  execFileSync('cc', ['-O2', '-Wall', '-o', echo, source('echo-responder.c'), '-lpcap'], { stdio: 'pipe' });
  return (built = { flood, echo });
}

export interface LoadResponder {
  kind: 'mbprobe' | 'echo';
  pid: number;
  /** Resident memory now (VmRSS), bytes. */
  rss(): number;
  stderr(): string;
  /** Stops it (SIGINT); resolves with what it printed on stdout. */
  stop(): Promise<string>;
}

function started(kind: LoadResponder['kind'], child: ChildProcess, readyText: string, cleanup: () => Promise<void> = async () => undefined): Promise<LoadResponder> {
  let stderr = '';
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => void (stdout += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} responder did not start:\n${stderr}`)), 15_000);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes(readyText)) {
        clearTimeout(timer);
        resolve({
          kind,
          pid: child.pid!,
          rss: () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
          stderr: () => stderr,
          stop: () => new Promise((done) => {
            child.once('exit', () => void cleanup().then(() => done(stdout)));
            child.kill('SIGINT');
          }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} responder exited with ${code}:\n${stderr}`));
    });
  });
}

/** The real responder in the lab's responder namespace, with extra options (e.g. --rate for a benchmark). */
export function startMbprobeResponder(lab: Lab, db: string, args: string[] = []): Promise<LoadResponder> {
  const child = lab.spawn(lab.namespaces.responder, [process.execPath, join(projectRoot(), 'dist/responder/bin.js'), '--db', db, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return started('mbprobe', child, 'answering on');
}

/** The C echo responder, with the same nftables rule that keeps the kernel's TCP away as mbprobe's. */
export async function startEchoResponder(lab: Lab, options: { bufferBytes: number; sports: [number, number] }): Promise<LoadResponder> {
  const table = 'mbprobe_echo';
  await lab.exec(lab.namespaces.responder, ['nft', `add table inet ${table}\nadd chain inet ${table} prerouting { type filter hook prerouting priority raw; policy accept; }\nadd rule inet ${table} prerouting fib daddr type local tcp dport { 34343, 80, 443 } drop`]);
  const child = lab.spawn(lab.namespaces.responder, [buildLoadTools().echo, '--iface', 'any', '--buffer', String(options.bufferBytes), '--sports', options.sports.join('-')], { stdio: ['ignore', 'pipe', 'pipe'] });
  return started('echo', child, 'answering on', async () => void await lab.exec(lab.namespaces.responder, ['nft', 'delete', 'table', 'inet', table], { allowFailure: true }));
}

/** A flow the flood sends SYNs on: a test registered with the responder (or, for the echo responder, just a source port in its range). */
export interface Flow {
  src: string;
  srcPort: number;
  dstPort: number;
  isn: number;
}

export interface FloodResult {
  /** Segments the flood generator put on the wire, and its achieved rate. */
  sent: number;
  syns: number;
  junk: number;
  seconds: number;
  rate: number;
  /** SYN-ACKs that arrived back in the initiator's namespace. */
  answers: number;
}

const ANSWERS_TABLE = 'mbprobe_flood';

/**
 * Answers are counted, and dropped so the initiator's kernel does not reset them, by a table that
 * stays for the lab's life: answers a busy responder sends late are dropped too (a reset would reach
 * the responder as one more segment of the flow).
 */
async function answersCounter(lab: Lab): Promise<void> {
  const ns = lab.namespaces.initiator;
  if ((await lab.exec(ns, ['nft', 'list', 'table', 'inet', ANSWERS_TABLE], { allowFailure: true })).code === 0) return;
  await lab.exec(ns, ['nft', `add table inet ${ANSWERS_TABLE}\nadd chain inet ${ANSWERS_TABLE} prerouting { type filter hook prerouting priority raw - 10; policy accept; }\nadd counter inet ${ANSWERS_TABLE} answers\nadd rule inet ${ANSWERS_TABLE} prerouting ip saddr ${lab.addresses.responder} tcp sport { 34343, 80, 443 } tcp flags & (syn | ack) == syn | ack counter name answers drop`]);
}

/** SYN-ACKs that arrived in the initiator's namespace since the last flood began. */
export async function answersArrived(lab: Lab): Promise<number> {
  const counted = await lab.exec(lab.namespaces.initiator, ['nft', 'list', 'counter', 'inet', ANSWERS_TABLE, 'answers']);
  return Number(/packets (\d+)/.exec(counted.stdout)?.[1] ?? NaN);
}

/**
 * Sends `rate` segments/s for `seconds` from the initiator's namespace: SYNs of `flows` in turn, and a
 * `junk` fraction of scanner-like segments (random sources, ports and flags, a quarter malformed).
 * `answers` counts the SYN-ACKs that arrived by half a second after the end (answersArrived, read
 * later, counts the late ones too).
 */
export async function flood(lab: Lab, options: { flows: readonly Flow[]; rate: number; seconds: number; junk: number }): Promise<FloodResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-flood-'));
  const flowsFile = join(dir, 'flows.txt');
  writeFileSync(flowsFile, options.flows.map((f) => `${f.src} ${f.srcPort} ${f.dstPort} ${f.isn}`).join('\n'));
  const ns = lab.namespaces.initiator;
  await answersCounter(lab);
  await lab.exec(ns, ['nft', 'reset', 'counter', 'inet', ANSWERS_TABLE, 'answers']);
  try {
    const run = await lab.exec(ns, [buildLoadTools().flood, '--dst', lab.addresses.responder, '--rate', String(options.rate), '--seconds', String(options.seconds),
      '--junk', String(options.junk), ...(options.flows.length ? ['--flows', flowsFile] : [])], { timeoutMs: (options.seconds + 30) * 1000 });
    await new Promise((r) => setTimeout(r, 500));
    return { ...(JSON.parse(run.stdout) as Omit<FloodResult, 'answers'>), answers: await answersArrived(lab) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Registers `perSession` tests on port 34343 in each of `sessions` sessions (one per address): the flows a flood's SYNs belong to. */
export async function registerFlows(lab: Lab, addresses: readonly string[], perSession: number): Promise<Flow[]> {
  const script = `
    import { ControlClient } from ${JSON.stringify(join(projectRoot(), 'dist/initiator/control-client.js'))};
    const addresses = ${JSON.stringify(addresses)};
    const flows = [];
    await Promise.all(addresses.map(async (address, s) => {
      const client = new ControlClient(${JSON.stringify(lab.addresses.responder)}, 8750, 10000, { insecure: true, localAddress: address });
      const { sessionId } = await client.openSession({ initiatorAddress: address, toolVersion: 'bench' });
      for (let i = 0; i < ${perSession}; i++) {
        const flow = { src: address, srcPort: 20000 + s * ${perSession} + i, dstPort: 34343, isn: (s * 7919 + i) * 104729 >>> 0 };
        await client.registerTest(sessionId, { testId: 'flood-' + i, name: 'flood', port: 34343, initiatorPort: flow.srcPort, initiatorIsn: flow.isn, plan: {}, padding: 'x'.repeat(16000) });
        flows.push(flow);
      }
      client.close();
    }));
    process.stdout.write(JSON.stringify(flows));`;
  const { stdout } = await lab.exec(lab.namespaces.initiator, [process.execPath, '--input-type=module', '-e', script]);
  return JSON.parse(stdout) as Flow[];
}

/** The responder's /metrics as "series" -> value, fetched from the initiator's namespace. */
export async function responderMetrics(lab: Lab): Promise<Record<string, number>> {
  const { stdout } = await lab.exec(lab.namespaces.initiator, [process.execPath, '-e', `fetch('http://${lab.addresses.responder}:8750/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
  return Object.fromEntries(stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const at = l.lastIndexOf(' ');
    return [l.slice(0, at), Number(l.slice(at + 1))];
  }));
}
