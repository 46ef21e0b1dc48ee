import { toHex } from './bytes.js';
import { ecnOf, type DecodedPacket, type Packet } from './packet.js';
import { formatFlags, TcpFlag } from './tcp.js';
import { formatOption } from './tcp-options.js';

const ECN_NAMES = ['', 'ECT(1)', 'ECT(0)', 'CE'];

/**
 * One line per segment, in the style of `tcpdump -nn`, for logs, diffs and reports:
 * `IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK], length 0`
 */
export function formatPacket(packet: Packet | DecodedPacket): string {
  const { ip, tcp } = packet;
  if (!ip) return `not IP, ${packet.payload.length} bytes: ${toHex(packet.payload.subarray(0, 16))}${packet.payload.length > 16 ? '…' : ''}`;
  const family = ip.version === 4 ? 'IP' : 'IP6';
  const ecn = ECN_NAMES[ecnOf(ip)];
  const prefix = ecn ? `${family} [${ecn}]` : family;
  if (!tcp) return `${prefix} ${ip.src} > ${ip.dst}: proto ${ip.protocol}, length ${packet.payload.length}`;
  const parts = [`Flags [${formatFlags(tcp.flags)}]`];
  const hasPayload = packet.payload.length > 0;
  parts.push(hasPayload || tcp.flags & (TcpFlag.SYN | TcpFlag.FIN) ? `seq ${tcp.seq}${hasPayload ? `:${(tcp.seq + packet.payload.length) >>> 0}` : ''}` : `seq ${tcp.seq}`);
  if (tcp.flags & TcpFlag.ACK) parts.push(`ack ${tcp.ack}`);
  parts.push(`win ${tcp.window}`);
  if (tcp.flags & TcpFlag.URG || tcp.urgentPointer) parts.push(`urg ${tcp.urgentPointer ?? 0}`);
  if (tcp.reserved) parts.push(`reserved ${tcp.reserved}`);
  if (tcp.options && tcp.options.length > 0) parts.push(`options [${tcp.options.map(formatOption).join(',')}]`);
  parts.push(`length ${packet.payload.length}`);
  return `${prefix} ${ip.src}.${tcp.srcPort} > ${ip.dst}.${tcp.dstPort}: ${parts.join(', ')}`;
}
