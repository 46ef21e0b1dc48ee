/**
 * Ordinary servers for `mbprobe-initiator scan` in the lab: real Linux TCP listeners in a lab's
 * responder namespace (python3 sockets: TCP_FASTOPEN, TCP_FASTOPEN_KEY, TCP_FASTOPEN_NO_COOKIE,
 * IPPROTO_MPTCP; lab/daemons/servers.py), that namespace's sysctls (net.ipv4.tcp_fastopen,
 * net.mptcp.enabled, net.ipv4.tcp_ecn with AccECN) and firewall rules in front of some ports, as
 * operators configure servers. The path to them is any lab profile (lab/profiles/): a box that
 * bleaches ECN, drops SYNs with data, strips options.
 *
 * One configuration per server namespace (sysctls are per namespace); within one, one port per kind of
 * server. The mbprobe responder does not run in such a lab: the servers take its namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { daemonScript, NFT_TABLE, nft, projectRoot } from './profile.js';
import type { Lab } from './topology.js';

export type ListenerKind =
  /** An ordinary listener. */
  | 'tcp'
  /** TCP_FASTOPEN set (a TFO server, with the namespace's key unless `tfoKey`). */
  | 'tfo'
  /** TFO that takes data in a SYN without a cookie (TCP_FASTOPEN_NO_COOKIE). */
  | 'tfo-no-cookie'
  /** An IPPROTO_MPTCP listener. */
  | 'mptcp';

export interface ServerListener {
  port: number;
  kind: ListenerKind;
  /** A TFO key of this listener's own (TCP_FASTOPEN_KEY, 32 hex digits). */
  tfoKey?: string;
}

/** What one port of a configuration is, and the verdict each server test should give on it. */
export interface ServerPort {
  port: number;
  description: string;
}

export interface ServerConfig {
  name: string;
  description: string;
  /** sysctl name -> value, in the server namespace. */
  sysctls: Record<string, string>;
  listeners: ServerListener[];
  /** Rules of an `inet mbprobe` nftables table in the server namespace (after `add table`). */
  nftRules?: (lab: Lab) => string[];
  /** Other commands run in the server namespace (iptables matches nft lacks). */
  commands?: (lab: Lab) => string[][];
  /** The ports and what each is. */
  ports: ServerPort[];
  /**
   * A port with an AccECN server (RFC 9768): Linux's own (net.ipv4.tcp_ecn 3, an ordinary listener)
   * where the kernel offers it, else lab/daemons/accecn-server.ts (the handshake in user space).
   */
  accecnPort?: number;
}

/** Two TFO keys: backends of one service that do not share their key (RFC 7413 4.1.2 says they must). */
const KEY_A = '000102030405060708090a0b0c0d0e0f';
const KEY_B = 'f0e0d0c0b0a090807060504030201000';

/** The TFO client and server, MPTCP and classic ECN (RFC 3168), all on. */
const FEATURES_ON = { 'net.ipv4.tcp_fastopen': '3', 'net.mptcp.enabled': '1', 'net.ipv4.tcp_ecn': '1' };

/** The ports of the `features` configuration, by what they are. */
export const FEATURE_PORTS = {
  /** A TFO server: every feature a Linux server offers. */
  tfo: 80,
  /** An MPTCP server (without TFO). */
  mptcp: 443,
  /** TFO without cookies: data in a SYN is taken as it comes. */
  tfoNoCookie: 81,
  /** Two TFO backends behind a round-robin balancer, each with its own key. */
  tfoUnsharedKeys: 82,
  /** Nothing listens: the kernel resets. */
  closed: 83,
  /** A firewall drops everything. */
  silent: 84,
  /** A firewall drops SYNs carrying option kind 200 or 253. */
  dropUnknownOptions: 85,
  /** A firewall drops SYNs with ECE or CWR (ECN-setup and AccECN SYNs). */
  dropEcnSyn: 86,
  /** A firewall drops packets marked ECT(0). */
  dropEct: 87,
  /** A firewall drops SYNs with AE set (the reserved bit AccECN uses). */
  dropAeSyn: 88,
  /** Something in front strips timestamps and SACK-permitted from SYNs. */
  stripTsSack: 89,
  /** Something in front strips timestamps, SACK-permitted and window scale from SYNs. */
  stripAll: 90,
  /** A DPI box that drops every data segment after the handshake (requests never arrive). */
  dropRequests: 91,
} as const;

const BACKENDS = { a: 18082, b: 28082 } as const;

