import { mptcpCapable } from '../../shared/wire/tcp-options.js';
import { synOptionTest } from './syn-option.js';

/** MP_CAPABLE as an MPTCP v1 client sends it in its SYN (RFC 8684 3.1): 4 bytes, no key. */
export const synMptcp = synOptionTest('syn-mptcp', 'a SYN with MP_CAPABLE (option 30, MPTCP v1, no key), besides the usual options', () => mptcpCapable());
