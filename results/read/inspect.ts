/** `inspect`'s reading: every packet of a pcapng file (raw IP or Ethernet), decoded. */
import { LINKTYPE_ETHERNET, LINKTYPE_RAW, readPcapng } from '../../shared/pcapng.js';
import { decodePacket, type DecodedPacket } from '../../shared/wire/packet.js';

export interface InspectedPacket {
  interfaceId: number;
  timestampNs: bigint;
  packet: DecodedPacket;
  comments: string[];
}

/** Decodes every packet of a pcapng file (raw IP or Ethernet interfaces); never throws on content. */
export interface Inspection {
  packets: InspectedPacket[];
  problems: string[];
}

export function inspectPcapng(bytes: Uint8Array): Inspection {
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
