/**
 * The network I/O shell (shared/net/) against the real kernel, inside two network namespaces this
 * test creates and removes: A (198.51.100.1, 2001:db8::1) and B (198.51.100.2, 2001:db8::2) joined by
 * a veth pair. Traffic never leaves them. Code that must run inside a namespace runs in child node
 * processes started with `ip netns exec`, importing the shell compiled into dist/.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdNftTable } from '../../shared/net/firewall.js';
import { initiatorRules, responderRules } from '../../shared/net/kernel-tcp.js';
import {
  decodePacket, encodePacket, fromHex, mss, nop, rawOption, TcpFlag, toHex, type Packet,
} from '../../shared/wire/index.js';
import { MbprobeError } from '../../shared/wire/errors.js';

const isRoot = process.getuid?.() === 0;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST_NET = join(ROOT, 'dist', 'shared', 'net');
const tag = String(process.pid % 1_000_000);
const NS_A = `mbnt-${tag}-a`;
const NS_B = `mbnt-${tag}-b`;
const IF_A = `mbnt-a${tag}`;
const IF_B = `mbnt-b${tag}`;
const A4 = '198.51.100.1';
const B4 = '198.51.100.2';
const A6 = '2001:db8::1';
const B6 = '2001:db8::2';
const addr = { a: { 4: A4, 6: A6 }, b: { 4: B4, 6: B6 } } as const;

let work = '';
const kids = new Set<Kid>();

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const ip = (...args: string[]): string => run('ip', args);
const nsTables = (ns: string): string => run('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables']);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Namespaces left behind by an earlier run of this test that was killed before afterAll. */
function removeStaleNamespaces(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const m = /^(mbnt-(\d+)-[ab])\b/.exec(line);
    if (!m || Number(m[2]) === process.pid % 1_000_000) continue;
    let alive = true;
    try {
      process.kill(Number(m[2]), 0);
    } catch {
      alive = false;
    }
    if (!alive) ip('netns', 'del', m[1]);
  }
}

