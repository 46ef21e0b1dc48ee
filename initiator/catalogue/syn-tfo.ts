import { fastOpen } from '../../shared/wire/tcp-options.js';
import { synOptionTest } from './syn-option.js';

/** An empty TFO option is a cookie request (RFC 7413 4.1.1); the responder does not grant cookies. */
export const synTfo = synOptionTest('syn-tfo', 'a SYN with a TCP Fast Open cookie request (option 34, empty), besides the usual options', () => fastOpen());
