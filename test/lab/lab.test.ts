/**
 * Integration tests of the lab: every profile is built for real (network
 * namespaces + netfilter) and checked with real traffic.  Needs root; all
 * traffic stays between the lab's own namespaces.  Every lab is destroyed in
 * afterAll / finally.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLab,
  LAB_RUN_DIR,
  PORT_REWRITE_RANGE,
  RESEGMENT_MSS,
  LabError,
  labNamespaces,
  listLabs,
  nftCounter,
  PROFILES,
  removeStaleLabs,
  type Lab,
} from '../../lab/index.js';
import { capture, echoServer, findSegment, tcpClient } from './testkit.js';
import { ISN_SHIFT, FIXED_WINDOW, TS_SHIFT } from '../../lab/daemons/rewriter.js';
import { segment, sendPackets, ttlOf, wireCapture } from './wirekit.js';
import { trafficClassOf, type DecodedPacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import {
  fastOpen,
  findOption,
  mptcpCapable,
  mss,
  nop,
  OptionKind,
  rawOption,
  sack,
  sackPermitted,
  timestamps,
  viewOption,
  windowScale,
} from '../../shared/wire/tcp-options.js';

const isRoot = process.getuid?.() === 0;
const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const PORT = 34343;

// ---------------------------------------------------------------------------
// python helpers (run inside the namespaces with `python3 -c`)

/** TCP server with TCP Fast Open enabled; one JSON line per connection */
const PY_TFO_SERVER = `
import socket, sys, json
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
s.bind(('::', port)); s.listen(16)
print('listening', flush=True)
while True:
    c, a = s.accept()
    d = b''
    while not d.endswith(b'\\n'):
        x = c.recv(100)
        if not x: break
        d += x
    print(json.dumps({'address': a[0].removeprefix('::ffff:'), 'port': a[1], 'data': d.decode()}), flush=True)
    c.sendall(b'pong'); c.close()
`;

/** n connections with sendto(MSG_FASTOPEN): the first gets a cookie, later ones put the data in the SYN */
const PY_TFO_CLIENT = `
import socket, sys, json
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
out = []
for i in range(n):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.sendto(b'tfo-%d\\n' % i, socket.MSG_FASTOPEN, (host, port))
    s.settimeout(10)
    out.append(s.recv(100).decode())
    s.close()
print(json.dumps(out))
`;

/** connect with the given socket protocol (262 = MPTCP) and optional TOS / traffic class, then a UDP datagram with tos+1 */
const PY_CLIENT = `
import socket, sys, json
host, port, proto, tos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
v6 = ':' in host
fam = socket.AF_INET6 if v6 else socket.AF_INET
def settos(s, t):
    if v6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, t)
    else: s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, t)
s = socket.socket(fam, socket.SOCK_STREAM, proto)
if tos: settos(s, tos)
s.settimeout(5); s.connect((host, port)); s.sendall(b'ping\\n')
reply = s.recv(100).decode(); s.close()
if tos:
    u = socket.socket(fam, socket.SOCK_DGRAM); settos(u, tos | 1); u.sendto(b'udp', (host, port))
print(json.dumps({'reply': reply}))
`;

/** hand-made IPv4 TCP segments through a raw socket */
const PY_CRAFT = `
import socket, struct, sys, json, time
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def tcp4(src, dst, sport, dport, seq, ack, flags, opts=b'', data=b''):
    off = (20 + len(opts)) // 4
    hdr = struct.pack('!HHIIBBHHH', sport, dport, seq & 0xffffffff, ack & 0xffffffff, off << 4, flags, 64240, 0, 0) + opts
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(hdr) + len(data))
    hdr = hdr[:16] + struct.pack('!H', csum(pseudo + hdr + data)) + hdr[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(hdr) + len(data), 0x1234, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip[:10] + struct.pack('!H', csum(ip)) + ip[12:] + hdr + data
def send4(pkt, dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.sendto(pkt, (dst, 0)); s.close()
mode, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == 'syn-opts':
    # SYN with MSS 1460 and an option of the unassigned kind 200 (length 4)
    send4(tcp4(src, dst, 40000, port, 1000, 0, 0x02, bytes.fromhex('020405b4c8040102')), dst)
    print('{}')
elif mode == 'invalid':
    # open a real connection, learn both ISNs from a packet socket, then inject
    # 1) data far beyond the receiver's window, 2) an ACK of data never sent,
    # 3) a bare ACK that belongs to no connection, 4) an ACK only 1000 bytes
    # beyond what the server sent (an ack hole); finally use the connection
    dev = sys.argv[5]
    sn = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    sn.bind((dev, 0)); sn.settimeout(3)
    c = socket.create_connection((dst, port), timeout=5)
    sport = c.getsockname()[1]
    isn = sisn = None
    while isn is None or sisn is None:
        f = sn.recv(2048)
        if f[12:14] != b'\\x08\\x00' or f[14 + 9] != 6: continue
        ip = f[14:]; th = ip[(ip[0] & 15) * 4:]
        sp, dp, seq, ack, off, fl = struct.unpack('!HHIIBB', th[:14])
        if fl & 0x12 == 0x02 and sp == sport: isn = seq
        if fl & 0x12 == 0x12 and dp == sport: sisn = seq
    send4(tcp4(src, dst, sport, port, isn + 1 + (1 << 30), sisn + 1, 0x18, data=b'OOW\\n'), dst)
    send4(tcp4(src, dst, sport, port, isn + 1, sisn + 1 + (1 << 20), 0x10), dst)
    send4(tcp4(src, dst, 40001, port, 12345, 67890, 0x10), dst)
    send4(tcp4(src, dst, sport, port, isn + 1, sisn + 1 + 1000, 0x10), dst)
    time.sleep(0.2)
    c.sendall(b'ping\\n'); reply = c.recv(100).decode(); c.close()
    print(json.dumps({'sport': sport, 'reply': reply}))
`;

/** reads everything, ACKing lazily (TCP_QUICKACK off, like a server that answers after some work); one JSON line per connection */
const PY_SLOW_ACK_SERVER = `
import socket, sys, json
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('::', port)); s.listen(16)
print('listening', flush=True)
while True:
    c, a = s.accept()
    n = 0
    while True:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        d = c.recv(65536)
        if not d: break
        n += len(d)
    print(json.dumps({'bytes': n}), flush=True)
    c.close()
`;

