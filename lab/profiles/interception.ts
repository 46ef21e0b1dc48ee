/**
 * Real proxy software from Debian, configured as transparent interceptors the way operators run it:
 * the middlebox redirects the test port to the proxy (nftables `redirect`), which completes the
 * client's handshake itself and decides on its own when (or whether) to open a connection to the
 * server. Unlike the lab's relay (lab/daemons/relay.ts), these wait for something: a whole HTTP
 * request, a ClientHello, or they never connect at all.
 */
import { NFT_TABLE, nft, type LabProfile } from '../profile.js';
import type { Lab } from '../topology.js';

const SQUID_PORT = 3129;
const TINYPROXY_PORT = 3130;
const HAPROXY_TLS_PORT = 4443;
const HAPROXY_TCP_PORT = 4434;

/** nft rules sending what arrives from the initiator's side for `port` to a local listener. */
function redirect(lab: Lab, routes: Array<{ port: number; to: number }>): string[] {
  return nft([
    `add table inet ${NFT_TABLE}`,
    `add chain inet ${NFT_TABLE} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    ...routes.map((r) => `add rule inet ${NFT_TABLE} prerouting iifname "${lab.interfaces.middleboxLeft}" tcp dport ${r.port} redirect to :${r.to}`),
  ]);
}

const bothFamilies = (port: number): Array<{ port: number; family: 4 | 6 }> => [{ port, family: 4 }, { port, family: 6 }];

/**
 * squid 5 in intercept mode (Debian's squid), as an ISP or school runs it in front of port 80: no
 * cache, every request forwarded to the address the client connected to, with the Via and
 * X-Forwarded-For headers squid adds by default. Server connections are not reused, as most
 * interception deployments configure to keep per-client accounting.
 */
function squidIntercept(): LabProfile {
  const dir = (lab: Lab): string => `${lab.runDir}/squid`;
  return {
    name: 'http-intercept',
    description:
      'A transparent HTTP interception proxy (squid 5 in intercept mode, as ISPs, schools and companies run it): takes over connections to port 80, completes the handshake itself and connects to the server only once a whole request has arrived, adding Via and X-Forwarded-For. Ports 34343 and 443 pass untouched.',
    packages: ['squid'],
    needs: ['squid'],
    files: (lab) => ({
      'squid.conf': [
        // squid needs one forward-proxy port besides the intercepting one (for its own URLs); loopback only
        'http_port 127.0.0.1:3128',
        `http_port ${SQUID_PORT} intercept`,
        'http_access allow all',
        'cache deny all',
        'cache_mem 8 MB',
        `visible_hostname proxy.lab${lab.id}.mbprobe.test`,
        `pid_filename ${dir(lab)}/squid.pid`,
        `coredump_dir ${dir(lab)}`,
        `access_log stdio:${dir(lab)}/access.log`,
        `cache_log ${dir(lab)}/cache.log`,
        'cache_store_log none',
        'netdb_filename none',
        'pinger_enable off',
        'logfile_rotate 0',
        'shutdown_lifetime 0 seconds',
        'forwarded_for on',
        'via on',
        'server_persistent_connections off',
        '',
      ].join('\n'),
    }),
    setup: (lab) => [
      ['mkdir', '-p', dir(lab)],
      ['chown', 'proxy:proxy', dir(lab)],
      redirect(lab, [{ port: 80, to: SQUID_PORT }]),
    ],
    daemons: (lab) => [['squid', '-N', '-f', `${lab.runDir}/squid.conf`]],
    listens: () => bothFamilies(SQUID_PORT),
  };
}

/**
 * tinyproxy in transparent mode (Debian's tinyproxy), which connects to the host named in the
 * request's Host header: the volunteer names the responder by a name only its own resolver knows
 * (a split-horizon or local name), so the proxy cannot resolve it and answers every request with
 * its own error page, never connecting to the server.
 */
function tinyproxyCannotResolve(): LabProfile {
  const dir = (lab: Lab): string => `${lab.runDir}/tinyproxy`;
  return {
    name: 'http-intercept-error',
    description:
      "A transparent HTTP proxy (tinyproxy) that resolves the request's Host itself and cannot resolve the name the volunteer uses for the responder: it completes the handshake on port 80, answers every request with its own error page and never connects to the server. Ports 34343 and 443 pass untouched.",
    packages: ['tinyproxy'],
    needs: ['tinyproxy'],
    responderByName: true,
    files: (lab) => ({
      'tinyproxy.conf': [
        'User nobody',
        'Group nogroup',
        `Port ${TINYPROXY_PORT}`,
        'Timeout 10',
        'DefaultErrorFile "/usr/share/tinyproxy/default.html"',
        'LogLevel Info',
        `LogFile "${dir(lab)}/tinyproxy.log"`,
        `PidFile "${dir(lab)}/tinyproxy.pid"`,
        'MaxClients 100',
        `ViaProxyName "proxy.lab${lab.id}.mbprobe.test"`,
        '',
      ].join('\n'),
    }),
    setup: (lab) => [
      ['mkdir', '-p', dir(lab)],
      ['chown', 'nobody:nogroup', dir(lab)],
      redirect(lab, [{ port: 80, to: TINYPROXY_PORT }]),
    ],
    daemons: (lab) => [['tinyproxy', '-d', '-c', `${lab.runDir}/tinyproxy.conf`]],
    listens: () => bothFamilies(TINYPROXY_PORT),
  };
}

/**
 * HAProxy 2.6 (Debian's haproxy) as a load balancer in front of the server: TCP mode on 34343 (it
 * connects to the server as soon as the client connects), and on 443 TLS passthrough that routes on
 * the ClientHello (`req.ssl_hello_type`, as SNI routing does): it connects to the server only once a
 * ClientHello has arrived, and relays the TLS records untouched.
 */
function haproxyPassthrough(): LabProfile {
  const dir = (lab: Lab): string => `${lab.runDir}/haproxy`;
  return {
    name: 'tls-passthrough',
    description:
      'A load balancer (HAProxy 2.6) in front of the server: plain TCP relaying on 34343, and on 443 TLS passthrough that waits for the ClientHello (as SNI routing does) before connecting to the server, then relays the records untouched. Port 80 passes untouched.',
    packages: ['haproxy'],
    needs: ['haproxy'],
    files: (lab) => ({
      'haproxy.cfg': [
        'global',
        '  maxconn 512',
        `  pidfile ${dir(lab)}/haproxy.pid`,
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend lb',
        `  bind 0.0.0.0:${HAPROXY_TCP_PORT}`,
        `  bind :::${HAPROXY_TCP_PORT} v6only`,
        '  use_backend lb6 if { src fd6d:6270::/32 }',
        '  default_backend lb4',
        'frontend tls',
        `  bind 0.0.0.0:${HAPROXY_TLS_PORT}`,
        `  bind :::${HAPROXY_TLS_PORT} v6only`,
        '  tcp-request inspect-delay 10s',
        '  tcp-request content accept if { req.ssl_hello_type 1 }',
        // no ClientHello by the end of the client's stream (or of the delay): no server connection
        '  tcp-request content reject',
        '  use_backend tls6 if { src fd6d:6270::/32 }',
        '  default_backend tls4',
        'backend lb4',
        `  server responder ${lab.addresses.responder}:34343`,
        'backend lb6',
        `  server responder ipv6@${lab.addresses.responder6}:34343`,
        'backend tls4',
        `  server responder ${lab.addresses.responder}:443`,
        'backend tls6',
        `  server responder ipv6@${lab.addresses.responder6}:443`,
        '',
      ].join('\n'),
    }),
    setup: (lab) => [
      ['mkdir', '-p', dir(lab)],
      redirect(lab, [{ port: 34343, to: HAPROXY_TCP_PORT }, { port: 443, to: HAPROXY_TLS_PORT }]),
    ],
    daemons: (lab) => [['haproxy', '-db', '-f', `${lab.runDir}/haproxy.cfg`]],
    listens: () => [...bothFamilies(HAPROXY_TCP_PORT), ...bothFamilies(HAPROXY_TLS_PORT)],
  };
}

export const interceptionProfiles = (): LabProfile[] => [squidIntercept(), tinyproxyCannotResolve(), haproxyPassthrough()];
