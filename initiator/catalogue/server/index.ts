/**
 * The server tests `mbprobe-initiator scan` runs against ordinary servers (no responder), one module
 * each, beside the responder catalogue of the folder above: same shape (a script and a pure judge),
 * judged from the initiator's side alone (server-test.ts). In the order they run on each target.
 */
import type { ServerTest } from './server-test.js';
import { serverAccecn } from './server-accecn.js';
import { serverEcn } from './server-ecn.js';
import { serverMptcp } from './server-mptcp.js';
import { serverOptions } from './server-options.js';
import { serverSynData } from './server-syn-data.js';
import { serverTfo } from './server-tfo.js';
import { serverUnknownOption } from './server-unknown-option.js';

export const SERVER_CATALOGUE: readonly ServerTest[] = [
  serverOptions,
  serverTfo,
  serverMptcp,
  serverEcn,
  serverAccecn,
  serverUnknownOption,
  serverSynData,
];

export { allServerVerdicts, SERVER_SHARED_VERDICTS, type ServerTest } from './server-test.js';
