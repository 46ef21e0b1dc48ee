/**
 * A router that quotes less than Linux does, for the hops of a multi-hop lab path that imitate other
 * routers: Linux quotes as much of an expired packet as fits in 576 bytes (IPv4) or 1280 (IPv6),
 * many routers only the IP header and 8 bytes (RFC 792), and MPLS routers 128 bytes followed by an
 * RFC 4884 extension with the label stack (RFC 4950). Run in the hop's namespace:
 *
 *   node dist/lab/daemons/quoter.js --iface hop-left --source4 A --source6 B --mark N
 *                                   (--quote-tcp-bytes 8 | --mpls LABEL) [--exit-on-stdin-end]
 *
 * It captures the packets arriving on the hop's left side whose TTL / hop limit runs out here
 * (1 or 0), and answers each with an ICMP / ICMPv6 time exceeded from the hop's left address,
 * marked so that the hop's nftables rule (lab/topology.ts) drops only the kernel's own errors.
 * Prints `ready` once its capture is open.
 */
import { readFileSync } from 'node:fs';
import { openCapture } from '../../shared/net/capture.js';
import { openRawSender, type PacketSink } from '../../shared/net/raw-send.js';
import { ipv4ToString, ipv6ToString } from '../../shared/wire/address.js';
import { mplsLabelStack } from '../../shared/wire/icmp-extensions.js';
import { IcmpType } from '../../shared/wire/icmp.js';
import { Icmpv6Type } from '../../shared/wire/icmpv6.js';
import { encodeIcmpPacket } from '../../shared/wire/icmp-packet.js';
import { argValue, runDaemon, type Stop } from './lifecycle.js';

/** How the hop quotes: the IP header and this many bytes after it, or MPLS (128 bytes, padded, and the label stack). */
export type QuoteStyle = { tcpBytes: number } | { mplsLabel: number };

/** The ICMP error the hop sends for an expired packet (undefined: not IP, or its TTL has not run out). */
export function timeExceeded(packet: Uint8Array, source: { 4: string; 6: string }, style: QuoteStyle): Uint8Array | undefined {
  const version = packet.length > 0 ? packet[0] >>> 4 : 0;
  if (!((version === 4 && packet.length >= 20) || (version === 6 && packet.length >= 40))) return undefined;
  const ttl = version === 4 ? packet[8] : packet[7];
  if (ttl > 1) return undefined;
  const headerLength = version === 4 ? (packet[0] & 0x0f) * 4 : 40;
  const quoted = 'tcpBytes' in style ? packet.slice(0, Math.min(packet.length, headerLength + style.tcpBytes)) : packet.slice(0, Math.min(packet.length, 128));
  const extensions = 'mplsLabel' in style ? { objects: [mplsLabelStack([{ label: style.mplsLabel, ttl: 1 }])] } : undefined;
  const message = { type: version === 4 ? IcmpType.TIME_EXCEEDED : Icmpv6Type.TIME_EXCEEDED, code: 0, body: quoted, ...(extensions ? { extensions } : {}) };
  // Many routers send their errors with TTL 255 (Linux: 64).
  if (version === 4) return encodeIcmpPacket({ version: 4, tos: 0, id: 0, flags: 0, fragmentOffset: 0, ttl: 255, src: source[4], dst: ipv4ToString(packet, 12) }, message);
  return encodeIcmpPacket({ version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 255, src: source[6], dst: ipv6ToString(packet, 8) }, message);
}

function main(argv: string[]): Stop {
  const iface = argValue(argv, '--iface');
  const source = { 4: argValue(argv, '--source4'), 6: argValue(argv, '--source6') };
  const mark = Number(argValue(argv, '--mark'));
  const style: QuoteStyle = argv.includes('--mpls') ? { mplsLabel: Number(argValue(argv, '--mpls')) } : { tcpBytes: Number(argValue(argv, '--quote-tcp-bytes')) };
  const own = readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim();
  const sinks: Record<4 | 6, PacketSink> = { 4: openRawSender({ family: 4, mark }), 6: openRawSender({ family: 6, mark }) };
  let errors = 0;
  // What the hop forwards and whose TTL runs out here; not what it sends itself, nor what is addressed to it.
  const capture = openCapture({ iface, filter: `not ether src ${own} and ((ip and ip[8] <= 1 and not dst host ${source[4]}) or (ip6 and ip6[7] <= 1 and not dst host ${source[6]} and not ip6 multicast))` });
  capture.onPacket((p) => {
    const answer = timeExceeded(p.bytes, source, style);
    if (!answer) return;
    sinks[answer[0] >>> 4 === 6 ? 6 : 4].send(answer).catch((e: Error) => {
      if (errors++ < 20) process.stderr.write(`quoter: ${e.message}\n`);
    });
  });
  return () => {
    capture.close();
    sinks[4].close();
    sinks[6].close();
  };
}

runDaemon('quoter', import.meta.url, main);
