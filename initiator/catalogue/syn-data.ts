import { TcpFlag } from '../../shared/wire/tcp.js';
import { defaultSynOptions } from '../probe-scripts.js';
import { isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

const SYN_DATA_BYTES = 64;

export const synData: TestCase = {
  name: 'syn-data',
  sends: `a SYN carrying ${SYN_DATA_BYTES} payload bytes (as TCP Fast Open would), then sends them again after the handshake`,
  verdicts: ['passed', 'payload-removed'],
  carriesToken: 'in-stream',
  probe: synProbe('payload'),
  async run(connection, context) {
    const payload = context.payload(SYN_DATA_BYTES);
    const synAck = await connection.connect({ options: defaultSynOptions(), payload });
    if (!synAck) return;
    // A server without TFO acknowledges only the SYN; the data goes again, as a client would resend it.
    await connection.sendData(payload);
    await connection.close();
  },
  judge(obs) {
    // The probe is our SYN (our ISN); a split-connection proxy sends the responder a SYN of its own.
    const ours = (o: Observed): boolean => isSyn(o) && o.packet.tcp!.seq === obs.isn;
    const isnRewritten = !obs.responder?.received.some(ours);
    const probe = isnRewritten ? isSyn : ours;
    const shared = sharedVerdict(obs, probe, isSynAck);
    if (shared) return shared;
    const arrived = obs.responder!.received.filter(probe);
    const withData = arrived.filter((o) => o.packet.payload.length > 0);
    const detail = { sentBytes: SYN_DATA_BYTES, receivedBytes: arrived.map((o) => o.packet.payload.length), synsReceived: arrived.length, isnRewritten };
    if (withData.length === 0) return { verdict: 'payload-removed', detail };
    return { verdict: 'passed', detail: { ...detail, synAckFlags: obs.initiator.received.find(isSynAck)?.packet.tcp?.flags ?? TcpFlag.SYN } };
  },
};
