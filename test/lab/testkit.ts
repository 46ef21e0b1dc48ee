/**
 * Helpers for tests that run traffic through a lab: captures, a TCP echo
 * server, a TCP client, nft counters.  Everything runs inside the lab's
 * namespaces (via lab.spawn / lab.exec) and is killed by lab.destroy().
 */
import type { ChildProcess } from 'node:child_process';
import { LabError, type Lab } from '../../lab/index.js';

const node = process.execPath;

function waitFor(child: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new LabError('ETIMEDOUT', `${what}: not ready after ${timeoutMs} ms: ${buf.trim()}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new LabError('EEXIT', `${what}: exited (${code}) before it was ready: ${buf.trim()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child[stream]?.off('data', onData);
      child.off('exit', onExit);
    };
    child[stream]?.on('data', onData);
    child.once('exit', onExit);
  });
}

export interface Capture {
  /** stop tcpdump (SIGINT) and return its output lines */
  stop(): Promise<string[]>;
}

/**
 * tcpdump in a namespace: `-n -l -t -S -v` (numeric, line buffered, no
 * timestamps, absolute sequence numbers, verbose so tos/class, flags and
 * options are shown).  Resolves once tcpdump is capturing.
 */
export async function capture(lab: Lab, ns: string, iface: string, filter: string): Promise<Capture> {
  const child = lab.spawn(ns, ['tcpdump', '-i', iface, '-n', '-l', '-t', '-S', '-v', '-s', '256', filter], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(child, 'stderr', /listening on/, `tcpdump on ${iface}`);
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('close', () => r()));
        // give in-flight packets a moment to be captured
        await new Promise((r) => setTimeout(r, 100));
        child.kill('SIGINT');
        await exited;
      }
      // tcpdump -v prints an IP header line followed by the TCP line indented: join them
      const lines: string[] = [];
      for (const line of out.split('\n')) {
        if (line === '') continue;
        if (/^\s/.test(line) && lines.length > 0) lines[lines.length - 1] += ` ${line.trim()}`;
        else lines.push(line);
      }
      return lines;
    },
  };
}

export interface Peer {
  address: string;
  port: number;
  data: string;
}

export interface EchoServer {
  /** peers seen so far (remote address as the server sees it, IPv4 without ::ffff:) */
  peers: Peer[];
  /** wait until n peers have been seen */
  waitPeers(n: number, timeoutMs?: number): Promise<Peer[]>;
  close(): void;
}

/** TCP server on [::]:port (dual stack) in ns: records peer and first data, replies "pong:<data>" and closes */
export async function echoServer(lab: Lab, ns: string, port: number): Promise<EchoServer> {
  const script = `
    const net = require('node:net');
    const s = net.createServer((c) => {
      let got = '';
      c.on('data', (d) => {
        got += d.toString();
        if (!got.includes('\\n')) return;
        const addr = c.remoteAddress.startsWith('::ffff:') ? c.remoteAddress.slice(7) : c.remoteAddress;
        process.stdout.write(JSON.stringify({ address: addr, port: c.remotePort, data: got.trim() }) + '\\n');
        c.end('pong:' + got);
      });
      c.on('error', () => {});
    });
    s.listen({ port: ${port}, host: '::' }, () => process.stdout.write('listening\\n'));
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  const child = lab.spawn(ns, [node, '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  const peers: Peer[] = [];
  let buf = '';
  const waiters: Array<() => void> = [];
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) {
        peers.push(JSON.parse(line) as Peer);
        waiters.splice(0).forEach((w) => w());
      }
    }
  });
  await waitFor(child, 'stdout', /listening/, `echo server on port ${port}`);
  return {
    peers,
    waitPeers(n, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new LabError('ETIMEDOUT', `echo server: ${peers.length}/${n} peers after ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (peers.length >= n) {
            clearTimeout(timer);
            resolve(peers.slice());
          } else waiters.push(check);
        };
        check();
      });
    },
    close() {
      child.stdin?.end();
      child.kill('SIGTERM');
    },
  };
}

export interface ClientResult {
  localAddress: string;
  localPort: number;
  reply: string;
}

/** connect from ns to host:port, send "<message>\n", return the reply and the client's own address/port */
export async function tcpClient(lab: Lab, ns: string, host: string, port: number, message = 'ping', timeoutMs = 5000): Promise<ClientResult> {
  const script = `
    const net = require('node:net');
    const c = net.connect({ host: ${JSON.stringify(host)}, port: ${port} }, () => c.write(${JSON.stringify(message + '\n')}));
    let reply = '';
    c.on('data', (d) => (reply += d.toString()));
    c.on('end', () => { process.stdout.write(JSON.stringify({ localAddress: c.localAddress, localPort: c.localPort, reply })); process.exit(0); });
    c.on('error', (e) => { process.stderr.write(e.message); process.exit(1); });`;
  const r = await lab.exec(ns, [node, '-e', script], { timeoutMs });
  return JSON.parse(r.stdout) as ClientResult;
}

/** fields of the first tcpdump line matching `flags` (e.g. 'S', 'S.'), or undefined */
export function findSegment(lines: string[], flags: string): { line: string; seq?: number; ack?: number } | undefined {
  const line = lines.find((l) => l.includes(`Flags [${flags}]`));
  if (!line) return undefined;
  const seq = /, seq (\d+)/.exec(line);
  const ack = /, ack (\d+)/.exec(line);
  const out: { line: string; seq?: number; ack?: number } = { line };
  if (seq) out.seq = Number(seq[1]);
  if (ack) out.ack = Number(ack[1]);
  return out;
}
