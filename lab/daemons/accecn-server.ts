/**
 * The handshake of an AccECN server (RFC 9768), in user space, for the scan lab on kernels whose TCP
 * does not offer AccECN (Linux before 6.19 refuses net.ipv4.tcp_ecn=3): it answers every SYN to its
 * port as a Linux server with AccECN on would (RFC 9768 3.1.1-3.1.2):
 *
 *   - an AccECN SYN (AE, CWR, ECE) gets a SYN-ACK whose (AE, CWR, ECE) report the IP-ECN field the
 *     SYN arrived with: Not-ECT 010, ECT(1) 011, ECT(0) 100, CE 110;
 *   - an ECN-setup SYN (CWR, ECE) gets the classic ECE-only SYN-ACK;
 *   - any other SYN a plain one;
 *
 * with the options Linux answers with (MSS, SACK-permitted, timestamps echoing the SYN's, window
 * scale when offered). It keeps no connection: scans reset right after the SYN-ACK. The lab's
 * nftables rule keeps the namespace's kernel from answering the port itself.
 *
 *   node dist/lab/daemons/accecn-server.js --iface rsp0 --port 8093 [--exit-on-stdin-end]
 *
 * Prints `ready` once its capture is open.
 */
import { randomInt } from 'node:crypto';
import { openCapture } from '../../shared/net/capture.js';
import { runDaemon, type Stop } from './lifecycle.js';
import { openRawSender } from '../../shared/net/raw-send.js';
import { decodePacket, ecnOf, encodePacket, type DecodedPacket, type IpHeader } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, mss, nop, OptionKind, sackPermitted, timestamps, viewOption, windowScale, type TcpOption } from '../../shared/wire/tcp-options.js';

/** (AE, CWR, ECE) of the SYN-ACK that reports a SYN's IP-ECN field (RFC 9768 Table 2): Not-ECT, ECT(1), ECT(0), CE. */
const ACE_FOR_SYN_ECN = [TcpFlag.CWR, TcpFlag.CWR | TcpFlag.ECE, TcpFlag.AE, TcpFlag.AE | TcpFlag.CWR] as const;
const ACCECN_SYN = TcpFlag.AE | TcpFlag.CWR | TcpFlag.ECE;
const ECN_SETUP_SYN = TcpFlag.CWR | TcpFlag.ECE;

/** The ECN flags of the SYN-ACK answering a SYN with these flags, arriving with this IP-ECN field. */
export function synAckEcnFlags(synFlags: number, ipEcn: number): number {
  if ((synFlags & ACCECN_SYN) === ACCECN_SYN) return ACE_FOR_SYN_ECN[ipEcn & 3];
  if ((synFlags & ECN_SETUP_SYN) === ECN_SETUP_SYN) return TcpFlag.ECE;
  return 0;
}

/** The SYN-ACK answering `syn` (a decoded SYN), or undefined for anything that is not a SYN. */
export function synAckFor(syn: DecodedPacket, isn: number, nowMs: number): Uint8Array | undefined {
  const tcp = syn.tcp;
  if (!tcp || !syn.ip || (tcp.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) !== TcpFlag.SYN) return undefined;
  const options: TcpOption[] = [mss(1460)];
  const offered = (kind: number): TcpOption | undefined => findOption(tcp.options, kind);
  if (offered(OptionKind.SACK_PERMITTED)) options.push(sackPermitted());
  const ts = offered(OptionKind.TIMESTAMPS);
  const tsView = ts && viewOption(ts);
  if (tsView?.type === 'timestamps') options.push(timestamps(nowMs >>> 0, tsView.value));
  if (offered(OptionKind.WINDOW_SCALE)) options.push(nop(), windowScale(7));
  const ip: IpHeader = syn.ip.version === 6
    ? { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, protocol: 6, src: syn.ip.dst, dst: syn.ip.src }
    : { version: 4, tos: 0, id: 0, flags: 0x2, fragmentOffset: 0, ttl: 64, protocol: 6, src: syn.ip.dst, dst: syn.ip.src };
  return encodePacket({
    ip,
    tcp: {
      srcPort: tcp.dstPort, dstPort: tcp.srcPort, seq: isn >>> 0, ack: (tcp.seq + 1 + syn.payload.length) >>> 0,
      flags: TcpFlag.SYN | TcpFlag.ACK | synAckEcnFlags(tcp.flags, ecnOf(syn.ip)), window: 65535, options,
    },
    payload: new Uint8Array(0),
  });
}

function main(argv: string[]): Stop {
  const arg = (name: string): string => {
    const i = argv.indexOf(name);
    if (i < 0 || i + 1 >= argv.length) throw new Error(`${name} is required`);
    return argv[i + 1];
  };
  const iface = arg('--iface');
  const port = Number(arg('--port'));
  const sinks = { 4: openRawSender({ family: 4 }), 6: openRawSender({ family: 6 }) };
  // No tcp[tcpflags] here: libpcap indexes TCP headers of IPv4 only. synAckFor passes over what is not a SYN.
  const capture = openCapture({ iface, filter: `tcp dst port ${port}` });
  let errors = 0;
  capture.onPacket((p) => {
    const reply = synAckFor(decodePacket(p.bytes), randomInt(0, 2 ** 32), Date.now());
    if (!reply) return;
    sinks[reply[0] >> 4 === 6 ? 6 : 4].send(reply).catch((e: Error) => {
      if (errors++ < 20) process.stderr.write(`accecn-server: ${e.message}\n`);
    });
  });
  return () => {
    capture.close();
    sinks[4].close();
    sinks[6].close();
  };
}

runDaemon('accecn-server', import.meta.url, main);
