import { mss, nop, sackPermitted, timestamps, windowScale, type TcpOption } from '../shared/wire/tcp-options.js';

/** The options Linux puts in a SYN, in Linux's order: what an ordinary connection offers. */
export function defaultSynOptions(timestampValue = (Date.now() >>> 0)): TcpOption[] {
  return [mss(1460), sackPermitted(), timestamps(timestampValue, 0), nop(), windowScale(7)];
}

/** Option kind 200: unassigned by IANA, so no middlebox can know what it means. */
export const UNKNOWN_OPTION_KIND = 200;
