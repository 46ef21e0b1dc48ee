import { mss, nop, sackPermitted, timestamps, windowScale, type TcpOption } from '../shared/wire/tcp-options.js';
import type { ProbeConnection } from './probe.js';

/** The options Linux puts in a SYN, in Linux's order: what an ordinary connection offers. */
export function defaultSynOptions(timestampValue = (Date.now() >>> 0)): TcpOption[] {
  return [mss(1460), sackPermitted(), timestamps(timestampValue, 0), nop(), windowScale(7)];
}

/** Option kind 200: unassigned by IANA, so no middlebox can know what it means. */
export const UNKNOWN_OPTION_KIND = 200;

/** The script of tests that only need a connection: an ordinary handshake, then an orderly close. */
export async function connectAndClose(connection: ProbeConnection): Promise<void> {
  const synAck = await connection.connect({ options: defaultSynOptions() });
  if (synAck) await connection.close();
}