/** one 1400-byte write, a pause, then five 50-byte writes back to back (Nagle off: five segments) */
const PY_BURST_CLIENT = `
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
c = socket.create_connection((host, port), timeout=5)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b'a' * 1400); time.sleep(0.2)
for i in range(5): c.send(b'x' * 50)
time.sleep(0.2); c.close()
print('{}')
`;

async function py<T>(lab: Lab, ns: string, script: string, args: (string | number)[], timeoutMs = 15_000): Promise<T> {
  const r = await lab.exec(ns, ['python3', '-c', script, ...args.map(String)], { timeoutMs });
  return JSON.parse(r.stdout) as T;
}

interface PyServer {
  lines: string[];
  stop(): void;
}

function pyTfoServer(lab: Lab, port: number): Promise<PyServer> {
  return pyServer(lab, PY_TFO_SERVER, port);
}

async function pyServer(lab: Lab, script: string, port: number): Promise<PyServer> {
  const child = lab.spawn('responder', ['python3', '-u', '-c', script, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.startsWith('{')));
      if (parts.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`tfo server exited ${code}`)));
  });
  return { lines, stop: () => child.kill('SIGKILL') };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** the SYN / SYN-ACK as captured on both sides of the middlebox for one connection */
async function handshake(lab: Lab, host: string, port = PORT) {
  const family = host.includes(':') ? 'ip6' : 'ip';
  const filter = `${family} and tcp port ${port}`;
  const ini = await capture(lab, 'initiator', lab.interfaces.initiator, filter);
  const rsp = await capture(lab, 'responder', lab.interfaces.responder, filter);
  const client = await tcpClient(lab, 'initiator', host, port, 'ping');
  return { client, ini: await ini.stop(), rsp: await rsp.stop() };
}

function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function withLab(profile: string, fn: (get: () => Lab) => void): void {
  describe.sequential(profile, () => {
    let lab: Lab | undefined;
    beforeAll(async () => {
      lab = await createLab({ profile });
    });
    afterAll(async () => {
      await lab?.destroy();
    });
    fn(() => {
      if (!lab) throw new Error('lab not created');
      return lab;
    });
  });
}

const families = [
  { name: 'IPv4', family: 4 as const, rsp: (l: Lab) => l.addresses.responder, ini: (l: Lab) => l.addresses.initiator, mbRight: (l: Lab) => l.addresses.middleboxRight },
  { name: 'IPv6', family: 6 as const, rsp: (l: Lab) => l.addresses.responder6, ini: (l: Lab) => l.addresses.initiator6, mbRight: (l: Lab) => l.addresses.middleboxRight6 },
];

/**
 * What the ECN/DSCP profiles are tested with: ECN on at the initiator, then a TCP connection and a UDP
 * datagram, both with DSCP EF, to the responder's echo server, captured on both ends by `take`
 * (tcpdump's text, or packets decoded by our codec).
 */
async function trafficClassExchange<T>(
  l: Lab,
  f: (typeof families)[number],
  take: (lab: Lab, ns: string, iface: string, filter: string) => Promise<{ stop(): Promise<T[]> }>,
): Promise<{ sent: T[]; got: T[] }> {
  await l.exec('initiator', ['sysctl', '-q', '-w', 'net.ipv4.tcp_ecn=1']);
  const srv = await echoServer(l, 'responder', PORT);
  try {
    const filter = `${f.name === 'IPv4' ? 'ip' : 'ip6'} and (tcp or udp) and port ${PORT}`;
    const ini = await take(l, 'initiator', l.interfaces.initiator, filter);
    const rsp = await take(l, 'responder', l.interfaces.responder, filter);
    const r = await py<{ reply: string }>(l, 'initiator', PY_CLIENT, [f.rsp(l), PORT, 0, 0xb8]);
    expect(r.reply).toBe('pong:ping\n');
    return { sent: await ini.stop(), got: await rsp.stop() };
  } finally {
    srv.close();
  }
}

// ---------------------------------------------------------------------------

