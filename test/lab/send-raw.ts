/**
 * Sends IP packets given as hex arguments through a raw socket: how lab tests inject hand-crafted
 * (often malformed) segments from inside a namespace: `ip netns exec NS node dist/test/lab/send-raw.js HEX...`
 */
import { openRawSender } from '../../shared/net/raw-send.js';
import { fromHex } from '../../shared/wire/bytes.js';

const packets = process.argv.slice(2).map(fromHex);
const senders = { 4: openRawSender({ family: 4 }), 6: openRawSender({ family: 6 }) };
for (const packet of packets) await senders[packet[0] >> 4 === 6 ? 6 : 4].send(packet);
senders[4].close();
senders[6].close();
