import { TcpFlag } from '../../shared/wire/tcp.js';
import { connectSendAndClose } from '../probe-scripts.js';
import { flagsOf, judgeDataProbes } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const DATA_BYTES = 100;
/** The urgent pointer: an offset from the segment's sequence number (RFC 9293 3.1, RFC 6093). */
const URGENT_POINTER = 10;
const VERDICTS = ['passed', 'cleared'] as const;

const urgentOf = (o: Observed): { urg: boolean; urgentPointer: number } => ({
  urg: (flagsOf(o) & TcpFlag.URG) !== 0,
  urgentPointer: o.packet.tcp?.urgentPointer ?? 0,
});

export const urgentPointer: TestCase = {
  name: 'urgent-pointer',
  sends: `after an ordinary handshake, a data segment of ${DATA_BYTES} bytes with URG set and urgent pointer ${URGENT_POINTER}`,
  verdicts: VERDICTS,
  // No token (it stays in the chain behind a relay): a relay's stack takes its urgent byte, the 10th,
  // out of the stream, and on port 80 that byte is in the request path, where the token is.
  probe: dataProbe('tcp.urgentPointer', 'tcp.flags'),
  run: (connection, context) => connectSendAndClose(connection, context, DATA_BYTES, { flags: TcpFlag.ACK | TcpFlag.PSH | TcpFlag.URG, urgentPointer: URGENT_POINTER }),
  judge(obs) {
    return judgeDataProbes(obs, VERDICTS, (sent, received) => {
      const s = urgentOf(sent);
      const r = urgentOf(received);
      // A pointer set to another value is not the pointer sent: counted with "cleared", said in `changes`.
      const changes = [
        ...(s.urg && !r.urg ? ['URG cleared'] : []),
        ...(s.urgentPointer !== r.urgentPointer ? [r.urgentPointer === 0 ? 'urgent pointer cleared' : 'urgent pointer changed'] : []),
      ];
      // A proxy that took the urgent byte out of band forwards one byte less.
      const detail = { sent: s, received: r, changes, payloadLength: { sent: sent.packet.payload.length, received: received.packet.payload.length } };
      if (!s.urg || s.urgentPointer === 0) return { verdict: 'inconclusive', detail: { reason: 'the probe was not sent with URG and an urgent pointer', ...detail } };
      return { verdict: changes.length ? 'cleared' : 'passed', detail };
    });
  },
};
