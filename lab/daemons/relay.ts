/**
 * The split-connection relay run on the middlebox by the `split-proxy` lab
 * profile.
 *
 * The relay is a tiny plain-JavaScript (CommonJS) program that is passed to
 * `node -e`, so it runs the same way whether the lab module itself was loaded
 * from TypeScript by vitest or from the compiled `dist/` tree (Node 20 cannot
 * run a `.ts` file directly) and needs no extra package such as socat.
 *
 * For every route it listens on `listenPort` (IPv4 on 0.0.0.0, IPv6 on ::,
 * v6-only) and, for each accepted connection, opens its *own* connection to
 * the responder (`host4` or `host6`, matching the family of the accepted
 * connection) on `targetPort`, then copies bytes both ways:
 *  - a FIN from one side is forwarded as a FIN to the other (half-close),
 *  - a reset (or a failed upstream connect) is forwarded as a RST,
 *  - Nagle is off on both sockets so small writes are forwarded promptly.
 * The middlebox kernel ACKs the initiator's data itself; sequence numbers and
 * TCP options of the two connections are unrelated.
 *
 * When `exitOnStdinEnd` is set the relay exits once its stdin reaches EOF,
 * i.e. when the process that started it died (it is started with a pipe as
 * stdin), so a SIGKILLed lab creator never leaves a relay behind.
 */

export interface RelayRoute {
  listenPort: number;
  targetPort: number;
  host4: string;
  host6: string;
}

export interface RelayConfig {
  routes: RelayRoute[];
  exitOnStdinEnd: boolean;
}

/** JavaScript source of the relay (for `node -e RELAY_SOURCE <json config>`). */
export const RELAY_SOURCE = String.raw`'use strict';
const net = require('node:net');
const cfg = JSON.parse(process.argv[process.argv.length - 1]);
function reset(sock) {
  if (sock.destroyed) return;
  try { sock.resetAndDestroy(); } catch { sock.destroy(); }
}
function relay(client, host, port, family) {
  client.setNoDelay(true);
  const upstream = net.connect({ host, port, family, allowHalfOpen: true });
  upstream.setNoDelay(true);
  client.on('error', () => reset(upstream));
  upstream.on('error', () => reset(client));
  client.pipe(upstream);
  upstream.pipe(client);
}
let pending = 0;
function listen(route, family) {
  pending++;
  const host = family === 6 ? route.host6 : route.host4;
  const server = net.createServer({ allowHalfOpen: true }, (c) => relay(c, host, route.targetPort, family));
  server.on('error', (err) => {
    process.stderr.write('relay: listen on port ' + route.listenPort + ' (IPv' + family + ') failed: ' + err.message + '\n');
    process.exit(1);
  });
  server.listen({ port: route.listenPort, host: family === 6 ? '::' : '0.0.0.0', ipv6Only: family === 6 }, () => {
    if (--pending === 0) process.stdout.write('ready\n');
  });
}
for (const route of cfg.routes) { listen(route, 4); listen(route, 6); }
if (cfg.exitOnStdinEnd) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
`;

/** argv that runs the relay with `config` (node is the running interpreter). */
export function relayArgv(config: RelayConfig): string[] {
  return [process.execPath, '-e', RELAY_SOURCE, JSON.stringify(config)];
}
