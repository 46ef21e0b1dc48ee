import { describe, expect, it } from 'vitest';
import { coalesce } from '../../initiator/catalogue/coalesce.js';
import { Prober } from '../../initiator/probe.js';
import { payloadFor } from '../../initiator/payloads.js';
import { nowUs } from '../../shared/net/capture.js';
import { decodePacket, encodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';

const LOCAL = { address: '198.18.0.2', port: 40000 };
const REMOTE = { address: '198.19.0.2', port: 34343 };

/**
 * A relay's TCP stack on the far end (as a split-connection proxy answers): cumulative ACKs, an ACK
 * for every segment, out-of-order segments held; the first copy of the stream's first data segment is lost.
 */
function relayPeer(): { prober: Prober; dataSent: () => number } {
  let listener: (p: { bytes: Uint8Array; atUs: number }) => void = () => undefined;
  let rcvNxt = 0;
  const held = new Map<number, number>();
  let lostOne = false;
  let dataSent = 0;
  const reply = (flags: number, seq: number, ack: number): void => {
    const bytes = encodePacket({
      ip: { version: 4, tos: 0, id: 1, flags: 0x2, fragmentOffset: 0, ttl: 64, protocol: 6, src: REMOTE.address, dst: LOCAL.address },
      tcp: { srcPort: REMOTE.port, dstPort: LOCAL.port, seq, ack, flags, window: 65535 },
      payload: new Uint8Array(0),
    });
    setTimeout(() => listener({ bytes, atUs: nowUs() }), 2);
  };
  const prober = new Prober({ onPacket: (l) => (listener = l as never), close: () => undefined }, {
    4: {
      send: async (bytes) => {
        const { tcp, payload } = decodePacket(bytes);
        if (!tcp) return;
        if (tcp.flags & TcpFlag.SYN) {
          rcvNxt = (tcp.seq + 1) >>> 0;
          return reply(TcpFlag.SYN | TcpFlag.ACK, 5000, rcvNxt);
        }
        if (tcp.flags & TcpFlag.FIN) return reply(TcpFlag.FIN | TcpFlag.ACK, 5001, (tcp.seq + 1) >>> 0);
        if (payload.length === 0) return;
        dataSent++;
        if (!lostOne && tcp.seq === rcvNxt) {
          lostOne = true;
          return;
        }
        held.set(tcp.seq, payload.length);
        while (held.has(rcvNxt)) rcvNxt = (rcvNxt + held.get(rcvNxt)!) >>> 0;
        reply(TcpFlag.ACK, 5001, rcvNxt);
      },
      close: () => undefined,
    },
  });
  return { prober, dataSent: () => dataSent };
}

describe('coalesce\'s script behind a relay (initiator/catalogue/coalesce.ts)', () => {
  it('reads a relay\'s cumulative ACK, repeated for the segments it sent again, as acknowledging them: both bursts go out', async () => {
    const { prober, dataSent } = relayPeer();
    const connection = prober.open({ local: LOCAL, remote: REMOTE, timing: { timeoutMs: 300, attempts: 3 }, isn: 1000 });
    await coalesce.run(connection, { port: REMOTE.port, payload: (n) => payloadFor(REMOTE.port, n) });
    connection.dispose();
    expect(connection.notes.stoppedAfter).toBeUndefined();
    // the first burst twice (its first segment lost once: nothing acknowledged), the second once and,
    // as the relay's cumulative ACK of its first-sent-last segment is exactly its last segment's end,
    // the other three once more
    expect(dataSent()).toBe(4 + 4 + 4 + 3);
  });
});
