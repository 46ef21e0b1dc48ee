/** `inspect`'s output: one tcpdump-like line per packet, with its decode issues and comments. */
import { formatPacket } from '../../shared/wire/format.js';
import type { Inspection } from '../read/inspect.js';

export function formatInspection(result: Inspection): string {
  const lines = result.packets.map((p) => {
    const time = new Date(Number(p.timestampNs / 1_000_000n)).toISOString().slice(11, 23);
    const issues = p.packet.issues.map((i) => `\n      ! ${i.code}: ${i.message}`).join('');
    const comments = p.comments.map((c) => `\n      # ${c}`).join('');
    return `${time} if${p.interfaceId} ${formatPacket(p.packet)}${issues}${comments}`;
  });
  return [...lines, ...result.problems.map((p) => `! ${p}`)].join('\n');
}
