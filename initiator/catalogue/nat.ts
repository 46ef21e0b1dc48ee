import { connectAndClose } from '../probe-scripts.js';
import { first, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

export const nat: TestCase = {
  name: 'nat',
  sends: 'an ordinary SYN; the initiator\'s address and port are compared with what the responder saw',
  verdicts: ['none', 'address', 'port', 'address+port'],
  carriesToken: 'before-close',
  probe: synProbe('ip.src', 'tcp.srcPort'),
  run: connectAndClose,
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const sent = first(obs.initiator.sent, isSyn)!.packet;
    const received = first(obs.responder!.received, isSyn)!.packet;
    const addressChanged = sent.ip!.src !== received.ip!.src;
    const portChanged = sent.tcp!.srcPort !== received.tcp!.srcPort;
    const detail = { sent: endpoint(sent.ip!.src, sent.tcp!.srcPort), received: endpoint(received.ip!.src, received.tcp!.srcPort) };
    const verdict = addressChanged && portChanged ? 'address+port' : addressChanged ? 'address' : portChanged ? 'port' : 'none';
    return { verdict, detail };
  },
};

/** "192.0.2.1:4000", "[2001:db8::1]:4000" (RFC 3986 brackets, so the port cannot be read as part of an IPv6 address). */
const endpoint = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);
