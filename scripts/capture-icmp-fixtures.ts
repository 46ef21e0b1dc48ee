/**
 * Captures real ICMP and ICMPv6 errors in a multi-hop lab and writes them to
 * test/fixtures/icmp-errors.txt (the wire layer's ICMP tests and their tshark cross-check):
 *
 *   initiator — hop 1 (Linux router) — hop 2 (Linux, strip-options middlebox) — hop 3 (quoter daemon:
 *   the IP header and 8 bytes, RFC 792) — hop 4 (quoter daemon: 128 bytes and an RFC 4884 MPLS label
 *   stack, RFC 4950) — responder
 *
 * From the initiator's namespace it sends crafted TCP segments with TTL / hop limit 1 to 4 (a SYN with
 * options, a data segment, a large data segment Linux cuts to fit its errors, an ECN/DSCP-marked one),
 * captures the errors with tcpdump on the initiator's link, and writes each with its `tcpdump -nn -v`
 * line (joined into one) above its hex, as scripts/capture-fixtures.sh does for TCP.
 *
 *   sudo node dist/scripts/capture-icmp-fixtures.js [output-file]
 */
import { writeFileSync, renameSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';
import { openRawSender } from '../shared/net/raw-send.js';
import { encodePacket, type IpHeader } from '../shared/wire/packet.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import { mss, nop, rawOption, sackPermitted, timestamps, windowScale } from '../shared/wire/tcp-options.js';
import { toHex } from '../shared/wire/bytes.js';
import { decodeIcmpError } from '../shared/wire/icmp-packet.js';

const HOPS = 4;

/** The probes: name, and the segment for a TTL (the initiator's namespace sends them; the tests rebuild them to compare quotes). */
export function fixtureProbes(src: string, dst: string, ttl: number): Array<{ name: string; bytes: Uint8Array }> {
  const v6 = src.includes(':');
  const ip = (tos: number, id: number): IpHeader => (v6
    ? { version: 6, trafficClass: tos, flowLabel: 0x1000 + id, hopLimit: ttl, protocol: 6, src, dst }
    : { version: 4, tos, id: 0x1000 + id, flags: 2, fragmentOffset: 0, ttl, protocol: 6, src, dst });
  const base = 40000 + ttl * 10;
  const out = [
    {
      name: 'syn-options',
      bytes: encodePacket({
        ip: ip(0, ttl),
        tcp: { srcPort: base + 1, dstPort: 34343, seq: 0x6d620000 + ttl, ack: 0, flags: TcpFlag.SYN, window: 64240, options: [mss(1460), sackPermitted(), timestamps(1000 + ttl, 0), nop(), windowScale(7), rawOption(200, Uint8Array.of(0x6d, 0x62, 0x70, 0x72, 0x6f, 0x62))] },
        payload: new Uint8Array(0),
      }),
    },
    {
      name: 'data',
      bytes: encodePacket({ ip: ip(0, 0x10 + ttl), tcp: { srcPort: base + 2, dstPort: 34343, seq: 0x6d630000, ack: 0x11223344, flags: TcpFlag.ACK | TcpFlag.PSH, window: 502 }, payload: new Uint8Array(100).map((_, i) => 0x41 + (i % 26)) }),
    },
  ];
  if (ttl === 1) {
    out.push(
      { name: 'large', bytes: encodePacket({ ip: ip(0, 0x20), tcp: { srcPort: base + 3, dstPort: 34343, seq: 0x6d640000, ack: 0x11223344, flags: TcpFlag.ACK, window: 502 }, payload: new Uint8Array(1400).map((_, i) => i & 0xff) }) },
      { name: 'ecn-dscp', bytes: encodePacket({ ip: ip((46 << 2) | 2, 0x30), tcp: { srcPort: base + 4, dstPort: 34343, seq: 0x6d650000, ack: 0x11223344, flags: TcpFlag.ACK | TcpFlag.PSH, window: 502 }, payload: new Uint8Array(20).fill(0x6d) }) },
    );
  }
  return out;
}

/** In the initiator's namespace: send every probe, each TTL, both families, a little apart. */
async function send(addresses: { v4: [string, string]; v6: [string, string] }): Promise<void> {
  for (const family of [4, 6] as const) {
    const sender = openRawSender({ family });
    const [src, dst] = family === 4 ? addresses.v4 : addresses.v6;
    for (let ttl = 1; ttl <= HOPS; ttl++) {
      for (const p of fixtureProbes(src, dst, ttl)) {
        await sender.send(p.bytes);
        // The first packet waits for neighbour discovery; the others follow it in order.
        await new Promise((r) => setTimeout(r, ttl === 1 && p.name === 'syn-options' ? 300 : 20));
      }
    }
    sender.close();
  }
}

/**
 * The packets of `tcpdump -nn -v -t -x` output: each packet's description (its lines joined into one)
 * and its bytes (the hex dump, the IP packet without the link header).
 */
function parseTcpdump(text: string): Array<{ line: string; bytes: Uint8Array }> {
  const packets: Array<{ line: string; hex: string }> = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const dump = /^\s+0x[0-9a-f]{4}:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(raw);
    if (dump && packets.length > 0) packets[packets.length - 1].hex += dump[1].replace(/\s/g, '');
    else if (/^\s/.test(raw) && packets.length > 0) packets[packets.length - 1].line += ` ${raw.trim()}`;
    else packets.push({ line: raw.trim(), hex: '' });
  }
  return packets.map((p) => ({ line: p.line, bytes: new Uint8Array(Buffer.from(p.hex, 'hex')) }));
}