describe.skipIf(!isRoot)('lab (root)', () => {
  describe.sequential('lab', () => {
    withLab('clean', (lab) => {
      it('builds the path as specified', async () => {
        const l = lab();
        expect(l.namespaces).toEqual({ initiator: `mbp${l.id}-ini`, middlebox: `mbp${l.id}-mb`, responder: `mbp${l.id}-rsp` });
        expect(l.addresses.initiator).toBe(`198.18.${l.id}.2`);
        expect(l.addresses.responder6).toBe(`fd6d:6270:${l.id}:2::2`);
        const pid = readFileSync(`${LAB_RUN_DIR}/${l.id}.pid`, 'utf8').split('\n')[0];
        expect(pid).toBe(String(process.pid));
        const ends: Array<[string, string]> = [
          [l.namespaces.initiator, l.interfaces.initiator],
          [l.namespaces.middlebox, l.interfaces.middleboxLeft],
          [l.namespaces.middlebox, l.interfaces.middleboxRight],
          [l.namespaces.responder, l.interfaces.responder],
        ];
        for (const [ns, dev] of ends) {
          const k = (await l.exec(ns, ['ethtool', '-k', dev])).stdout;
          for (const feature of [
            'tcp-segmentation-offload',
            'generic-segmentation-offload',
            'generic-receive-offload',
            'large-receive-offload',
            'tx-checksumming',
            'rx-checksumming',
            'scatter-gather',
          ]) {
            expect(k, `${dev} ${feature}`).toMatch(new RegExp(`^${feature}: off`, 'm'));
          }
          const link = (await l.exec(ns, ['ip', '-o', 'link', 'show', dev])).stdout;
          expect(link).toContain('mtu 1500');
          const addrs = (await l.exec(ns, ['ip', '-o', 'addr', 'show', dev])).stdout;
          expect(addrs).not.toMatch(/tentative|dadfailed/);
        }
        const mb = await l.exec('middlebox', ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv6.conf.all.accept_dad']);
        expect(mb.stdout.split('\n').slice(0, 3)).toEqual(['1', '1', '0']);
      });

      for (const f of families) {
        it(`${f.name}: initiator reaches responder:${PORT}, server sees the initiator`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const c = await tcpClient(l, 'initiator', f.rsp(l), PORT, 'hello');
            expect(c.reply).toBe('pong:hello\n');
            const [peer] = await srv.waitPeers(1);
            expect(peer).toMatchObject({ address: f.ini(l), port: c.localPort, data: 'hello' });
          } finally {
            srv.close();
          }
        });
      }

      it('exec throws LabError with stderr, allowFailure returns the code, timeouts kill', async () => {
        const l = lab();
        const err = await l.exec('initiator', ['sh', '-c', 'echo oops >&2; exit 3']).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LabError);
        expect((err as LabError).code).toBe('ECOMMAND');
        expect((err as LabError).stderr).toContain('oops');
        const r = await l.exec('initiator', ['sh', '-c', 'exit 3'], { allowFailure: true });
        expect(r.code).toBe(3);
        const input = await l.exec('responder', ['cat'], { input: 'abc' });
        expect(input.stdout).toBe('abc');
        const t = await l.exec('initiator', ['sleep', '10'], { timeoutMs: 200 }).catch((e: unknown) => e);
        expect((t as LabError).code).toBe('ETIMEDOUT');
        await expect(l.exec('somewhere-else', ['true'])).rejects.toThrow(LabError);
      });

      it('refuses an id that is in use', async () => {
        const err = await createLab({ profile: 'clean', id: lab().id }).catch((e: unknown) => e);
        expect((err as LabError).code).toBe('EBUSY');
      });
    });

    withLab('nat', (lab) => {
      for (const f of families) {
        it(`${f.name}: server sees the middlebox right address and a different port`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const c = await tcpClient(l, 'initiator', f.rsp(l), PORT);
            const [peer] = await srv.waitPeers(1);
            expect(peer.address).toBe(f.mbRight(l));
            expect(c.localAddress).toBe(f.ini(l));
            expect(peer.port).not.toBe(c.localPort);
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('nat-keep-port', (lab) => {
      for (const f of families) {
        it(`${f.name}: server sees the middlebox right address and the initiator's own port`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const c = await tcpClient(l, 'initiator', f.rsp(l), PORT);
            const [peer] = await srv.waitPeers(1);
            expect(peer).toMatchObject({ address: f.mbRight(l), port: c.localPort });
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('port-rewrite', (lab) => {
      for (const f of families) {
        it(`${f.name}: server sees the initiator's address with a port from ${PORT_REWRITE_RANGE.join('-')}`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const c = await tcpClient(l, 'initiator', f.rsp(l), PORT);
            expect(c.reply).toBe('pong:ping\n');
            const [peer] = await srv.waitPeers(1);
            expect(peer.address).toBe(f.ini(l));
            expect(peer.port).not.toBe(c.localPort);
            expect(peer.port).toBeGreaterThanOrEqual(PORT_REWRITE_RANGE[0]);
            expect(peer.port).toBeLessThanOrEqual(PORT_REWRITE_RANGE[1]);
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('strip-options', (lab) => {
      it('replaces option kinds 200, 30 (MPTCP) and 34 (TFO) with NOPs', async () => {
        const l = lab();
        await l.exec('initiator', ['sysctl', '-q', '-w', 'net.ipv4.tcp_fastopen=3']);
        await l.exec('responder', ['sysctl', '-q', '-w', 'net.ipv4.tcp_fastopen=3']);
        const srv = await pyTfoServer(l, PORT);
        try {
          const filter = `tcp port ${PORT} and tcp[tcpflags] & tcp-syn != 0`;
          const ini = await capture(l, 'initiator', l.interfaces.initiator, filter);
          const rsp = await capture(l, 'responder', l.interfaces.responder, filter);
          await py(l, 'initiator', PY_CRAFT, ['syn-opts', l.addresses.initiator, l.addresses.responder, PORT]);
          await py(l, 'initiator', PY_CLIENT, [l.addresses.responder, PORT, 262, 0]); // MPTCP
          await py(l, 'initiator', PY_TFO_CLIENT, [l.addresses.responder, PORT, 1]); // TFO cookie request
          const sent = await ini.stop();
          const got = await rsp.stop();
          const syns = (lines: string[]) => lines.filter((x) => x.includes('Flags [S]'));
          expect(syns(sent)[0]).toContain('unknown-200');
          expect(syns(sent)[1]).toContain('mptcp');
          expect(syns(sent)[2]).toContain('tfo  cookiereq');
          expect(syns(got)).toHaveLength(3);
          for (const line of syns(got)) {
            expect(line).not.toMatch(/unknown-200|mptcp|tfo/);
            expect(line).toContain('mss 1460');
          }
          expect(syns(got)[0]).toContain('options [mss 1460,nop,nop,nop,nop]');
        } finally {
          srv.stop();
        }
      });
    });

    withLab('strip-timestamps-sack', (lab) => {
      for (const f of families) {
        it(`${f.name}: SYN and SYN-ACK arrive without TS and sackOK`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const h = await handshake(l, f.rsp(l));
            expect(h.client.reply).toBe('pong:ping\n');
            expect(findSegment(h.ini, 'S')?.line).toMatch(/sackOK,TS val/);
            const syn = findSegment(h.rsp, 'S')?.line;
            const synAck = findSegment(h.ini, 'S.')?.line;
            for (const line of [syn, synAck]) {
              expect(line).toBeDefined();
              expect(line).not.toMatch(/sackOK|TS val/);
              expect(line).toMatch(/wscale/);
            }
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('mss-clamp', (lab) => {
      for (const f of families) {
        it(`${f.name}: responder sees mss 536 in the SYN, initiator in the SYN-ACK`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const h = await handshake(l, f.rsp(l));
            expect(findSegment(h.ini, 'S')?.line).toMatch(/mss 14[46]0/);
            expect(findSegment(h.rsp, 'S')?.line).toContain('mss 536');
            expect(findSegment(h.rsp, 'S.')?.line).toMatch(/mss 14[46]0/);
            expect(findSegment(h.ini, 'S.')?.line).toContain('mss 536');
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('drop-syn-data', (lab) => {
      it('drops TFO SYNs with (even short) data; the client falls back to a plain SYN', async () => {
        const l = lab();
        for (const ns of ['initiator', 'responder']) {
          await l.exec(ns, ['sysctl', '-q', '-w', 'net.ipv4.tcp_fastopen=3', 'net.ipv4.tcp_fastopen_blackhole_timeout_sec=0']);
        }
        const srv = await pyTfoServer(l, PORT);
        try {
          for (const f of families) {
            const before = await nftCounter(l, 'syn_data');
            const rsp = await capture(l, 'responder', l.interfaces.responder, `tcp port ${PORT}`);
            // first connection: cookie request (no data in the SYN); second: data in the SYN
            const replies = await py<string[]>(l, 'initiator', PY_TFO_CLIENT, [f.rsp(l), PORT, 2]);
            const got = await rsp.stop();
            expect(replies).toEqual(['pong', 'pong']);
            const after = await nftCounter(l, 'syn_data');
            expect(after.packets, f.name).toBeGreaterThan(before.packets);
            const syns = got.filter((x) => x.includes('Flags [S]'));
            expect(syns.length).toBeGreaterThanOrEqual(2);
            for (const s of syns) expect(s, f.name).toMatch(/length 0$/);
          }
          // the data still arrived, after the handshake
          expect(srv.lines.map((x) => (JSON.parse(x) as { data: string }).data)).toEqual(['tfo-0\n', 'tfo-1\n', 'tfo-0\n', 'tfo-1\n']);
        } finally {
          srv.stop();
        }
      });
    });

    withLab('synproxy', (lab) => {
      for (const f of families) {
        it(`${f.name}: the SYN-ACK comes from the proxy, data flows`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const h = await handshake(l, f.rsp(l));
            expect(h.client.reply).toBe('pong:ping\n');
            const seen = findSegment(h.ini, 'S.');
            const sent = findSegment(h.rsp, 'S.');
            expect(seen?.seq).toBeDefined();
            expect(sent?.seq).toBeDefined();
            expect(seen?.seq).not.toBe(sent?.seq);
            // SYNPROXY's cookie SYN-ACK advertises a zero window
            expect(seen?.line).toContain('win 0,');
            // the server still sees the initiator (SYNPROXY does not NAT)
            const [peer] = await srv.waitPeers(1);
            expect(peer.address).toBe(f.ini(l));
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('split-proxy', (lab) => {
      for (const f of families) {
        it(`${f.name}: the relay's connection reaches the server; the two handshakes are unrelated`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const h = await handshake(l, f.rsp(l));
            expect(h.client.reply).toBe('pong:ping\n');
            const [peer] = await srv.waitPeers(1);
            expect(peer.address).toBe(f.mbRight(l));
            const clientSyn = findSegment(h.ini, 'S');
            const relaySyn = findSegment(h.rsp, 'S');
            expect(clientSyn?.seq).not.toBe(relaySyn?.seq);
            expect(findSegment(h.ini, 'S.')?.seq).not.toBe(findSegment(h.rsp, 'S.')?.seq);
          } finally {
            srv.close();
          }
        });
      }

      it('relays ports 80 and 443 as well', async () => {
        const l = lab();
        for (const port of [80, 443]) {
          const srv = await echoServer(l, 'responder', port);
          try {
            const c = await tcpClient(l, 'initiator', l.addresses.responder, port, `p${port}`);
            expect(c.reply).toBe(`pong:p${port}\n`);
            expect((await srv.waitPeers(1))[0].address).toBe(l.addresses.middleboxRight);
          } finally {
            srv.close();
          }
        }
      });
    });

    withLab('ecn-dscp-bleach', (lab) => {
      for (const f of families) {
        it(`${f.name}: DSCP, ECN field and ECE/CWR of the SYN are cleared`, async () => {
          const l = lab();
          const { sent, got } = await trafficClassExchange(l, f, capture);
          const sentSyn = findSegment(sent, 'SEW')?.line;
          const sentUdp = sent.find((x) => x.includes('UDP'));
          if (f.name === 'IPv4') {
            expect(sentSyn).toContain('tos 0xb8');
            expect(sentUdp).toContain('tos 0xb9,ECT(1)');
          } else {
            expect(sentSyn).toContain('class 0xb8');
            expect(sentUdp).toContain('class 0xb9');
          }
          const gotSyn = findSegment(got, 'S')?.line;
          expect(gotSyn).toBeDefined();
          expect(got.some((x) => x.includes('Flags [SEW]'))).toBe(false);
          for (const line of got.filter((x) => x.startsWith(f.name === 'IPv4' ? 'IP ' : 'IP6 ') && x.includes(`.${PORT}:`))) {
            if (f.name === 'IPv4') expect(line).toContain('tos 0x0,');
            else expect(line).not.toContain('class');
          }
          // rewritten headers carry valid checksums (offloads are off, so tcpdump checks them)
          expect(got.some((x) => /incorrect/.test(x))).toBe(false);
          expect(gotSyn).toContain('(correct)');
          expect(got.some((x) => x.includes('UDP'))).toBe(true);
        });
      }
    });

    withLab('stateful-firewall', (lab) => {
      it('forwards proper connections, drops out-of-window segments, unseen ACKs (also a small ack hole) and stray ACKs', async () => {
        const l = lab();
        const srv = await echoServer(l, 'responder', PORT);
        try {
          const c = await tcpClient(l, 'initiator', l.addresses.responder6, PORT);
          expect(c.reply).toBe('pong:ping\n');
          const before = await nftCounter(l, 'invalid');
          const rsp = await capture(l, 'responder', l.interfaces.responder, `tcp port ${PORT}`);
          const r = await py<{ sport: number; reply: string }>(l, 'initiator', PY_CRAFT, [
            'invalid',
            l.addresses.initiator,
            l.addresses.responder,
            PORT,
            l.interfaces.initiator,
          ]);
          const got = await rsp.stop();
          expect(r.reply).toBe('pong:ping\n');
          const after = await nftCounter(l, 'invalid');
          expect(after.packets - before.packets).toBe(4);
          expect(got.some((x) => x.includes('.40001 >'))).toBe(false);
          // the two injected segments of the real connection (recognisable by their window) never arrive
          expect(got.filter((x) => x.includes(`.${r.sport} >`) && x.includes('win 64240,') && !x.includes('Flags [S'))).toHaveLength(0);
        } finally {
          srv.close();
        }
      });

      it('does not forward a connection that does not start with a SYN (no loose pickup)', async () => {
        const l = lab();
        const sysctl = await l.exec('middlebox', ['sysctl', '-n', 'net.netfilter.nf_conntrack_tcp_loose']);
        expect(sysctl.stdout.trim()).toBe('0');
      });
    });

    withLab('strip-syn-options', (lab) => {
      for (const f of families) {
        it(`${f.name}: SYN and SYN-ACK arrive without MSS and window scale, the connection still works`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const h = await handshake(l, f.rsp(l));
            expect(h.client.reply).toBe('pong:ping\n');
            expect(findSegment(h.ini, 'S')?.line).toMatch(/mss 14[46]0,.*wscale/);
            // the server offers no window scale itself: it never saw one in the SYN
            expect(findSegment(h.rsp, 'S.')?.line).toMatch(/options \[mss 14[46]0,sackOK,TS val \d+ ecr \d+\]/);
            for (const line of [findSegment(h.rsp, 'S')?.line, findSegment(h.ini, 'S.')?.line]) {
              expect(line).toBeDefined();
              expect(line).not.toMatch(/mss|wscale/);
              expect(line).toMatch(/sackOK,TS val/);
            }
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('dscp-ecn-remark', (lab) => {
      for (const f of families) {
        it(`${f.name}: DSCP EF arrives as CS1, ECT(0) as ECT(1), DSCP 0 stays 0, checksums stay right`, async () => {
          const l = lab();
          const { sent, got } = await trafficClassExchange(l, f, wireCapture);
          const tc = (p: DecodedPacket | undefined) => (p?.ip ? trafficClassOf(p.ip) : undefined);
          const pick = (ps: DecodedPacket[], from: string) => {
            const mine = ps.filter((p) => p.ip?.src === from);
            return {
              syn: mine.find((p) => p.tcp && p.tcp.flags & TcpFlag.SYN),
              data: mine.find((p) => p.tcp && p.payload.length > 0),
              udp: mine.find((p) => !p.tcp),
            };
          };
          // sent: DSCP 46 (EF) everywhere; the SYN not-ECT, the data ECT(0) (ECN negotiated), the datagram ECT(1)
          const s = pick(sent, f.ini(l));
          expect([tc(s.syn), tc(s.data), tc(s.udp)]).toEqual([0xb8, 0xba, 0xb9]);
          const g = pick(got, f.ini(l));
          expect([tc(g.syn), tc(g.data), tc(g.udp)]).toEqual([0x20, 0x21, 0x21]);
          // the responder's packets (DSCP 0): ECT(0) becomes ECT(1), DSCP stays 0
          const back = pick(sent, f.rsp(l));
          expect(tc(back.data)).toBe(0x01);
          for (const p of got) {
            if (p.ip?.version === 4) expect(p.checksums.ip).toBe(true);
            if (p.tcp) expect(p.checksums.tcp).toBe(true);
          }
        });
      }
    });

    withLab('resegmenting-proxy', (lab) => {
      for (const f of families) {
        it(`${f.name}: a 1400-byte segment reaches the server in pieces of at most ${RESEGMENT_MSS} bytes, five small ones coalesced`, async () => {
          const l = lab();
          const srv = await pyServer(l, PY_SLOW_ACK_SERVER, PORT);
          try {
            const ini = await wireCapture(l, 'initiator', l.interfaces.initiator, `tcp port ${PORT}`);
            const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp port ${PORT}`);
            await py(l, 'initiator', PY_BURST_CLIENT, [f.rsp(l), PORT]);
            await until(() => srv.lines.length > 0, 'the server read everything');
            expect(JSON.parse(srv.lines[0])).toEqual({ bytes: 1650 });
            const lengths = (ps: DecodedPacket[], from: string) => ps.filter((p) => p.ip?.src === from && p.payload.length > 0).map((p) => p.payload.length);
            // the premise: the client really sent one big and five small segments
            expect(lengths(await ini.stop(), f.ini(l))).toEqual([1400, 50, 50, 50, 50, 50]);
            const got = lengths(await rsp.stop(), f.mbRight(l));
            expect(got.reduce((a, b) => a + b, 0)).toBe(1650);
            expect(Math.max(...got)).toBeLessThanOrEqual(RESEGMENT_MSS);
            let at = 0;
            const big = got.filter((n) => (at += n) <= 1400);
            expect(big.length).toBeGreaterThanOrEqual(3);
            expect(got.length - big.length).toBeLessThan(5);
          } finally {
            srv.stop();
          }
        });
      }
    });

    /** the rewriter is up: a real connection works, and the originals were dropped in FORWARD */
    const rewriterWorks = (lab: () => Lab) => {
      it('a real connection works over both families; the originals are dropped in FORWARD', async () => {
        const l = lab();
        const srv = await echoServer(l, 'responder', PORT);
        try {
          for (const f of families) expect((await tcpClient(l, 'initiator', f.rsp(l), PORT, f.name)).reply).toBe(`pong:${f.name}\n`);
          expect((await nftCounter(l, 'diverted')).packets).toBeGreaterThan(10);
        } finally {
          srv.close();
        }
      });
    };
    /** the hand-made segments (wirekit's segment() writes window 1000), not the kernels' RSTs answering them */
    const crafted = (ps: DecodedPacket[]) => ps.filter((p) => p.tcp?.window === 1000);

    withLab('rewrite-isn-forward', (lab) => {
      for (const f of families) {
        it(`${f.name}: the initiator's sequence numbers arrive shifted by 0x01000000, the responder's acks shifted back; TTL decremented`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const h = await handshake(l, f.rsp(l));
            expect(h.client.reply).toBe('pong:ping\n');
            const syn = { sent: findSegment(h.ini, 'S')!, got: findSegment(h.rsp, 'S')! };
            const synAck = { sent: findSegment(h.rsp, 'S.')!, got: findSegment(h.ini, 'S.')! };
            expect(syn.got.seq).toBe((syn.sent.seq! + ISN_SHIFT) >>> 0);
            expect(synAck.sent.ack).toBe((syn.got.seq! + 1) >>> 0);
            expect(synAck.got.ack).toBe((syn.sent.seq! + 1) >>> 0);
            expect(synAck.got.seq).toBe(synAck.sent.seq);
            expect(syn.got.line).toMatch(f.family === 4 ? /ttl 63,/ : /hlim 63,/);
          } finally {
            srv.close();
          }
        });
      }
      rewriterWorks(lab);
    });

    for (const translates of [false, true]) {
      withLab(translates ? 'rewrite-isn-reverse-sack' : 'rewrite-isn-reverse', (lab) => {
        for (const f of families) {
          it(`${f.name}: the responder's sequence numbers arrive shifted by 0x01000000, the initiator's acks shifted back`, async () => {
            const l = lab();
            const srv = await echoServer(l, 'responder', PORT);
            try {
              const h = await handshake(l, f.rsp(l));
              expect(h.client.reply).toBe('pong:ping\n');
              const syn = { sent: findSegment(h.ini, 'S')!, got: findSegment(h.rsp, 'S')! };
              const synAck = { sent: findSegment(h.rsp, 'S.')!, got: findSegment(h.ini, 'S.')! };
              const ack = { sent: findSegment(h.ini, '.')!, got: findSegment(h.rsp, '.')! };
              expect(syn.got.seq).toBe(syn.sent.seq);
              expect(synAck.got.seq).toBe((synAck.sent.seq! + ISN_SHIFT) >>> 0);
              expect(ack.sent.ack).toBe((synAck.got.seq! + 1) >>> 0);
              expect(ack.got.ack).toBe((synAck.sent.seq! + 1) >>> 0);
              expect(synAck.got.line).toMatch(f.family === 4 ? /ttl 63,/ : /hlim 63,/);
            } finally {
              srv.close();
            }
          });

          it(`${f.name}: SACK blocks of the initiator arrive ${translates ? 'translated back like its ack' : 'untranslated'}`, async () => {
            const l = lab();
            const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp dst port ${PORT} and src port 40123`);
            const block: [number, number] = [0x05001000, 0x05002000];
            await sendPackets(l, 'initiator', [
              segment(l, f.family, 'initiator', { srcPort: 40123, dstPort: PORT, seq: 1000, ack: 0x05000000, options: [nop(), nop(), sack([block])] }),
            ]);
            const [p, ...more] = crafted(await rsp.stop({ atLeast: 1 }));
            expect(more).toHaveLength(0);
            expect(p.checksums.tcp).toBe(true);
            expect(ttlOf(p)).toBe(63);
            expect([p.tcp!.seq, p.tcp!.ack]).toEqual([1000, 0x05000000 - ISN_SHIFT]);
            const shift = translates ? ISN_SHIFT : 0;
            expect(viewOption(findOption(p.tcp!.options, OptionKind.SACK)!)).toEqual({ type: 'sack', blocks: [block.map((e) => e - shift)] });
          });
        }
        rewriterWorks(lab);
      });
    }

    withLab('rewrite-options', (lab) => {
      for (const f of families) {
        it(`${f.name}: MSS, window scale, MPTCP, TFO, SACK-permitted and kind 200 arrive modified both ways, the initiator's timestamps offset`, async () => {
          const l = lab();
          const text = (t: string) => Uint8Array.from(Buffer.from(t));
          const inverted = (t: string) => text(t).map((b) => b ^ 0xff);
          const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp dst port ${PORT} and src port 40124`);
          const ini = await wireCapture(l, 'initiator', l.interfaces.initiator, `tcp src port ${PORT} and dst port 40124`);
          const from = (side: 'initiator' | 'responder', tcp: Parameters<typeof segment>[3], payload?: Uint8Array) => segment(l, f.family, side, tcp, payload);
          const ports = { srcPort: 40124, dstPort: PORT };
          await sendPackets(l, 'initiator', [
            from('initiator', { ...ports, seq: 1, flags: TcpFlag.SYN, options: [mss(1460), windowScale(7), timestamps(1000, 0), rawOption(200, text('mbprob'))] }),
            from('initiator', { ...ports, seq: 2, flags: TcpFlag.SYN, options: [mptcpCapable(), fastOpen(), sackPermitted()] }),
            from('initiator', { ...ports, seq: 3, flags: TcpFlag.SYN, options: [nop(), nop(), fastOpen(text('cookie42'))] }),
            from('initiator', { ...ports, seq: 4, ack: 78, flags: TcpFlag.ACK | TcpFlag.PSH, options: [timestamps(5000, 7000), rawOption(200, text('dataop'))] }, text('data')),
          ]);
          await sendPackets(l, 'responder', [
            from('responder', { srcPort: PORT, dstPort: 40124, seq: 77, ack: 2, flags: TcpFlag.SYN | TcpFlag.ACK, options: [mss(1460), timestamps(3000, 1000 + TS_SHIFT), rawOption(200, text('rspond'))] }),
          ]);
          const got = crafted(await rsp.stop({ atLeast: 4 }));
          const back = crafted(await ini.stop({ atLeast: 1 }));
          expect(got.map((p) => p.tcp!.seq)).toEqual([1, 2, 3, 4]);
          expect(back).toHaveLength(1);
          for (const p of [...got, ...back]) expect(p.checksums.tcp).toBe(true);
          const options = (p: DecodedPacket) => (p.tcp!.options ?? []).filter((o) => o.kind > 1).map((o) => viewOption(o));
          expect(options(got[0])).toEqual([
            { type: 'mss', mss: 1400 },
            { type: 'window-scale', shift: 6 },
            { type: 'timestamps', value: 1000 + TS_SHIFT, echo: 0 },
            { type: 'unknown', kind: 200, data: inverted('mbprob') },
          ]);
          expect(options(got[1])).toEqual([
            expect.objectContaining({ type: 'mptcp', mpCapable: { version: 1, flags: 0x81 ^ 0x20 } }),
            { type: 'tfo', cookie: text('mbpr') },
            // SACK-permitted has no content: the rewriter gives it two bytes, a length its kind does not allow
            expect.objectContaining({ type: 'malformed', kind: 4 }),
          ]);
          expect(options(got[2])).toEqual([{ type: 'tfo', cookie: inverted('cookie42') }]);
          expect(options(got[3])).toEqual([{ type: 'timestamps', value: 5000 + TS_SHIFT, echo: 7000 }, { type: 'unknown', kind: 200, data: inverted('dataop') }]);
          expect(Buffer.from(got[3].payload).toString()).toBe('data');
          // the initiator's clock is offset, the responder's is not (its echo of the initiator's is shifted back)
          expect(options(back[0])).toEqual([
            { type: 'mss', mss: 1400 },
            { type: 'timestamps', value: 3000, echo: 1000 },
            { type: 'unknown', kind: 200, data: inverted('rspond') },
          ]);
        });
      }
      rewriterWorks(lab);
    });

    withLab('rewrite-window', (lab) => {
      for (const f of families) {
        it(`${f.name}: every segment arrives with window ${FIXED_WINDOW}, both ways`, async () => {
          const l = lab();
          const srv = await echoServer(l, 'responder', PORT);
          try {
            const ini = await wireCapture(l, 'initiator', l.interfaces.initiator, `tcp port ${PORT}`);
            const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp port ${PORT}`);
            expect((await tcpClient(l, 'initiator', f.rsp(l), PORT)).reply).toBe('pong:ping\n');
            const atIni = await ini.stop();
            const atRsp = await rsp.stop();
            for (const [sent, got, from] of [[atIni, atRsp, f.ini(l)], [atRsp, atIni, f.rsp(l)]] as const) {
              const windows = (ps: readonly DecodedPacket[]) => ps.filter((p) => p.ip?.src === from).map((p) => p.tcp!.window);
              expect(windows(sent).length).toBeGreaterThanOrEqual(4);
              expect(windows(sent).every((w) => w !== FIXED_WINDOW)).toBe(true);
              expect(windows(got).length).toBeGreaterThanOrEqual(4);
              expect(windows(got).length).toBeLessThanOrEqual(windows(sent).length);
              expect(windows(got).every((w) => w === FIXED_WINDOW)).toBe(true);
            }
          } finally {
            srv.close();
          }
        });
      }
    });

    withLab('rewrite-clear-urg', (lab) => {
      for (const f of families) {
        it(`${f.name}: URG, the urgent pointer, the reserved bits and AE are cleared both ways; ECE, payload and checksum stay right`, async () => {
          const l = lab();
          const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp dst port ${PORT} and src port 40125`);
          const ini = await wireCapture(l, 'initiator', l.interfaces.initiator, `tcp src port ${PORT} and dst port 40125`);
          const urgent = { flags: TcpFlag.ACK | TcpFlag.PSH | TcpFlag.URG | TcpFlag.AE | TcpFlag.ECE, urgentPointer: 3, reserved: 5, seq: 100, ack: 200 };
          const payload = Uint8Array.from(Buffer.from('urgent!'));
          await sendPackets(l, 'initiator', [segment(l, f.family, 'initiator', { srcPort: 40125, dstPort: PORT, ...urgent }, payload)]);
          await sendPackets(l, 'responder', [segment(l, f.family, 'responder', { srcPort: PORT, dstPort: 40125, ...urgent }, payload)]);
          const got = [...crafted(await rsp.stop({ atLeast: 1 })), ...crafted(await ini.stop({ atLeast: 1 }))];
          expect(got).toHaveLength(2);
          for (const p of got) {
            expect(p.tcp).toMatchObject({ flags: TcpFlag.ACK | TcpFlag.PSH | TcpFlag.ECE, urgentPointer: 0, reserved: 0, seq: 100, ack: 200 });
            expect(p.payload).toEqual(payload);
            expect(p.checksums.tcp).toBe(true);
            expect(ttlOf(p)).toBe(63);
          }
        });
      }
      rewriterWorks(lab);
    });

    withLab('normalizer', (lab) => {
      for (const f of families) {
        it(`${f.name}: an ACK of unsent data is lowered to what the responder sent; a retransmission carries the first bytes`, async () => {
          const l = lab();
          const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp dst port ${PORT} and src port 40126`);
          const text = (t: string) => Uint8Array.from(Buffer.from(t));
          const ini = (tcp: { seq: number; ack: number; flags?: number }, data = '') =>
            segment(l, f.family, 'initiator', { srcPort: 40126, dstPort: PORT, ...tcp }, text(data));
          // the responder has sent 10 bytes: 70000..70010
          await sendPackets(l, 'responder', [
            segment(l, f.family, 'responder', { srcPort: PORT, dstPort: 40126, seq: 70000, ack: 9000, flags: TcpFlag.ACK | TcpFlag.PSH, window: 4242 }, text('responder!')),
          ]);
          const push = TcpFlag.ACK | TcpFlag.PSH;
          await sendPackets(l, 'initiator', [
            ini({ seq: 9000, ack: 71000 }),
            ini({ seq: 9000, ack: 70005 }),
            ini({ seq: 9000, ack: 70010, flags: push }, 'AAAAAAAA'),
            ini({ seq: 9000, ack: 70010, flags: push }, 'BBBBBBBB'),
            ini({ seq: 9004, ack: 70010, flags: push }, 'CCCCCCCC'),
          ]);
          const got = crafted(await rsp.stop({ atLeast: 5 }));
          expect(got.map((p) => [p.tcp!.seq, p.tcp!.ack, Buffer.from(p.payload).toString()])).toEqual([
            [9000, 70010, ''],
            [9000, 70005, ''],
            [9000, 70010, 'AAAAAAAA'],
            [9000, 70010, 'AAAAAAAA'],
            [9004, 70010, 'AAAACCCC'],
          ]);
          for (const p of got) expect(p.checksums.tcp).toBe(true);
        });
      }
      rewriterWorks(lab);
    });

    withLab('resizing-normalizer', (lab) => {
      for (const f of families) {
        it(`${f.name}: a longer retransmission arrives cut to the original length, with its own bytes`, async () => {
          const l = lab();
          const rsp = await wireCapture(l, 'responder', l.interfaces.responder, `tcp dst port ${PORT} and src port 40127`);
          const push = TcpFlag.ACK | TcpFlag.PSH;
          const data = (seq: number, text: string) => segment(l, f.family, 'initiator', { srcPort: 40127, dstPort: PORT, seq, ack: 1, flags: push }, Uint8Array.from(Buffer.from(text)));
          await sendPackets(l, 'initiator', [data(5000, 'A'.repeat(10)), data(5000, 'B'.repeat(15)), data(5000, 'C'.repeat(5)), data(5010, 'D'.repeat(20))]);
          const got = crafted(await rsp.stop({ atLeast: 4 }));
          expect(got.map((p) => [p.tcp!.seq, Buffer.from(p.payload).toString()])).toEqual([
            [5000, 'A'.repeat(10)],
            [5000, 'B'.repeat(10)],
            [5000, 'C'.repeat(5)],
            [5010, 'D'.repeat(20)],
          ]);
          for (const p of got) expect(p.checksums.tcp).toBe(true);
        });
      }
      rewriterWorks(lab);
    });

    describe.sequential('lifecycle', () => {
      it('every profile builds and is torn down completely', async () => {
        for (const name of Object.keys(PROFILES)) {
          const lab = await createLab({ profile: name });
          const names = Object.values(lab.namespaces);
          try {
            for (const n of names) expect(existsSync(`/run/netns/${n}`)).toBe(true);
            expect(PROFILES[name].description.length).toBeGreaterThan(20);
          } finally {
            await lab.destroy();
            await lab.destroy(); // idempotent
          }
          for (const n of names) expect(existsSync(`/run/netns/${n}`)).toBe(false);
          expect(existsSync(`${LAB_RUN_DIR}/${lab.id}.pid`)).toBe(false);
          expect(() => lab.spawn('initiator', ['true'])).toThrow(LabError);
        }
      });

      it('removeStaleLabs removes a lab whose creator is dead (pid file with a dead pid) and kills its processes', async () => {
        const lab = await createLab({ profile: 'clean' });
        try {
          const sleeper = lab.spawn('initiator', ['sleep', '600'], { stdio: 'ignore' });
          await new Promise((r) => setTimeout(r, 100));
          // a pid that certainly is dead: a child that has exited
          const dead = spawn('true');
          const deadPid = dead.pid;
          await new Promise((r) => dead.once('exit', r));
          writeFileSync(`${LAB_RUN_DIR}/${lab.id}.pid`, `${deadPid}\n`);
          expect(listLabs().find((x) => x.id === lab.id)?.state).toBe('stale');
          const names = Object.values(lab.namespaces);
          const removed = await removeStaleLabs();
          expect(removed).toEqual(expect.arrayContaining(names));
          for (const n of names) expect(existsSync(`/run/netns/${n}`)).toBe(false);
          expect(existsSync(`${LAB_RUN_DIR}/${lab.id}.pid`)).toBe(false);
          await new Promise((r) => (sleeper.exitCode !== null || sleeper.signalCode !== null ? r(null) : sleeper.once('exit', r)));
          expect(sleeper.signalCode).toBe('SIGKILL');
        } finally {
          await lab.destroy();
        }
      });

      describe.sequential('compiled module', () => {
        // What scripts/lab and other programs run: the lab as compiled by `npm run build`.
        const dir = join(REPO, 'dist', 'lab');
        beforeAll(() => {
          if (!existsSync(join(dir, 'index.js'))) throw new Error(`${dir} is not built: run npm run build`);
        });

        it('removeStaleLabs cleans up after a SIGKILLed creator (namespaces, relay, leftover processes)', async () => {
          const script = `
            import { createLab } from ${JSON.stringify(join(dir, 'index.js'))};
            const lab = await createLab({ profile: 'split-proxy' });
            const sleeper = lab.spawn('initiator', ['sleep', '600'], { stdio: 'ignore', detached: true });
            setTimeout(() => console.log(JSON.stringify({ id: lab.id, sleeper: sleeper.pid })), 100);
            setInterval(() => {}, 1000);`;
          const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
          let info: { id: number; sleeper: number } | undefined;
          try {
            info = await new Promise<{ id: number; sleeper: number }>((resolve, reject) => {
              let out = '';
              let err = '';
              child.stdout?.on('data', (d: Buffer) => {
                out += d.toString();
                if (out.includes('\n')) resolve(JSON.parse(out) as { id: number; sleeper: number });
              });
              child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
              child.once('exit', (code) => reject(new Error(`creator exited ${code}: ${err}`)));
            });
          } catch (e) {
            child.kill('SIGKILL');
            throw e;
          }
          child.kill('SIGKILL');
          await new Promise((r) => child.once('exit', r));
          const names = Object.values(labNamespaces(info.id));
          try {
            // (another process creating a lab at this moment may already have reaped it)
            const state = listLabs().find((x) => x.id === info.id)?.state;
            if (state !== undefined) expect(state).toBe('stale');
            const present = names.filter((n) => existsSync(`/run/netns/${n}`));
            const removed = await removeStaleLabs();
            expect(removed).toEqual(expect.arrayContaining(present));
            for (const n of names) expect(existsSync(`/run/netns/${n}`)).toBe(false);
            await new Promise((r) => setTimeout(r, 100));
            // killed: gone, or a zombie waiting for its new parent to reap it
            expect(processAlive(info.sleeper)).toBe(false);
          } finally {
            await removeStaleLabs();
          }
        });

        it('scripts/lab up / list / down', async () => {
          const env = { ...process.env, MBPROBE_LAB_CLI: join(dir, 'cli.js') };
          const runLab = (args: string[]) =>
            new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
              const c = spawn(join(REPO, 'scripts', 'lab'), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
              let stdout = '';
              let stderr = '';
              c.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
              c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
              c.once('close', (code) => resolve({ code, stdout, stderr }));
            });
          const up = await runLab(['up', 'split-proxy', '--json']);
          expect(up.code, up.stderr).toBe(0);
          const info = JSON.parse(up.stdout) as { id: number; namespaces: Lab['namespaces']; addresses: Lab['addresses'] };
          try {
            // the lab (and its relay) outlive the CLI process and are not stale
            expect(await removeStaleLabs()).not.toEqual(expect.arrayContaining([info.namespaces.middlebox]));
            const list = await runLab(['list']);
            expect(list.stdout).toContain('split-proxy');
            expect(list.stdout).toMatch(new RegExp(`^\\s+${info.id}\\s+split-proxy\\s+persistent`, 'm'));
            const ss = await new Promise<string>((resolve) => {
              const c = spawn('ss', ['-N', info.namespaces.middlebox, '-Hltn'], { stdio: ['ignore', 'pipe', 'ignore'] });
              let out = '';
              c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
              c.once('close', () => resolve(out));
            });
            expect(ss).toContain(':41000');
          } finally {
            const down = await runLab(['down', String(info.id)]);
            expect(down.code, down.stderr).toBe(0);
            expect(down.stdout).toContain(info.namespaces.middlebox);
          }
          for (const n of Object.values(info.namespaces)) expect(existsSync(`/run/netns/${n}`)).toBe(false);
        });
      });
    });
  });
});