function features(): ServerConfig {
  const p = FEATURE_PORTS;
  const plainTfo = [p.tfo, p.dropUnknownOptions, p.dropEcnSyn, p.dropEct, p.dropAeSyn, p.dropRequests];
  return {
    name: 'features',
    description: 'A Linux server with TFO (server and client), MPTCP and classic ECN on, one port per kind of listener and firewall',
    sysctls: FEATURES_ON,
    listeners: [
      ...plainTfo.map((port) => ({ port, kind: 'tfo' as const })),
      { port: p.mptcp, kind: 'mptcp' },
      { port: p.tfoNoCookie, kind: 'tfo-no-cookie' },
      { port: BACKENDS.a, kind: 'tfo', tfoKey: KEY_A },
      { port: BACKENDS.b, kind: 'tfo', tfoKey: KEY_B },
      { port: p.stripTsSack, kind: 'tcp' },
      { port: p.stripAll, kind: 'tcp' },
    ],
    nftRules: () => [
      `add chain inet ${NFT_TABLE} input { type filter hook input priority filter; policy accept; }`,
      `add rule inet ${NFT_TABLE} input tcp dport ${p.silent} drop`,
      `add rule inet ${NFT_TABLE} input tcp dport ${p.dropEcnSyn} tcp flags & (syn | ack) == syn tcp flags & (ecn | cwr) != 0 drop`,
      `add rule inet ${NFT_TABLE} input tcp dport ${p.dropEct} ip ecn ect0 drop`,
      `add rule inet ${NFT_TABLE} input tcp dport ${p.dropEct} ip6 ecn ect0 drop`,
      // AE is the lowest bit of the byte holding the data offset (bit 103 of the TCP header).
      `add rule inet ${NFT_TABLE} input tcp dport ${p.dropAeSyn} tcp flags & (syn | ack) == syn @th,103,1 1 drop`,
      // A segment with payload and without SYN: "is there a payload byte?" as in lab/profiles/firewall.ts.
      `add rule inet ${NFT_TABLE} input tcp dport ${p.dropRequests} tcp flags & syn == 0 @ih,0,8 & 0x0 == 0x0 drop`,
      // A round-robin balancer (new connections alternate) in front of two TFO backends with their own keys.
      `add chain inet ${NFT_TABLE} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
      `add rule inet ${NFT_TABLE} prerouting meta nfproto ipv4 tcp dport ${p.tfoUnsharedKeys} redirect to : numgen inc mod 2 map { 0 : ${BACKENDS.a}, 1 : ${BACKENDS.b} }`,
      `add rule inet ${NFT_TABLE} prerouting meta nfproto ipv6 tcp dport ${p.tfoUnsharedKeys} redirect to : numgen inc mod 2 map { 0 : ${BACKENDS.a}, 1 : ${BACKENDS.b} }`,
    ],
    commands: () => ['iptables', 'ip6tables'].flatMap((bin) => [
      ...['200', '253'].map((kind) => [bin, '-w', '-A', 'INPUT', '-p', 'tcp', '--dport', String(p.dropUnknownOptions), '--syn', '-m', 'tcp', '--tcp-option', kind, '-j', 'DROP']),
      [bin, '-w', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '--dport', String(p.stripTsSack), '--syn', '-j', 'TCPOPTSTRIP', '--strip-options', 'timestamp,sack-permitted'],
      [bin, '-w', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'tcp', '--dport', String(p.stripAll), '--syn', '-j', 'TCPOPTSTRIP', '--strip-options', 'timestamp,sack-permitted,wscale'],
    ]),
    ports: Object.entries(p).map(([description, port]) => ({ port, description })),
  };
}

/** Servers with no TFO, MPTCP or ECN at all. */
function plain(): ServerConfig {
  return {
    name: 'plain',
    description: 'A Linux server with TFO, MPTCP and ECN off',
    sysctls: { 'net.ipv4.tcp_fastopen': '0', 'net.mptcp.enabled': '0', 'net.ipv4.tcp_ecn': '0' },
    listeners: [{ port: 80, kind: 'tcp' }, { port: 443, kind: 'tcp' }],
    ports: [{ port: 80, description: 'tcp' }, { port: 443, description: 'tcp' }],
  };
}

/** An AccECN server: the kernel's where it has AccECN, else the handshake in user space. */
function accecn(): ServerConfig {
  return {
    name: 'accecn',
    description: 'An AccECN server (RFC 9768) on port 80: Linux\'s own with net.ipv4.tcp_ecn 3 where the kernel offers it, else lab/daemons/accecn-server',
    sysctls: {},
    listeners: [],
    ports: [{ port: 80, description: 'accecn' }],
    accecnPort: 80,
  };
}

export const SERVER_CONFIGS: Readonly<Record<string, ServerConfig>> = Object.freeze(Object.fromEntries([features(), plain(), accecn()].map((c) => [c.name, c])));

export interface RunningServers {
  config: ServerConfig;
  /** Who answers on accecnPort: the kernel (AccECN in this kernel's TCP) or the user-space daemon. */
  accecnBy?: 'kernel' | 'user-space';
  stop(): Promise<void>;
}

/** Does this kernel's TCP offer AccECN? (net.ipv4.tcp_ecn accepts 3 from Linux 6.19 on; set here in the namespace, where it stays if so.) */
async function enableKernelAccecn(lab: Lab): Promise<boolean> {
  const result = await lab.exec(lab.namespaces.responder, ['sysctl', '-q', '-w', 'net.ipv4.tcp_ecn=3'], { allowFailure: true });
  return result.code === 0;
}

/** Configures the lab's responder namespace as `config` says and starts its listeners; resolves once they listen. */
export async function startServers(lab: Lab, config: ServerConfig): Promise<RunningServers> {
  const ns = lab.namespaces.responder;
  for (const [key, value] of Object.entries(config.sysctls)) await lab.exec(ns, ['sysctl', '-q', '-w', `${key}=${value}`]);
  const rules = config.nftRules?.(lab) ?? [];
  if (rules.length) await lab.exec(ns, nft([`add table inet ${NFT_TABLE}`, ...rules]));
  for (const argv of config.commands?.(lab) ?? []) await lab.exec(ns, argv);
  const listeners = [...config.listeners];
  const children: ChildProcess[] = [];
  let accecnBy: RunningServers['accecnBy'];
  if (config.accecnPort !== undefined) {
    if (await enableKernelAccecn(lab)) {
      accecnBy = 'kernel';
      listeners.push({ port: config.accecnPort, kind: 'tcp' });
    } else {
      accecnBy = 'user-space';
      // The daemon answers from user space; the namespace's kernel must not answer the port too.
      await lab.exec(ns, nft([`add table inet ${NFT_TABLE}_accecn`, `add chain inet ${NFT_TABLE}_accecn input { type filter hook input priority filter; policy accept; }`,
        `add rule inet ${NFT_TABLE}_accecn input tcp dport ${config.accecnPort} drop`]));
      children.push(await started(lab, ns, [process.execPath, daemonScript('accecn-server'), '--iface', lab.interfaces.responder, '--port', String(config.accecnPort), '--exit-on-stdin-end']));
    }
  }
  if (listeners.length) children.push(await started(lab, ns, ['python3', join(projectRoot(), 'lab', 'daemons', 'servers.py')], `${JSON.stringify(listeners)}\n`));
  return {
    config,
    accecnBy,
    stop: async () => {
      await Promise.all(children.map((child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      })));
    },
  };
}

/** Spawns a server daemon in the namespace and resolves once it prints `ready`. */
async function started(lab: Lab, ns: string, argv: string[], input?: string): Promise<ChildProcess> {
  const child = lab.spawn(ns, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} did not start within 10 s: ${stderr}`)), 10_000);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited with ${code}: ${stderr}`));
    });
    if (input !== undefined) child.stdin!.write(input);
  });
  return child;
}

/**
 * `count` more addresses for the servers, on the responder's own interface and within its own
 * prefixes (so the middlebox reaches them on its link, no route is added): up to 200 IPv4 addresses
 * (198.19.<id>.10 - .209), the rest IPv6 (fd6d:6270:<id>:2::1:0 and up). For the benchmark's 1,000
 * targets. Call it before startServers: the listeners' queues are sized when they start.
 */
export async function addServerAddresses(lab: Lab, count: number): Promise<string[]> {
  const v4 = Math.min(200, count);
  const prefix4 = lab.addresses.responder.split('.').slice(0, 3).join('.');
  const prefix6 = lab.addresses.responder6.replace(/::2$/, '');
  const addresses = [
    ...Array.from({ length: v4 }, (_, i) => `${prefix4}.${10 + i}`),
    ...Array.from({ length: count - v4 }, (_, i) => `${prefix6}::1:${i.toString(16)}`),
  ];
  // One kernel stands in for all these servers: queues sized for the SYNs of all of them at once, so
  // that a fast scan does not look like a SYN flood to it (SYN cookies carry no TFO cookie).
  for (const [key, value] of [['net.core.somaxconn', '65535'], ['net.ipv4.tcp_max_syn_backlog', '65535']]) {
    await lab.exec(lab.namespaces.responder, ['sysctl', '-q', '-w', `${key}=${value}`]);
  }
  const dev = lab.interfaces.responder;
  const batch = addresses.map((a) => `address add ${a}/${a.includes(':') ? 64 : 24} dev ${dev}${a.includes(':') ? ' nodad' : ''}`).join('\n');
  await lab.exec(lab.namespaces.responder, ['ip', '-batch', '-'], { input: `${batch}\n` });
  // The middlebox keeps a neighbour entry per address: room for all of them.
  for (const family of ['ipv4', 'ipv6']) {
    for (const [knob, value] of [['gc_thresh1', '4096'], ['gc_thresh2', '8192'], ['gc_thresh3', '16384']]) {
      await lab.exec(lab.namespaces.middlebox, ['sysctl', '-q', '-w', `net.${family}.neigh.default.${knob}=${value}`], { allowFailure: true });
    }
  }
  return addresses;
}