async function capture(out: string): Promise<void> {
  const { createLab } = await import('../lab/index.js');
  const lab = await createLab({ profile: 'strip-options', hops: `${HOPS},middlebox=2,short-quote=3,mpls=4` });
  try {
    // Text with the hex dump (tcpdump -w wrote nothing here when the packets came right after it started).
    const tcpdump = lab.spawn(lab.namespaces.initiator, ['tcpdump', '-i', lab.interfaces.initiator, '-s', '0', '-l', '-nn', '-v', '-t', '-x', 'icmp or icmp6'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    tcpdump.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let err = '';
      tcpdump.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('listening on')) resolve();
      });
      tcpdump.once('exit', (code) => reject(new Error(`tcpdump exited with ${code}: ${err}`)));
    });
    const a = lab.addresses;
    await lab.exec(lab.namespaces.initiator, [process.execPath, fileURLToPath(import.meta.url), '--send', JSON.stringify({ v4: [a.initiator, a.responder], v6: [a.initiator6, a.responder6] })], { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1000));
    await new Promise<void>((resolve) => {
      tcpdump.once('close', () => resolve());
      tcpdump.kill('SIGINT');
    });
    const packets = parseTcpdump(text);
    const blocks: string[] = [];
    const hopOf = new Map(lab.path!.flatMap((h) => [[h.left.address, h.hop], [h.left.address6, h.hop]] as const));
    const style = (hop: number): string => (hop === 3 ? 'short' : hop === 4 ? 'mpls' : 'linux');
    for (const { line, bytes } of packets) {
      const error = decodeIcmpError(bytes);
      if (!error || error.kind !== 'time-exceeded') continue;
      const hop = hopOf.get(error.ip.src);
      const sport = error.quote.packet.tcp?.srcPort ?? error.quote.tcpPrefix?.srcPort ?? 0;
      const kind = ['', 'syn-options', 'data', 'large', 'ecn-dscp'][sport % 10];
      const name = `v${error.ip.version}-${kind}-hop${hop}-${style(hop ?? 0)}`;
      const hex = toHex(bytes).match(/.{1,64}/g)!.join('\n');
      blocks.push(`## ${name}\n# ${line}\n${hex}`);
    }
    const version = execFileSync('tcpdump', ['--version'], { encoding: 'utf8' }).split('\n')[0];
    const header = [
      '# mbprobe fixture corpus: real ICMP and ICMPv6 time-exceeded errors captured in a multi-hop lab by scripts/capture-icmp-fixtures.ts',
      `# kernel ${release()}, ${version}; path: initiator - hop 1 (Linux router) - hop 2 (Linux, the strip-options middlebox) -`,
      '# hop 3 (lab/daemons/quoter.ts: the IP header and 8 bytes, RFC 792) - hop 4 (quoter: 128 bytes and an RFC 4884 MPLS label stack) - responder',
      `# ${blocks.length} segments; each block is the whole IP packet of one error (no Ethernet header), exactly as captured on the initiator's link;`,
      '# the name says the family, the probe it quotes (a SYN with options, a 100-byte data segment, a 1400-byte one, an ECN/DSCP-marked one), and the hop;',
      '# tcpdump judges the TCP checksum of a quote cut short too ("incorrect"): the quote lacks bytes the checksum covers',
    ];
    writeFileSync(`${out}.tmp`, `${header.join('\n')}\n\n${blocks.join('\n\n')}\n`);
    renameSync(`${out}.tmp`, out);
    process.stderr.write(`capture-icmp-fixtures: ${blocks.length} errors written to ${out}\n`);
  } finally {
    await lab.destroy();
  }
}

/** Run as a program, not when the tests import fixtureProbes. */
const argv = process.argv.slice(2);
const asProgram = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (asProgram && argv[0] === '--send') {
  await send(JSON.parse(argv[1]) as { v4: [string, string]; v6: [string, string] });
} else if (asProgram) {
  if (process.getuid?.() !== 0) {
    process.stderr.write('capture-icmp-fixtures: must be run as root (a lab of network namespaces, tcpdump)\n');
    process.exit(2);
  }
  const out = argv[0] ?? join(fileURLToPath(new URL('../..', import.meta.url)), 'test/fixtures/icmp-errors.txt');
  await capture(out);
}
