import { TcpFlag } from '../../shared/wire/tcp.js';
import { connectSendAndClose } from '../probe-scripts.js';
import { judgeDataProbes } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const DATA_BYTES = 100;
const VERDICTS = ['passed', 'cleared'] as const;
/** The three reserved bits between the data offset and AE (RFC 9293 3.1), all set. */
const RESERVED = 0b111;

/**
 * The 4 bits between data offset and CWR, named by their value in the 12 bits after the data offset:
 * reserved 0x800, 0x400, 0x200, and AE 0x100 (RFC 3540's NS, now AccECN's AE).
 */
function headerBits(o: Observed): string[] {
  const tcp = o.packet.tcp!;
  const reserved = tcp.reserved ?? 0;
  return [
    ...[4, 2, 1].filter((bit) => reserved & bit).map((bit) => `reserved-0x${(bit << 9).toString(16)}`),
    ...(tcp.flags & TcpFlag.AE ? ['AE'] : []),
  ];
}

export const reservedBits: TestCase = {
  name: 'reserved-bits',
  sends: `after an ordinary handshake, a data segment of ${DATA_BYTES} bytes with the 3 reserved header bits and AE set`,
  verdicts: VERDICTS,
  carriesToken: 'in-stream',
  probe: dataProbe('tcp.reserved', 'tcp.flags'),
  run: (connection, context) => connectSendAndClose(connection, context, DATA_BYTES, { flags: TcpFlag.ACK | TcpFlag.PSH | TcpFlag.AE, reserved: RESERVED }),
  judge(obs) {
    return judgeDataProbes(obs, VERDICTS, (sent, received) => {
      const s = headerBits(sent);
      const r = headerBits(received);
      const cleared = s.filter((bit) => !r.includes(bit));
      const detail = { sent: s, received: r, cleared };
      if (s.length < 4) return { verdict: 'inconclusive', detail: { reason: 'the probe was not sent with the reserved bits and AE set', ...detail } };
      return { verdict: cleared.length ? 'cleared' : 'passed', detail };
    });
  },
};
