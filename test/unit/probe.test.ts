import { describe, expect, it } from 'vitest';
import { Prober } from '../../initiator/probe.js';
import type { CapturedPacket } from '../../shared/net/capture.js';
import { decodePacket, encodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { OptionKind, rawOption } from '../../shared/wire/tcp-options.js';

const LOCAL = { address: '198.18.0.2', port: 40000 };
const REMOTE = { address: '198.19.0.2', port: 80 };

/** A prober whose sink records what leaves and whose source delivers what the test hands it. */
function harness(): { prober: Prober; sent: Array<{ flags: number; payload: number }>; deliver: (p: CapturedPacket) => void } {
  const sent: Array<{ flags: number; payload: number }> = [];
  let listener: (p: CapturedPacket) => void = () => undefined;
  const prober = new Prober({ onPacket: (l) => (listener = l), close: () => undefined }, {
    4: {
      send: async (bytes) => {
        const p = decodePacket(bytes);
        sent.push({ flags: p.tcp!.flags, payload: p.payload.length });
      },
      close: () => undefined,
    },
  });
  return { prober, sent, deliver: (p) => listener(p) };
}

/** The SYN-ACK a box sends back to the connection's SYN. */
function synAckTo(isn: number): CapturedPacket {
  const bytes = encodePacket({
    ip: { version: 4, tos: 0, id: 1, flags: 0x2, fragmentOffset: 0, ttl: 64, protocol: 6, src: REMOTE.address, dst: LOCAL.address },
    tcp: { srcPort: REMOTE.port, dstPort: LOCAL.port, seq: 1000, ack: (isn + 1) >>> 0, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535 },
    payload: new Uint8Array(0),
  });
  return { bytes, atUs: Date.now() * 1000 };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('a probe connection held behind the test before it (initiator/probe.ts holdUntil)', () => {
  it('lets a bare SYN leave at once, and holds the handshake\'s ACK and data until released; reports the SYN-ACK', async () => {
    const { prober, sent, deliver } = harness();
    const connection = prober.open({ local: LOCAL, remote: REMOTE, timing: { timeoutMs: 2000, attempts: 1 }, isn: 5000 });
    let release!: () => void;
    connection.holdUntil = new Promise((r) => (release = r));
    let answered = 0;
    connection.onSynAck = () => answered++;
    let connected = false;
    const handshake = connection.connect().then(() => (connected = true));
    await tick();
    expect(sent).toEqual([{ flags: TcpFlag.SYN, payload: 0 }]);
    deliver(synAckTo(5000));
    await tick();
    expect(answered).toBe(1);
    // the SYN-ACK came, but the ACK that would make a proxy connect upstream waits
    expect(sent).toHaveLength(1);
    expect(connected).toBe(false);
    release();
    await handshake;
    expect(sent.map((s) => s.flags)).toEqual([TcpFlag.SYN, TcpFlag.ACK]);
    connection.dispose();
  });

  it('holds a SYN that carries data or a TFO option (a box with Fast Open may connect upstream on it)', async () => {
    for (const syn of [{ payload: new Uint8Array(10) }, { options: [rawOption(OptionKind.TFO, new Uint8Array(0))] }]) {
      const { prober, sent } = harness();
      const connection = prober.open({ local: LOCAL, remote: REMOTE, timing: { timeoutMs: 2000, attempts: 1 }, isn: 7000 });
      let release!: () => void;
      connection.holdUntil = new Promise((r) => (release = r));
      const sending = connection.send({ flags: TcpFlag.SYN, ...syn });
      await tick();
      expect(sent).toHaveLength(0);
      release();
      await sending;
      expect(sent).toHaveLength(1);
      connection.dispose();
    }
  });
});

describe('a connection that names itself before it closes (initiator/probe.ts tokenRequest)', () => {
  /** An answer from the far end to what the connection sent last: acknowledges `ack`, with `flags`. */
  const answer = (ack: number, flags: number): CapturedPacket => ({
    bytes: encodePacket({
      ip: { version: 4, tos: 0, id: 2, flags: 0x2, fragmentOffset: 0, ttl: 64, protocol: 6, src: REMOTE.address, dst: LOCAL.address },
      tcp: { srcPort: REMOTE.port, dstPort: LOCAL.port, seq: 1001, ack, flags, window: 65535 },
      payload: new Uint8Array(0),
    }),
    atUs: Date.now() * 1000,
  });

  it('sends its token request before the FIN when it sent no data, and nothing more when it did', async () => {
    for (const sendsData of [false, true]) {
      const { prober, sent, deliver } = harness();
      const connection = prober.open({ local: LOCAL, remote: REMOTE, timing: { timeoutMs: 300, attempts: 1 }, isn: 9000 });
      connection.tokenRequest = new Uint8Array(100);
      const handshake = connection.connect();
      await tick();
      deliver(synAckTo(9000));
      await handshake;
      if (sendsData) {
        const data = connection.sendData(new Uint8Array(20));
        await tick();
        deliver(answer(9021, TcpFlag.ACK));
        await data;
      }
      const closing = connection.close();
      await tick();
      if (!sendsData) {
        expect(sent.at(-1)).toEqual({ flags: TcpFlag.ACK | TcpFlag.PSH, payload: 100 });
        deliver(answer(9101, TcpFlag.ACK));
        await tick();
      }
      expect(sent.at(-1)!.flags & TcpFlag.FIN).toBe(TcpFlag.FIN);
      deliver(answer(sendsData ? 9022 : 9102, TcpFlag.FIN | TcpFlag.ACK));
      await closing;
      expect(sent.filter((s) => s.payload > 0).map((s) => s.payload)).toEqual(sendsData ? [20] : [100]);
      connection.dispose();
    }
  });
});