function compileShell(): void {
  // Only shared/net (and the wire modules it imports): the rest of the tree may be mid-edit.
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const files = ['native.d.ts', 'capture.ts', 'raw-send.ts', 'firewall.ts', 'kernel-tcp.ts', 'link.ts'].map((f) => join(ROOT, 'shared', 'net', f));
  execFileSync(process.execPath, [
    tsc, '--outDir', join(ROOT, 'dist'), '--rootDir', ROOT, '--target', 'ES2022', '--module', 'NodeNext',
    '--moduleResolution', 'NodeNext', '--strict', '--esModuleInterop', '--skipLibCheck', '--types', 'node', ...files,
  ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

function createNamespaces(): void {
  ip('netns', 'add', NS_A);
  ip('netns', 'add', NS_B);
  ip('link', 'add', IF_A, 'netns', NS_A, 'type', 'veth', 'peer', 'name', IF_B, 'netns', NS_B);
  for (const [ns, dev, v4, v6] of [[NS_A, IF_A, A4, A6], [NS_B, IF_B, B4, B6]] as const) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev);
    ip('-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad');
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
}

function deleteNamespaces(): void {
  for (const ns of [NS_A, NS_B]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not created */
    }
  }
}

/** A child node process inside a namespace that speaks JSON lines on stdout. */
class Kid {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: Array<Record<string, unknown>> = [];
  stderr = '';
  private waiters: Array<() => void> = [];
  exited = false;
  exitStatus = '';

  constructor(ns: string, script: string, args: string[] = [], wrapper: string[] = []) {
    this.proc = spawn('ip', ['netns', 'exec', ns, ...wrapper, process.execPath, join(work, script), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    kids.add(this);
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.stderr += `[stdout] ${line}\n`;
      }
      this.wake();
    });
    this.proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.proc.on('exit', (code, signal) => {
      this.exitStatus = signal ?? String(code);
      this.exited = true;
      kids.delete(this);
      this.wake();
    });
    this.proc.stdin.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first line matching `pred` (removed from `lines`), waiting up to `timeoutMs`. */
  async next(pred: (o: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex(pred);
      if (i >= 0) return this.lines.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0 || this.exited) throw new Error(`no matching line from child (exited=${this.exited} ${this.exitStatus}); stderr:\n${this.stderr}\nlines: ${JSON.stringify(this.lines).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(o: unknown): void {
    this.proc.stdin.write(`${JSON.stringify(o)}\n`);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.proc.stdin.end();
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await new Promise<void>((resolve) => {
      if (this.exited) resolve();
      else this.proc.once('exit', () => resolve());
    });
    clearTimeout(killer);
  }
}

const mod = (name: string): string => JSON.stringify(pathToFileURL(join(DIST_NET, name)).href);

function writeKidScripts(): void {
  writeFileSync(join(work, 'capture.mjs'), `
import { openCapture } from ${mod('capture.js')};
const opts = JSON.parse(process.argv[2]);
const mono = () => Number(process.hrtime.bigint() / 1000n);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let source;
try { source = openCapture(opts); } catch (e) { out({ error: e.code ?? 'ERR', message: e.message }); process.exit(0); }
source.onPacket((p) => out({ mono: mono(), atUs: p.atUs, truncated: p.truncated, hex: Buffer.from(p.bytes).toString('hex') }));
out({ ready: true, linkType: source.linkType });
process.stdin.resume();
process.stdin.on('end', () => { source.close(); process.exit(0); });
`);
  writeFileSync(join(work, 'send.mjs'), `
import { openRawSender } from ${mod('raw-send.js')};
import { nowUs } from ${mod('capture.js')};
import { createInterface } from 'node:readline';
const mono = () => Number(process.hrtime.bigint() / 1000n);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const sinks = new Map();
const sink = (family, mark) => {
  const key = family + '/' + (mark ?? '');
  if (!sinks.has(key)) sinks.set(key, openRawSender({ family, mark }));
  return sinks.get(key);
};
out({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  try {
    const s = sink(req.family, req.mark);
    const mono0 = mono();
    const epoch0 = nowUs();
    await s.send(Buffer.from(req.hex, 'hex'));
    out({ ok: true, id: req.id, mono: mono0, epochUs: epoch0 });
  } catch (e) { out({ ok: false, id: req.id, code: e.code, message: e.message }); }
}
for (const s of sinks.values()) s.close();
`);
  writeFileSync(join(work, 'hold.mjs'), `
import { holdNftTable } from ${mod('firewall.js')};
const held = await holdNftTable(process.argv[2], process.argv[3]);
process.stdout.write(JSON.stringify({ held: held.table, pid: process.pid }) + '\\n');
// Stay until killed, or until the test process is gone (stdin EOF).
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`);
  writeFileSync(join(work, 'misc.mjs'), `
import { openCapture, defaultInterfaceFor } from ${mod('capture.js')};
import { openRawSender } from ${mod('raw-send.js')};
import { holdNftTable } from ${mod('firewall.js')};
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const attempt = async (name, fn) => {
  try { out({ name, ok: true, value: await fn() }); } catch (e) { out({ name, ok: false, code: e.code, message: e.message }); }
};
const iface = process.argv[2];
await attempt('route4', () => defaultInterfaceFor(${JSON.stringify(B4)}));
await attempt('route6', () => defaultInterfaceFor(${JSON.stringify(B6)}));
await attempt('routeNone', () => defaultInterfaceFor('203.0.113.77'));
await attempt('noIface', () => { openCapture({ iface: 'nosuch0', filter: '' }).close(); });
await attempt('badFilter', () => { openCapture({ iface, filter: 'tcp and and' }).close(); });
await attempt('capture', () => { openCapture({ iface, filter: 'tcp' }).close(); return 'opened'; });
await attempt('rawWrongFamily', async () => {
  const s = openRawSender({ family: 4 });
  try { await s.send(new Uint8Array(40).fill(0x60, 0, 1)); } finally { s.close(); }
});
await attempt('raw', () => { openRawSender({ family: 4, mark: 7 }).close(); return 'opened'; });
await attempt('nft', async () => { const h = await holdNftTable('mbnt_misc', ''); await h.close(); return 'held'; });
out({ done: true });
`);
}

// ---- packets ----
interface Over { ip?: Record<string, unknown>; tcp?: Record<string, unknown>; payload?: Uint8Array }
function v4(o: Over = {}, from: 'a' | 'b' = 'a'): Packet {
  const to = from === 'a' ? 'b' : 'a';
  return {
    ip: { version: 4, tos: 0, id: 0x1234, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: addr[from][4], dst: addr[to][4], ...o.ip } as Packet['ip'],
    tcp: { srcPort: 40000, dstPort: 34343, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, ...o.tcp } as Packet['tcp'],
    payload: o.payload ?? new Uint8Array(0),
  };
}
function v6(o: Over = {}, from: 'a' | 'b' = 'a'): Packet {
  const to = from === 'a' ? 'b' : 'a';
  return {
    ip: { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, protocol: 6, src: addr[from][6], dst: addr[to][6], ...o.ip } as Packet['ip'],
    tcp: { srcPort: 40000, dstPort: 34343, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, ...o.tcp } as Packet['tcp'],
    payload: o.payload ?? new Uint8Array(0),
  };
}
const hexOf = (p: Packet): string => toHex(encodePacket(p));

async function startCapture(ns: string, iface: string, filter: string): Promise<Kid> {
  const kid = new Kid(ns, 'capture.mjs', [JSON.stringify({ iface, filter })]);
  const first = await kid.next((o) => o.ready === true || o.error !== undefined, 15_000);
  if (first.error) throw new Error(`capture failed: ${String(first.message)}`);
  kid.lines.unshift(first); // keep linkType available
  return kid;
}

async function startSender(ns: string): Promise<Kid> {
  const kid = new Kid(ns, 'send.mjs');
  await kid.next((o) => o.ready === true, 15_000);
  return kid;
}

let sendId = 0;
async function rawSend(sender: Kid, hex: string, mark?: number): Promise<Record<string, unknown>> {
  const id = ++sendId;
  sender.send({ id, family: Number.parseInt(hex[0], 16), hex, mark });
  const reply = await sender.next((o) => o.id === id);
  if (reply.ok !== true) throw new Error(`send failed: ${String(reply.code)} ${String(reply.message)}`);
  return reply;
}

const capturedHex = (kid: Kid, hex: string, timeoutMs = 3000): Promise<Record<string, unknown>> => kid.next((o) => o.hex === hex, timeoutMs);

/** Captured packets decoded, for "did a RST leave" questions. */
function decodedCaptures(kid: Kid): Array<ReturnType<typeof decodePacket>> {
  return kid.lines.filter((o) => typeof o.hex === 'string').map((o) => decodePacket(fromHex(o.hex as string)));
}

function rstTo(kid: Kid, dstPort: number): boolean {
  return decodedCaptures(kid).some((d) => d.tcp !== undefined && d.tcp.dstPort === dstPort && (d.tcp.flags & TcpFlag.RST) !== 0);
}

async function waitFor(check: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(stepMs);
  }
  return check();
}

describe.skipIf(!isRoot)('network I/O shell, between two namespaces', () => {
  beforeAll(() => {
    removeStaleNamespaces();
    compileShell();
    work = mkdtempSync(join(tmpdir(), 'mbnt-'));
    chmodSync(work, 0o755); // the privilege test runs a child as nobody
    writeKidScripts();
    deleteNamespaces();
    createNamespaces();
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...kids].map((k) => k.stop()));
    deleteNamespaces();
    if (work) rmSync(work, { recursive: true, force: true });
  }, 30_000);

  it('capture in B receives what the raw sender in A wrote, byte for byte (IPv4, Ethernet stripped)', async () => {
    const cap = await startCapture(NS_B, IF_B, 'tcp dst port 34343');
    const sender = await startSender(NS_A);
    expect((await cap.next((o) => o.ready === true)).linkType).toBe(1);
    const packets: Record<string, Packet> = {
      plainSyn: v4(),
      badTcpChecksum: v4({ tcp: { srcPort: 40001, checksum: 0xbeef } }),
      oddOptionLengths: v4({ tcp: { srcPort: 40002, options: [mss(1460), rawOption(0x99, new Uint8Array([1, 2, 3]), 7), nop()] } }),
      mssLength5: v4({ tcp: { srcPort: 40003, options: [rawOption(2, new Uint8Array([5, 0xb4]), 5), nop(), nop(), nop()] } }),
      reservedBitsAndAllFlags: v4({ tcp: { srcPort: 40004, reserved: 7, flags: 0x1ff, urgentPointer: 0x5555 } }),
      synWithPayload: v4({ tcp: { srcPort: 40005 }, payload: new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n') }),
      ipOptionsEvilBitEcn: v4({ ip: { flags: 6, tos: 0xb9, ttl: 3, options: new Uint8Array([1, 1, 0x44, 4, 5, 0, 0, 0]) }, tcp: { srcPort: 40006 } }),
      urgentWithoutUrg: v4({ tcp: { srcPort: 40007, urgentPointer: 1 } }),
    };
    for (const [name, packet] of Object.entries(packets)) {
      const hex = hexOf(packet);
      await rawSend(sender, hex);
      const got = await capturedHex(cap, hex).catch(() => undefined);
      expect(got, `${name} should arrive unchanged: ${hex}`).toBeDefined();
      expect(got?.truncated).toBe(false);
    }
    await Promise.all([cap.stop(), sender.stop()]);
  });

  it('IPv4: the kernel fills in only what raw(7) documents (header checksum, total length, zero ID without DF, zero source)', async () => {
    const cap = await startCapture(NS_B, IF_B, 'tcp dst port 34344');
    const sender = await startSender(NS_A);
    const tcp = (srcPort: number): Over['tcp'] => ({ dstPort: 34344, srcPort });
    const cases: Array<{ name: string; packet: Packet; changed: number[] }> = [
      { name: 'bad IP checksum', packet: v4({ tcp: tcp(40100), ip: { checksum: 0x1234 } }), changed: [10, 11] },
      { name: 'wrong total length', packet: v4({ tcp: tcp(40101), ip: { totalLength: 100 } }), changed: [2, 3, 10, 11] },
      { name: 'ID 0 without DF', packet: v4({ tcp: tcp(40102), ip: { id: 0, flags: 0 } }), changed: [4, 5, 10, 11] },
      { name: 'ID 0 with DF', packet: v4({ tcp: tcp(40103), ip: { id: 0, flags: 2 } }), changed: [] },
      { name: 'source 0.0.0.0', packet: v4({ tcp: tcp(40104), ip: { src: '0.0.0.0' } }), changed: [10, 11, 12, 13, 14, 15] },
    ];
    for (const c of cases) {
      const sent = encodePacket(c.packet);
      await rawSend(sender, toHex(sent));
      const tcpHex = toHex(sent.subarray(20));
      const got = await cap.next((o) => typeof o.hex === 'string' && (o.hex as string).endsWith(tcpHex));
      const received = fromHex(got.hex as string);
      const differing = [...sent].flatMap((b, i) => (b !== received[i] ? [i] : []));
      // The ID the kernel picks is random and may leave one of its bytes as it was; the checksum could too.
      expect(differing.every((i) => c.changed.includes(i)), `${c.name}: bytes ${differing.join(',')} changed`).toBe(true);
      expect(decodePacket(received).checksums.ip, c.name).toBe(true);
    }
    await Promise.all([cap.stop(), sender.stop()]);
  });

  it('IPv6 with IPV6_HDRINCL leaves our header as written: traffic class, flow label, hop limit, payload length, extension headers', async () => {
    const cap = await startCapture(NS_B, IF_B, 'ip6');
    const sender = await startSender(NS_A);
    const packets: Record<string, Packet> = {
      classLabelHops: v6({ ip: { trafficClass: 0xb9, flowLabel: 0xabcde, hopLimit: 7 } }),
      badTcpChecksumOddOptions: v6({ tcp: { srcPort: 40011, checksum: 0x0bad, options: [rawOption(0x99, new Uint8Array([1]), 9), nop(), nop()] } }),
      synWithPayloadReserved: v6({ tcp: { srcPort: 40012, reserved: 5 }, payload: new Uint8Array([1, 2, 3, 4, 5]) }),
      wrongPayloadLength: v6({ ip: { payloadLength: 99 }, tcp: { srcPort: 40013 } }),
      destinationOptions: v6({ ip: { nextHeader: 60, extensions: new Uint8Array([6, 0, 1, 4, 0, 0, 0, 0]) }, tcp: { srcPort: 40014 } }),
      hopByHop: v6({ ip: { nextHeader: 0, extensions: new Uint8Array([6, 0, 1, 4, 0, 0, 0, 0]) }, tcp: { srcPort: 40015 } }),
    };
    for (const [name, packet] of Object.entries(packets)) {
      const hex = hexOf(packet);
      await rawSend(sender, hex);
      const got = await capturedHex(cap, hex).catch(() => undefined);
      expect(got, `${name} should arrive unchanged: ${hex}`).toBeDefined();
      // A payload length claiming more than is there reads as truncated, as it should.
      expect(got?.truncated, name).toBe(name === 'wrongPayloadLength');
    }
    await Promise.all([cap.stop(), sender.stop()]);
  });

  it('delivers captured packets without buffering delay (latency reported)', async () => {
    const cap = await startCapture(NS_B, IF_B, 'tcp dst port 34345');
    const sender = await startSender(NS_A);
    await rawSend(sender, hexOf(v4({ tcp: { dstPort: 34345, srcPort: 39999 } }))); // ARP warm-up
    await capturedHex(cap, hexOf(v4({ tcp: { dstPort: 34345, srcPort: 39999 } })));
    const mono: number[] = [];
    const epoch: number[] = [];
    for (let i = 0; i < 100; i++) {
      const hex = hexOf(v4({ tcp: { dstPort: 34345, srcPort: 41000 + i } }));
      const sent = await rawSend(sender, hex);
      const got = await capturedHex(cap, hex);
      mono.push((got.mono as number) - (sent.mono as number));
      epoch.push((got.atUs as number) - (sent.epochUs as number));
      await sleep(5);
    }
    const stats = (xs: number[]): string => {
      const s = [...xs].sort((x, y) => x - y);
      const q = (f: number): number => s[Math.min(s.length - 1, Math.floor(f * s.length))];
      return `min ${s[0]} / median ${q(0.5)} / p95 ${q(0.95)} / max ${s[s.length - 1]} µs`;
    };
    console.log(`capture latency, raw send in ${NS_A} -> onPacket in ${NS_B} (n=${mono.length}, monotonic clock): ${stats(mono)}`);
    console.log(`same via CapturedPacket.atUs minus sender nowUs() (epoch clocks of two processes): ${stats(epoch)}`);
    const median = [...mono].sort((x, y) => x - y)[mono.length >> 1];
    // Without immediate mode libpcap would hold packets up to its 1000 ms block timeout.
    expect(median).toBeLessThan(50_000);
    expect(Math.max(...mono)).toBeLessThan(500_000);
    await Promise.all([cap.stop(), sender.stop()]);
  });

  it('strips the Linux cooked header on the "any" device', async () => {
    const cap = await startCapture(NS_B, 'any', 'tcp dst port 34346');
    expect((await cap.next((o) => o.ready === true)).linkType).toBe(113);
    const sender = await startSender(NS_A);
    for (const packet of [v4({ tcp: { dstPort: 34346 } }), v6({ tcp: { dstPort: 34346 } })]) {
      const hex = hexOf(packet);
      await rawSend(sender, hex);
      expect(await capturedHex(cap, hex).catch(() => undefined)).toBeDefined();
    }
    await Promise.all([cap.stop(), sender.stop()]);
  });

  it('SO_MARK marks raw packets so nft rules can tell them from the kernel\'s', async () => {
    const held = await holdNftTable('mbnt_mark', '  chain output {\n    type filter hook output priority 0; policy accept;\n    meta mark 0x6d62 counter\n  }', { netns: NS_A });
    try {
      const sender = await startSender(NS_A);
      await rawSend(sender, hexOf(v4({ tcp: { dstPort: 34347 } })), 0x6d62);
      await rawSend(sender, hexOf(v4({ tcp: { dstPort: 34347, srcPort: 40001 } })), 0x6d62);
      await rawSend(sender, hexOf(v4({ tcp: { dstPort: 34347, srcPort: 40002 } })));
      await sender.stop();
      const listing = run('ip', ['netns', 'exec', NS_A, 'nft', 'list', 'table', 'inet', 'mbnt_mark']);
      expect(listing).toMatch(/meta mark 0x00006d62 counter packets 2 bytes/);
    } finally {
      await held.close();
    }
  });

  describe('keeping the kernel from answering crafted segments with RSTs', () => {
    for (const family of [4, 6] as const) {
      const craft = family === 4 ? v4 : v6;

      it(`responder side, IPv${family}: without the rules B's kernel RSTs a SYN to a closed port; with responderRules the SYN is still captured and no RST leaves`, async () => {
        const port = 34343;
        const cap = await startCapture(NS_B, IF_B, `tcp port ${port}`);
        const sender = await startSender(NS_A);

        const syn1 = hexOf(craft({ tcp: { srcPort: 45001, dstPort: port } }));
        await rawSend(sender, syn1);
        await capturedHex(cap, syn1);
        expect(await waitFor(() => rstTo(cap, 45001), 2000), 'kernel RST without rules').toBe(true);

        const held = await holdNftTable(`mbnt_resp${family}`, responderRules([port, 80]), { netns: NS_B });
        try {
          const syn2 = hexOf(craft({ tcp: { srcPort: 45002, dstPort: port } }));
          await rawSend(sender, syn2);
          expect(await capturedHex(cap, syn2).catch(() => undefined), 'capture still sees the SYN').toBeDefined();
          await sleep(700);
          expect(rstTo(cap, 45002), 'no RST with the rules').toBe(false);
        } finally {
          await held.close();
        }
        expect(nsTables(NS_B)).not.toContain(`mbnt_resp${family}`);
        await Promise.all([cap.stop(), sender.stop()]);
      });

      it(`initiator side, IPv${family}: without the rules A's kernel RSTs an unexpected SYN-ACK; with initiatorRules it is captured and no RST leaves`, async () => {
        const port = 34343;
        const cap = await startCapture(NS_A, IF_A, `tcp port ${port}`);
        const sender = await startSender(NS_B);
        const synAck = (local: number): string => hexOf(craft({ tcp: { srcPort: port, dstPort: local, seq: 5000, ack: 1001, flags: TcpFlag.SYN | TcpFlag.ACK } }, 'b'));

        const sa1 = synAck(46001);
        await rawSend(sender, sa1);
        await capturedHex(cap, sa1);
        expect(await waitFor(() => rstTo(cap, port) && decodedCaptures(cap).some((d) => d.tcp?.srcPort === 46001), 2000), 'kernel RST without rules').toBe(true);
        cap.lines.length = 0;

        const held = await holdNftTable(`mbnt_init${family}`, initiatorRules([addr.b[family]], [port]), { netns: NS_A });
        try {
          const sa2 = synAck(46002);
          await rawSend(sender, sa2);
          expect(await capturedHex(cap, sa2).catch(() => undefined), 'capture still sees the SYN-ACK').toBeDefined();
          await sleep(700);
          expect(decodedCaptures(cap).some((d) => d.tcp?.srcPort === 46002 && (d.tcp.flags & TcpFlag.RST) !== 0), 'no RST with the rules').toBe(false);
        } finally {
          await held.close();
        }
        await Promise.all([cap.stop(), sender.stop()]);
      });
    }
  });

  describe('firewall tables that vanish with their holder', () => {
    it('nft -i exits on stdin EOF when stdin is a pipe, and its owned table goes with it', async () => {
      const nft = spawn('ip', ['netns', 'exec', NS_A, 'nft', '-i'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => nft.on('exit', (code) => resolve(code)));
      nft.stdin.write('add table inet mbnt_eof { flags owner; }\n');
      expect(await waitFor(() => nsTables(NS_A).includes('mbnt_eof'), 3000)).toBe(true);
      const t0 = Date.now();
      nft.stdin.end();
      const code = await Promise.race([exited, sleep(3000).then(() => 'timeout' as const)]);
      if (code === 'timeout') nft.kill('SIGKILL');
      console.log(`nft -i exited ${Date.now() - t0} ms after stdin EOF with code ${String(code)}`);
      expect(code).toBe(0);
      expect(nsTables(NS_A)).not.toContain('mbnt_eof');
    });

    it('a table held by a process that is SIGKILLed is gone within 2 s', async () => {
      const holder = new Kid(NS_A, 'hold.mjs', ['mbnt_kill', responderRules([34343])]);
      const held = await holder.next((o) => o.held === 'mbnt_kill', 15_000);
      expect(nsTables(NS_A)).toContain('table inet mbnt_kill');
      const holderPid = held.pid as number;
      const nftPid = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).find((d) => {
        try {
          const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
          return stat.includes('(nft)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === holderPid;
        } catch {
          return false;
        }
      });
      expect(nftPid, 'the holder runs nft -i as its child').toBeDefined();

      const t0 = Date.now();
      process.kill(holderPid, 'SIGKILL');
      const gone = await waitFor(() => !nsTables(NS_A).includes('mbnt_kill'), 2000);
      const elapsed = Date.now() - t0;
      console.log(`table mbnt_kill removed ${elapsed} ms after SIGKILL of its holder (pid ${holderPid}, nft pid ${nftPid})`);
      expect(gone).toBe(true);
      const nftState = (() => {
        try {
          return readFileSync(`/proc/${nftPid}/stat`, 'utf8').split(') ')[1][0];
        } catch {
          return 'gone';
        }
      })();
      expect(['gone', 'Z', 'X']).toContain(nftState);
    });

    it('close() deletes the table; refused rules, a taken name and a missing nft are reported', async () => {
      const held = await holdNftTable('mbnt_fw', responderRules([34343]), { netns: NS_B });
      expect(held.alive).toBe(true);
      expect(nsTables(NS_B)).toContain('table inet mbnt_fw');
      const taken = await holdNftTable('mbnt_fw', '', { netns: NS_B }).catch((e: unknown) => e);
      expect(taken).toBeInstanceOf(MbprobeError);
      expect((taken as MbprobeError).code).toBe('FIREWALL_FAILED');
      expect((taken as MbprobeError).message).toMatch(/Operation not permitted/);
      await held.close();
      await held.close();
      expect(held.alive).toBe(false);
      expect(nsTables(NS_B)).not.toContain('mbnt_fw');

      const refused = await holdNftTable('mbnt_bad', '  chain c {\n    type filter hook input priority 0;\n    bogus drop\n  }', { netns: NS_B }).catch((e: unknown) => e);
      expect((refused as MbprobeError).code).toBe('FIREWALL_FAILED');
      expect((refused as MbprobeError).message).toMatch(/syntax error/);
      expect((refused as MbprobeError).message).toContain('bogus drop');
      expect(nsTables(NS_B)).not.toContain('mbnt_bad');

      const missing = await holdNftTable('mbnt_x', '', { netns: NS_B, nftCommand: '/nonexistent/nft' }).catch((e: unknown) => e);
      expect((missing as MbprobeError).code).toBe('NFT_NOT_FOUND');
      expect((missing as MbprobeError).message).toContain('apt-get install nftables');
    });
  });

  it('reports unknown interfaces, bad filters, routes, and missing privileges', async () => {
    const collect = async (wrapper: string[]): Promise<Record<string, Record<string, unknown>>> => {
      const kid = new Kid(NS_A, 'misc.mjs', [IF_A], wrapper);
      await kid.next((o) => o.done === true, 20_000);
      return Object.fromEntries(kid.lines.map((o) => [o.name as string, o]));
    };
    const asRoot = await collect([]);
    expect(asRoot.route4).toMatchObject({ ok: true, value: IF_A });
    expect(asRoot.route6).toMatchObject({ ok: true, value: IF_A });
    expect(asRoot.routeNone).toMatchObject({ ok: false, code: 'NO_ROUTE' });
    expect(asRoot.noIface).toMatchObject({ ok: false, code: 'INTERFACE_NOT_FOUND' });
    expect(asRoot.noIface.message).toContain(IF_A);
    expect(asRoot.badFilter).toMatchObject({ ok: false, code: 'BAD_FILTER' });
    expect(asRoot.capture).toMatchObject({ ok: true });
    expect(asRoot.rawWrongFamily).toMatchObject({ ok: false, code: 'BAD_PACKET' });
    expect(asRoot.raw).toMatchObject({ ok: true });
    expect(asRoot.nft).toMatchObject({ ok: true });

    const asNobody = await collect(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    expect(asNobody.noIface).toMatchObject({ ok: false, code: 'INTERFACE_NOT_FOUND' });
    for (const name of ['capture', 'raw', 'nft']) {
      expect(asNobody[name], name).toMatchObject({ ok: false, code: 'NOT_PRIVILEGED' });
      expect(asNobody[name].message, name).toMatch(/run as root/);
    }
  });
});
