import { LINKTYPE_ETHERNET, LINKTYPE_RAW, readPcapng } from '../shared/pcapng.js';
import { decodePacket, type DecodedPacket } from '../shared/wire/packet.js';
import { formatPacket } from '../shared/wire/format.js';

export interface InspectedPacket {
  interfaceId: number;
  timestampNs: bigint;
  packet: DecodedPacket;
  comments: string[];
}

/** Decodes every packet of a pcapng file (raw IP or Ethernet interfaces); never throws on content. */
export function inspectPcapng(bytes: Uint8Array): { packets: InspectedPacket[]; problems: string[] } {
  const file = readPcapng(bytes);
  const problems = file.issues.map((i) => `pcapng @${i.offset}: ${i.message}`);
  const packets: InspectedPacket[] = [];
  for (const p of file.packets) {
    const linkType = file.interfaces[p.interfaceId]?.linkType;
    let ip: Uint8Array | undefined;
    if (linkType === LINKTYPE_RAW) ip = p.data;
    else if (linkType === LINKTYPE_ETHERNET && p.data.length >= 14) {
      const etherType = (p.data[12] << 8) | p.data[13];
      if (etherType === 0x0800 || etherType === 0x86dd) ip = p.data.subarray(14);
    }
    if (!ip) {
      problems.push(`packet on interface ${p.interfaceId}: link type ${linkType} / not IP, skipped`);
      continue;
    }
    packets.push({ interfaceId: p.interfaceId, timestampNs: p.timestampNs, packet: decodePacket(ip), comments: p.comments ?? [] });
  }
  return { packets, problems };
}

export function formatInspection(result: ReturnType<typeof inspectPcapng>): string {
  const lines = result.packets.map((p) => {
    const time = new Date(Number(p.timestampNs / 1_000_000n)).toISOString().slice(11, 23);
    const issues = p.packet.issues.map((i) => `\n      ! ${i.code}: ${i.message}`).join('');
    const comments = p.comments.map((c) => `\n      # ${c}`).join('');
    return `${time} if${p.interfaceId} ${formatPacket(p.packet)}${issues}${comments}`;
  });
  return [...lines, ...result.problems.map((p) => `! ${p}`)].join('\n');
}
