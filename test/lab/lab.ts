/**
 * mbprobe lab: a three-namespace path  initiator — middlebox — responder
 * where the middlebox is a real Linux netfilter box configured per profile.
 *
 *   mbp<id>-ini            mbp<id>-mb                    mbp<id>-rsp
 *   ini0 ──veth── mb-left [nftables/iptables] mb-right ──veth── rsp0
 *   198.18.<id>.2   198.18.<id>.1     198.19.<id>.1   198.19.<id>.2
 *   fd6d:6270:<id>:1::2   …:1::1        …:2::1        fd6d:6270:<id>:2::2
 *
 * All addresses come from the RFC 2544 benchmarking range (IPv4) and a ULA
 * prefix (IPv6) and exist only inside the lab's own namespaces; nothing is
 * created in, or routed to, the host's namespace.
 *
 * Bookkeeping: /run/mbprobe-lab/<id>.pid holds the creating pid (first line)
 * plus its start time, the profile name and whether the lab is persistent
 * (started by `scripts/lab up`, outlives its creator).  Id allocation and
 * stale-lab removal are serialised across processes with flock(1) on
 * /run/mbprobe-lab/.lock (the lock dies with its holder, so there is never a
 * stale lock).
 */
import { spawn as spawnChild, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promises as fsp, readFileSync, readdirSync, readlinkSync, statSync, unlinkSync, existsSync, openSync, closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { relayArgv, RELAY_SOURCE } from './relay.js';

// ---------------------------------------------------------------------------
// Public types

export interface LabAddresses {
  initiator: string;
  responder: string;
  middleboxLeft: string;
  middleboxRight: string;
  initiator6: string;
  responder6: string;
  middleboxLeft6: string;
  middleboxRight6: string;
}

export interface LabExecOptions {
  input?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
}

export interface LabExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface Lab {
  /** 0..63, chosen free automatically unless given */
  id: number;
  profile: LabProfile;
  namespaces: { initiator: string; middlebox: string; responder: string };
  /** interface names inside their namespaces */
  interfaces: { initiator: string; middleboxLeft: string; middleboxRight: string; responder: string };
  addresses: LabAddresses;
  /** true for labs created with `keep` (scripts/lab up): they outlive their creator */
  persistent: boolean;
  /**
   * Run `ip netns exec <ns> ...argv` and collect its output.  `ns` is one of
   * the lab's namespace names, or a role: 'initiator' | 'middlebox' |
   * 'responder'.  Throws LabError (code 'ECOMMAND', with stderr) on a non-zero
   * exit and LabError 'ETIMEDOUT' on timeout (the process is SIGKILLed),
   * unless allowFailure is set, in which case the exit code is returned
   * (124 on timeout, 128+signal when killed by a signal).
   */
  exec(ns: string, argv: string[], opts?: LabExecOptions): Promise<LabExecResult>;
  /** runs `ip netns exec ns ...argv`; the process is killed by destroy() */
  spawn(ns: string, argv: string[], opts?: SpawnOptions): ChildProcess;
  /** idempotent; kills spawned processes (and anything else left in the namespaces), deletes the namespaces */
  destroy(): Promise<void>;
}

export interface LabProfile {
  name: string;
  description: string;
  /** commands run inside the middlebox namespace after the path is up */
  setup(lab: Lab): string[][];
  /** long-running programs on the middlebox (e.g. a relay), started after setup */
  daemons?(lab: Lab): string[][];
  /** TCP ports the daemons listen on in the middlebox; createLab waits until each is listening for the given families */
  listens?(lab: Lab): Array<{ port: number; family: 4 | 6 }>;
  /** a line every daemon prints on stdout once it works (e.g. its captures are open); createLab waits for it */
  readyLine?: string;
}

export class LabError extends Error {
  code: string;
  stderr?: string;
  argv?: string[];
  exitCode?: number;
  constructor(code: string, message: string, extra: { stderr?: string; argv?: string[]; exitCode?: number } = {}) {
    super(message);
    this.name = 'LabError';
    this.code = code;
    if (extra.stderr !== undefined) this.stderr = extra.stderr;
    if (extra.argv !== undefined) this.argv = extra.argv;
    if (extra.exitCode !== undefined) this.exitCode = extra.exitCode;
  }
}

// ---------------------------------------------------------------------------
// Constants and naming

/** TCP ports the profiles treat as "under test" */
export const LAB_PORTS: readonly number[] = [34343, 80, 443];
export const MAX_LAB_ID = 63;
export const LAB_RUN_DIR = '/run/mbprobe-lab';
const LOCK_PATH = `${LAB_RUN_DIR}/.lock`;
const NETNS_DIR = '/run/netns';
const NS_NAME_RE = /^mbp(\d{1,2})-(ini|mb|rsp)$/;
/** relay port on the middlebox for LAB_PORTS[i] in the split-proxy profile */
export const RELAY_PORT_BASE = 41000;
/** nftables table / iptables chain name used by every profile */
export const NFT_TABLE = 'mbprobe';
export const IPT_CHAIN = 'MBPROBE';

export const LAB_INTERFACES = Object.freeze({
  initiator: 'ini0',
  middleboxLeft: 'mb-left',
  middleboxRight: 'mb-right',
  responder: 'rsp0',
});

export function labNamespaces(id: number): Lab['namespaces'] {
  return { initiator: `mbp${id}-ini`, middlebox: `mbp${id}-mb`, responder: `mbp${id}-rsp` };
}

export function labAddresses(id: number): LabAddresses {
  // the id is written with decimal digits in the third IPv6 group as well
  // (lab 12 -> fd6d:6270:12::/48), which keeps v4 and v6 visually aligned
  return {
    initiator: `198.18.${id}.2`,
    middleboxLeft: `198.18.${id}.1`,
    middleboxRight: `198.19.${id}.1`,
    responder: `198.19.${id}.2`,
    initiator6: `fd6d:6270:${id}:1::2`,
    middleboxLeft6: `fd6d:6270:${id}:1::1`,
    middleboxRight6: `fd6d:6270:${id}:2::1`,
    responder6: `fd6d:6270:${id}:2::2`,
  };
}

// ---------------------------------------------------------------------------
// Profiles

const OFFLOADS = ['tso', 'gso', 'gro', 'lro', 'tx', 'rx', 'sg'];
const portList = (): string => LAB_PORTS.join(',');

/** `nft` invocation applying a newline separated script (one argv element) */
function nft(lines: string[]): string[] {
  return ['nft', lines.join('\n')];
}

/** iptables+ip6tables commands creating chain MBPROBE in `table`, jumped to from `hook` */
function iptChain(table: string, hook: string, rules: string[][], jumpMatch: string[] = []): string[][] {
  const out: string[][] = [];
  for (const bin of ['iptables', 'ip6tables']) {
    out.push([bin, '-w', '-t', table, '-N', IPT_CHAIN]);
    for (const r of rules) out.push([bin, '-w', '-t', table, '-A', IPT_CHAIN, ...r]);
    out.push([bin, '-w', '-t', table, '-A', hook, ...jumpMatch, '-j', IPT_CHAIN]);
  }
  return out;
}

function clean(): LabProfile {
  return {
    name: 'clean',
    description: 'A plain IP router: forwards both directions and changes nothing (the control path).',
    setup: () => [],
  };
}

/** Source NAT of the initiator behind the middlebox's right address (IPv4, and NAT66 for IPv6). */
function masquerade(name: string, description: string, flags: string): LabProfile {
  return {
    name,
    description,
    setup: (lab) => {
      const right = lab.interfaces.middleboxRight;
      return [
        nft([
          `add table inet ${NFT_TABLE}`,
          `add chain inet ${NFT_TABLE} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
          `add rule inet ${NFT_TABLE} postrouting oifname "${right}" ip saddr 198.18.${lab.id}.0/24 masquerade${flags}`,
          `add rule inet ${NFT_TABLE} postrouting oifname "${right}" ip6 saddr fd6d:6270:${lab.id}:1::/64 masquerade${flags}`,
        ]),
      ];
    },
  };
}

const nat = (): LabProfile => masquerade('nat',
  'A home router / carrier-grade NAT: source NAT (masquerade, fully random ports) of the initiator behind the middlebox right address, IPv4 and IPv6 (NAT66).',
  ' fully-random');

const natKeepPort = (): LabProfile => masquerade('nat-keep-port',
  'A port-preserving home router NAT (plain Linux masquerade): source NAT of the initiator behind the middlebox right address, keeping its source port whenever it is free, IPv4 and IPv6 (NAT66).',
  '');

/** the source ports port-rewrite maps test connections to (outside Linux's ephemeral range, so always a change) */
export const PORT_REWRITE_RANGE = [61000, 61999] as const;

function portRewrite(): LabProfile {
  return {
    name: 'port-rewrite',
    description: `A routing firewall that randomises source ports but not addresses (port-only translation on a routed path): the initiator's source port of connections to the test ports becomes one of ${PORT_REWRITE_RANGE.join('-')}, its address stays.`,
    setup: (lab) => {
      const right = lab.interfaces.middleboxRight;
      const [lo, hi] = PORT_REWRITE_RANGE;
      return [
        nft([
          `add table inet ${NFT_TABLE}`,
          `add chain inet ${NFT_TABLE} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
          `add rule inet ${NFT_TABLE} postrouting oifname "${right}" ip saddr ${lab.addresses.initiator} tcp dport { ${portList()} } snat ip to ${lab.addresses.initiator}:${lo}-${hi}`,
          `add rule inet ${NFT_TABLE} postrouting oifname "${right}" ip6 saddr ${lab.addresses.initiator6} tcp dport { ${portList()} } snat ip6 to [${lab.addresses.initiator6}]:${lo}-${hi}`,
        ]),
      ];
    },
  };
}

function stripOptions(): LabProfile {
  return {
    name: 'strip-options',
    description:
      'A firewall/IPS that scrubs TCP options it does not know: replaces option kinds 200 (unassigned), 30 (MPTCP) and 34 (TFO) with NOPs in both directions.',
    setup: () => iptChain('mangle', 'FORWARD', [['-p', 'tcp', '-j', 'TCPOPTSTRIP', '--strip-options', '200,30,34']]),
  };
}

function stripTimestampsSack(): LabProfile {
  return {
    name: 'strip-timestamps-sack',
    description:
      'An old load balancer / "TCP normaliser" that removes timestamps (8) and SACK-permitted (4) options from every segment in both directions.',
    setup: () =>
      iptChain('mangle', 'FORWARD', [['-p', 'tcp', '-j', 'TCPOPTSTRIP', '--strip-options', 'timestamp,sack-permitted']]),
  };
}

function mssClamp(): LabProfile {
  return {
    name: 'mss-clamp',
    description: 'A PPPoE/VPN access router clamping the MSS of SYNs in both directions to 536 (never raising it).',
    setup: () =>
      iptChain('mangle', 'FORWARD', [['-p', 'tcp', '--tcp-flags', 'SYN,RST', 'SYN', '-j', 'TCPMSS', '--set-mss', '536']]),
  };
}

function dropSynData(): LabProfile {
  return {
    name: 'drop-syn-data',
    description:
      'A firewall that silently drops SYNs carrying payload (breaks TCP Fast Open data-in-SYN; the client falls back to a plain SYN).',
    setup: () => [
      nft([
        `add table inet ${NFT_TABLE}`,
        `add counter inet ${NFT_TABLE} syn_data`,
        `add chain inet ${NFT_TABLE} forward { type filter hook forward priority filter; policy accept; }`,
        // "Is there a payload byte?": @ih is the data after the TCP header (nft computes its offset from
        // the data offset); loading one byte of it fails, so the rule does not match, when there is none.
        // (A length test such as `ip length > 80` misses short SYN data: a Linux TFO SYN with an
        // 8-byte cookie has a 52-byte TCP header, so up to 8 bytes of data stay within 80.)
        `add rule inet ${NFT_TABLE} forward tcp flags & (syn | ack) == syn @ih,0,8 & 0x0 == 0x0 counter name "syn_data" drop`,
      ]),
    ],
  };
}

function synproxy(): LabProfile {
  return {
    name: 'synproxy',
    description:
      'A DDoS-protecting firewall (SYNPROXY): answers the SYN itself with a cookie SYN-ACK, connects to the server only after the handshake and then translates sequence numbers.',
    setup: (lab) => {
      const left = lab.interfaces.middleboxLeft;
      const ports = portList();
      return [
        ['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_tcp_loose=0'],
        ...iptChain(
          'raw',
          'PREROUTING',
          [['-p', 'tcp', '-m', 'multiport', '--dports', ports, '--syn', '-j', 'CT', '--notrack']],
          ['-i', left],
        ),
        ...iptChain('filter', 'FORWARD', [
          ['-i', left, '-p', 'tcp', '-m', 'multiport', '--dports', ports,
            '-m', 'conntrack', '--ctstate', 'INVALID,UNTRACKED',
            '-j', 'SYNPROXY', '--sack-perm', '--timestamp', '--wscale', '7', '--mss', '1460'],
          ['-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'],
        ]),
      ];
    },
  };
}

function splitProxy(): LabProfile {
  return relayProfile(
    'split-proxy',
    'A transparent split-connection proxy (WAN optimiser / mobile "TCP accelerator"): intercepts connections to ports 34343/80/443 and relays them over its own connection to the responder.',
  );
}

/** SYNs of the relay's own connections (both directions on the right side) clamped to this MSS */
export const RESEGMENT_MSS = 536;

function resegmentingProxy(): LabProfile {
  return relayProfile(
    'resegmenting-proxy',
    `A performance-enhancing proxy (satellite/mobile PEP) that relays connections to ports 34343/80/443 over its own connection with MSS ${RESEGMENT_MSS} and Nagle on, so full-sized segments reach the responder in pieces and small back-to-back ones coalesced.`,
    { mss: RESEGMENT_MSS, nagle: true },
  );
}

/**
 * The relay (test/lab/relay.ts) behind a redirect of the test ports.  `mss`: the SYN and SYN-ACK
 * of the relay's connection to the responder are clamped to it (TCPMSS in OUTPUT and INPUT of
 * the right interface), so the relay sends and receives small segments; `nagle`: the relay's
 * upstream socket keeps Nagle's algorithm on, so small writes coalesce.
 */
function relayProfile(name: string, description: string, opts: { mss?: number; nagle?: boolean } = {}): LabProfile {
  const routes = (lab: Lab) =>
    LAB_PORTS.map((port, i) => ({
      listenPort: RELAY_PORT_BASE + i,
      targetPort: port,
      host4: lab.addresses.responder,
      host6: lab.addresses.responder6,
    }));
  const clamp = (lab: Lab): string[][] =>
    opts.mss === undefined
      ? []
      : ['iptables', 'ip6tables'].flatMap((bin) => [
          [bin, '-w', '-t', 'mangle', '-N', IPT_CHAIN],
          [bin, '-w', '-t', 'mangle', '-A', IPT_CHAIN, '-p', 'tcp', '--tcp-flags', 'SYN,RST', 'SYN', '-j', 'TCPMSS', '--set-mss', String(opts.mss)],
          [bin, '-w', '-t', 'mangle', '-A', 'OUTPUT', '-o', lab.interfaces.middleboxRight, '-j', IPT_CHAIN],
          [bin, '-w', '-t', 'mangle', '-A', 'INPUT', '-i', lab.interfaces.middleboxRight, '-j', IPT_CHAIN],
        ]);
  const withNagle = (argv: string[]): string[] => {
    if (!opts.nagle) return argv;
    const on = RELAY_SOURCE.replace('upstream.setNoDelay(true);', 'upstream.setNoDelay(false);');
    if (on === RELAY_SOURCE) throw new LabError('EPROFILE', `${name}: cannot turn Nagle on in the relay source`);
    return argv.map((a) => (a === RELAY_SOURCE ? on : a));
  };
  return {
    name,
    description,
    setup: (lab) => [
      ...clamp(lab),
      nft([
        `add table inet ${NFT_TABLE}`,
        `add chain inet ${NFT_TABLE} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
        ...routes(lab).map(
          (r) =>
            `add rule inet ${NFT_TABLE} prerouting iifname "${lab.interfaces.middleboxLeft}" tcp dport ${r.targetPort} redirect to :${r.listenPort}`,
        ),
      ]),
    ],
    daemons: (lab) => [withNagle(relayArgv({ routes: routes(lab), exitOnStdinEnd: !lab.persistent }))],
    listens: (lab) =>
      routes(lab).flatMap((r) => [
        { port: r.listenPort, family: 4 as const },
        { port: r.listenPort, family: 6 as const },
      ]),
  };
}

function ecnDscpBleach(): LabProfile {
  return {
    name: 'ecn-dscp-bleach',
    description:
      'An access/edge router that re-marks all traffic to best effort: clears DSCP and the ECN field of every forwarded packet and the ECE/CWR flags of SYNs (no ECN negotiation).',
    setup: () => {
      const t = `inet ${NFT_TABLE}`;
      const syn = 'tcp flags & (fin | syn | rst | ack) == syn tcp flags & (ecn | cwr) != 0';
      const synAck = 'tcp flags & (fin | syn | rst | ack) == (syn | ack) tcp flags & (ecn | cwr) != 0';
      return [
        nft([
          `add table ${t}`,
          `add chain ${t} forward { type filter hook forward priority mangle; policy accept; }`,
          `add rule ${t} forward ip dscp != cs0 ip dscp set cs0`,
          `add rule ${t} forward ip ecn != not-ect ip ecn set not-ect`,
          `add rule ${t} forward ip6 dscp != cs0 ip6 dscp set cs0`,
          `add rule ${t} forward ip6 ecn != not-ect ip6 ecn set not-ect`,
          // IPv6 has no ECN xt target; rewriting the whole flag byte lets nft fix the TCP checksum
          // (a raw @th bit write would not).  Handshake segments never carry URG/PSH, so nothing else is lost.
          `add rule ${t} forward meta nfproto ipv6 ${syn} tcp flags set syn`,
          `add rule ${t} forward meta nfproto ipv6 ${synAck} tcp flags set syn | ack`,
        ]),
        ['iptables', '-w', '-t', 'mangle', '-N', IPT_CHAIN],
        ['iptables', '-w', '-t', 'mangle', '-A', IPT_CHAIN, '-p', 'tcp', '--tcp-flags', 'SYN', 'SYN', '-j', 'ECN', '--ecn-tcp-remove'],
        ['iptables', '-w', '-t', 'mangle', '-A', 'FORWARD', '-j', IPT_CHAIN],
      ];
    },
  };
}

function statefulFirewall(): LabProfile {
  return {
    name: 'stateful-firewall',
    description:
      'An enterprise stateful firewall: forwards established/related traffic and new connections that start with a proper SYN, drops conntrack-invalid segments (out of window, ACKs of unseen data) and everything else.',
    setup: () => {
      const t = `inet ${NFT_TABLE}`;
      return [
        ['sysctl', '-q', '-w', 'net.netfilter.nf_conntrack_tcp_loose=0'],
        nft([
          `add table ${t}`,
          `add counter ${t} invalid`,
          `add counter ${t} blocked`,
          `add chain ${t} forward { type filter hook forward priority filter; policy drop; }`,
          `add rule ${t} forward ct state invalid counter name "invalid" drop`,
          `add rule ${t} forward ct state established,related accept`,
          `add rule ${t} forward ct state new tcp flags & (fin | syn | rst | ack) == syn accept`,
          `add rule ${t} forward ct state new icmp type echo-request accept`,
          `add rule ${t} forward ct state new icmpv6 type echo-request accept`,
          `add rule ${t} forward counter name "blocked" drop`,
        ]),
      ];
    },
  };
}

function stripSynOptions(): LabProfile {
  return {
    name: 'strip-syn-options',
    description:
      'A misconfigured firewall/IPS that removes the MSS (2) and window-scale (3) options from SYNs in both directions, so both ends fall back to the default MSS and unscaled windows.',
    setup: () =>
      iptChain('mangle', 'FORWARD', [['-p', 'tcp', '--tcp-flags', 'SYN', 'SYN', '-j', 'TCPOPTSTRIP', '--strip-options', 'mss,wscale']]),
  };
}

function dscpEcnRemark(): LabProfile {
  return {
    name: 'dscp-ecn-remark',
    description:
      'A provider-edge router that does not trust customer markings and mangles ECN: re-marks every non-zero DSCP to CS1 (lower effort) and turns ECT(0) into ECT(1).',
    setup: () => {
      const t = `inet ${NFT_TABLE}`;
      // nft keeps the IPv4 header checksum right when it rewrites dscp/ecn (and TCP does not cover the TOS byte)
      return [
        nft([
          `add table ${t}`,
          `add chain ${t} forward { type filter hook forward priority mangle; policy accept; }`,
          `add rule ${t} forward ip dscp != { cs0, cs1 } ip dscp set cs1`,
          `add rule ${t} forward ip ecn ect0 ip ecn set ect1`,
          `add rule ${t} forward ip6 dscp != { cs0, cs1 } ip6 dscp set cs1`,
          `add rule ${t} forward ip6 ecn ect0 ip6 ecn set ect1`,
        ]),
      ];
    },
  };
}

/** the compiled rewriter, dist/test/lab/rewriter.js of the project (whether this module runs from test/lab or from dist) */
function rewriterScript(): string {
  let root = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
  const script = join(root, 'dist', 'test', 'lab', 'rewriter.js');
  if (!existsSync(script)) throw new LabError('EBUILD', `the lab rewriter is not built (${script} is missing): run npm run build`);
  return script;
}

/**
 * A profile run by test/lab/rewriter.ts: the forward chain drops the test traffic (TCP to the test
 * ports from the left, from them on the right; counter "diverted") and the rewriter, which
 * captured it before netfilter, sends rewritten copies.
 */
function rewriterProfile(name: string, transforms: string[], description: string): LabProfile {
  return {
    name,
    description,
    setup: (lab) => {
      const t = `inet ${NFT_TABLE}`;
      const ports = `{ ${LAB_PORTS.join(', ')} }`;
      return [
        nft([
          `add table ${t}`,
          `add counter ${t} diverted`,
          `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
          // exactly what the rewriter's pcap filter (`tcp and dst port ...`) sees: no IPv6 extension headers
          ...['ip protocol', 'ip6 nexthdr'].flatMap((proto) => [
            `add rule ${t} forward iifname "${lab.interfaces.middleboxLeft}" ${proto} tcp tcp dport ${ports} counter name "diverted" drop`,
            `add rule ${t} forward iifname "${lab.interfaces.middleboxRight}" ${proto} tcp tcp sport ${ports} counter name "diverted" drop`,
          ]),
        ]),
      ];
    },
    daemons: (lab) => [
      [
        process.execPath,
        rewriterScript(),
        '--left',
        lab.interfaces.middleboxLeft,
        '--right',
        lab.interfaces.middleboxRight,
        '--transform',
        transforms.join(','),
        ...(lab.persistent ? [] : ['--exit-on-stdin-end']),
      ],
    ],
    readyLine: 'ready',
  };
}

const rewriterProfiles = (): LabProfile[] => [
  rewriterProfile(
    'rewrite-isn-forward',
    ['isn-shift-forward'],
    "A firewall randomising the sequence numbers of the hosts on its inside, here the initiator (Cisco ASA's default TCP sequence-number randomisation): shifts the initiator's sequence numbers by 0x01000000 and the responder's acks back.",
  ),
  rewriterProfile(
    'rewrite-isn-reverse',
    ['isn-shift-reverse'],
    "A firewall in front of the server randomising its sequence numbers with the classic bug (older Cisco PIX/ASA): shifts the responder's sequence numbers by 0x01000000 and the initiator's acks back, but not the initiator's SACK blocks.",
  ),
  rewriterProfile(
    'rewrite-isn-reverse-sack',
    ['isn-shift-reverse-sack'],
    "A firewall in front of the server randomising its sequence numbers done right (like OpenBSD pf's modulate state): shifts the responder's sequence numbers by 0x01000000 and translates the initiator's acks and SACK blocks back.",
  ),
  rewriterProfile(
    'rewrite-options',
    ['option-modify'],
    "A middlebox that rewrites TCP options in flight both ways (MSS 1460 to 1400, window scale one less, an MPTCP flag flipped, a TFO cookie request turned into a cookie, unknown option bytes inverted) and offsets the initiator's timestamps like an uptime-hiding load balancer.",
  ),
  rewriterProfile(
    'rewrite-window',
    ['window-rewrite'],
    'A traffic shaper doing TCP rate control by window rewriting (PacketShaper-style): writes a fixed window of 8192 into every segment in both directions.',
  ),
  rewriterProfile(
    'rewrite-clear-urg',
    ['clear-urg-reserved'],
    'A firewall TCP normaliser (like Cisco ASA tcp-map urgent-flag clear / reserved-bits clear) that clears URG and the urgent pointer, the reserved bits and AE in both directions.',
  ),
  rewriterProfile(
    'normalizer',
    ['ack-correct', 'old-data'],
    "An inline IPS's TCP normaliser (Snort/Suricata style): lowers an ACK of data the responder never sent to what it sent and makes inconsistent retransmissions carry the first transmission's bytes.",
  ),
  rewriterProfile(
    'resizing-normalizer',
    ['resize-retransmission'],
    'A stream-reassembling IPS that keeps the segment boundaries it saw first: a retransmission longer than the original segment is forwarded cut to the original length (with the new bytes).',
  ),
];

export const PROFILES: Record<string, LabProfile> = Object.fromEntries(
  [
    clean(),
    nat(),
    natKeepPort(),
    portRewrite(),
    stripOptions(),
    stripTimestampsSack(),
    mssClamp(),
    dropSynData(),
    synproxy(),
    splitProxy(),
    ecnDscpBleach(),
    statefulFirewall(),
    stripSynOptions(),
    dscpEcnRemark(),
    resegmentingProxy(),
    ...rewriterProfiles(),
  ].map((p) => [p.name, p]),
);

// ---------------------------------------------------------------------------
// Small process helpers

interface RunOptions {
  input?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
}

const shq = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const cmdText = (argv: string[]): string => argv.map(shq).join(' ');

function signalExitCode(signal: NodeJS.Signals | null): number {
  if (!signal) return 1;
  const n = (osConstants.signals as Record<string, number>)[signal];
  return 128 + (n ?? 0);
}

/** spawn argv (host namespace, or wrapped by the caller), collect output */
function collect(child: ChildProcess, argv: string[], opts: RunOptions): Promise<LabExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new LabError('ESPAWN', `cannot run ${cmdText(argv)}: ${e.message}`, { argv }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      const rc = timedOut ? 124 : code ?? signalExitCode(signal);
      if (rc !== 0 && !opts.allowFailure) {
        const why = timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited with ${rc}`;
        reject(
          new LabError(timedOut ? 'ETIMEDOUT' : 'ECOMMAND', `${cmdText(argv)} ${why}${stderr ? `: ${stderr.trim()}` : ''}`, {
            stderr,
            argv,
            exitCode: rc,
          }),
        );
        return;
      }
      resolve({ stdout, stderr, code: rc });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {
        /* the process may exit without reading its input */
      });
      child.stdin.end(opts.input ?? '');
    }
  });
}

/** run a command in the host namespace (only ever iproute2 / flock / ss style management commands) */
function run(argv: string[], opts: RunOptions = {}): Promise<LabExecResult> {
  const child = spawnChild(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, argv, opts);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Bookkeeping: pid files, lock, stale labs

interface PidInfo {
  id: number;
  pid: number;
  start?: string;
  profile?: string;
  persistent: boolean;
}

const pidPath = (id: number) => `${LAB_RUN_DIR}/${id}.pid`;
const logPath = (id: number) => `${LAB_RUN_DIR}/${id}.log`;

/** start time (clock ticks since boot) of a process, undefined if it does not exist */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function readPidFile(id: number): PidInfo | undefined {
  let text: string;
  try {
    text = readFileSync(pidPath(id), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const info: PidInfo = { id, pid: Number.isFinite(pid) ? pid : -1, persistent: false };
  for (const line of lines.slice(1)) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (k === 'start') info.start = v;
    else if (k === 'profile') info.profile = v;
    else if (k === 'persistent') info.persistent = v === '1';
  }
  return info;
}

function ownerAlive(info: PidInfo): boolean {
  if (info.persistent) return true;
  if (info.pid <= 0) return false;
  const start = processStart(info.pid);
  if (start === undefined) return false;
  return info.start === undefined || info.start === start;
}

function pidFileIds(): number[] {
  let names: string[];
  try {
    names = readdirSync(LAB_RUN_DIR);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = /^(\d{1,2})\.pid$/.exec(n);
    return m ? [Number(m[1])] : [];
  });
}

/** lab namespaces present in /run/netns, grouped by id */
function labNamespaceNames(): Map<number, string[]> {
  const byId = new Map<number, string[]>();
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    /* no namespaces at all */
  }
  for (const n of names) {
    const m = NS_NAME_RE.exec(n);
    if (!m) continue;
    const id = Number(m[1]);
    if (id > MAX_LAB_ID) continue;
    byId.set(id, [...(byId.get(id) ?? []), n]);
  }
  return byId;
}

/** pids of all processes whose network namespace is one of `names` (never our own) */
function namespacePids(names: string[]): number[] {
  const inodes = new Set<number>();
  for (const n of names) {
    try {
      inodes.add(statSync(`${NETNS_DIR}/${n}`).ino);
    } catch {
      /* gone already */
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/ns/net`));
      if (m && inodes.has(Number(m[1]))) pids.push(pid);
    } catch {
      /* exited, or a kernel thread */
    }
  }
  return pids;
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

const netnsDelBatch = (names: string[]) => names.map((n) => `netns del ${n}\n`).join('');

/** kill whatever runs in the namespaces, then delete them */
async function teardownNamespaces(names: string[]): Promise<void> {
  const present = names.filter((n) => existsSync(`${NETNS_DIR}/${n}`));
  if (present.length === 0) return;
  killPids(namespacePids(present));
  await run(['ip', '-force', '-batch', '-'], { input: netnsDelBatch(present), allowFailure: true });
}

function teardownNamespacesSync(names: string[]): void {
  const present = names.filter((n) => existsSync(`${NETNS_DIR}/${n}`));
  if (present.length === 0) return;
  killPids(namespacePids(present));
  try {
    execFileSync('ip', ['-force', '-batch', '-'], { input: netnsDelBatch(present), stdio: ['pipe', 'ignore', 'ignore'] });
  } catch {
    /* best effort at exit */
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}

/**
 * Hold an exclusive flock(1) on LOCK_PATH while fn runs.  The lock belongs to
 * a helper process that exits as soon as its stdin closes, so the lock is
 * released also when this process dies.
 */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  await fsp.mkdir(LAB_RUN_DIR, { recursive: true });
  const argv = ['flock', '-x', '-w', '30', LOCK_PATH, 'sh', '-c', 'echo locked; exec cat >/dev/null'];
  const helper = spawnChild(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => helper.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    let done = false;
    helper.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    helper.stdout?.on('data', (d: Buffer) => {
      if (!done && d.toString().includes('locked')) {
        done = true;
        resolve();
      }
    });
    helper.once('error', (e) => {
      done = true;
      reject(new LabError('ELOCK', `cannot run flock: ${e.message}`));
    });
    helper.once('close', (code) => {
      if (!done) reject(new LabError('ELOCK', `cannot lock ${LOCK_PATH} (flock exited ${code}) ${stderr.trim()}`, { stderr }));
    });
  });
  try {
    return await fn();
  } finally {
    helper.stdin?.end();
    await exited;
  }
}

/** under the lock: remove labs whose creator is dead and lab namespaces that have no pid file */
async function reapStaleLocked(): Promise<string[]> {
  const removed: string[] = [];
  const byId = labNamespaceNames();
  const ids = new Set<number>([...pidFileIds(), ...byId.keys()]);
  for (const id of [...ids].sort((a, b) => a - b)) {
    const info = readPidFile(id);
    if (info && ownerAlive(info)) continue;
    const names = byId.get(id) ?? [];
    await teardownNamespaces(names);
    removed.push(...names);
    unlinkQuiet(pidPath(id));
    unlinkQuiet(logPath(id));
  }
  return removed;
}

/**
 * Delete mbprobe lab namespaces whose creating process is dead (or that have
 * no pid file at all), killing any process still running in them.  Labs made
 * persistent by `scripts/lab up` are left alone.  Returns the deleted
 * namespace names.
 */
export async function removeStaleLabs(): Promise<string[]> {
  requireRoot();
  return withLock(reapStaleLocked);
}

export interface LabInfo {
  id: number;
  profile?: string;
  pid?: number;
  persistent: boolean;
  /** 'persistent' | 'in-use' | 'stale' */
  state: 'persistent' | 'in-use' | 'stale';
  namespaces: string[];
}

/** labs currently present (pid files and/or namespaces) */
export function listLabs(): LabInfo[] {
  const byId = labNamespaceNames();
  const ids = new Set<number>([...pidFileIds(), ...byId.keys()]);
  return [...ids]
    .sort((a, b) => a - b)
    .map((id) => {
      const info = readPidFile(id);
      const state: LabInfo['state'] = !info || !ownerAlive(info) ? 'stale' : info.persistent ? 'persistent' : 'in-use';
      const li: LabInfo = { id, persistent: info?.persistent ?? false, state, namespaces: (byId.get(id) ?? []).sort() };
      if (info?.profile) li.profile = info.profile;
      if (info && info.pid > 0) li.pid = info.pid;
      return li;
    });
}

/**
 * Tear down lab `id` regardless of who created it (scripts/lab down): kills
 * every process in its namespaces, deletes them and its pid file.  Returns the
 * deleted namespace names.
 */
export async function destroyLabById(id: number): Promise<string[]> {
  requireRoot();
  checkId(id);
  return withLock(async () => {
    const names = Object.values(labNamespaces(id)).filter((n) => existsSync(`${NETNS_DIR}/${n}`));
    await teardownNamespaces(names);
    unlinkQuiet(pidPath(id));
    unlinkQuiet(logPath(id));
    return names;
  });
}

// ---------------------------------------------------------------------------
// Live labs of this process (cleaned up synchronously at exit)

const liveLabs = new Set<LabImpl>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new LabError('EPERM', 'the mbprobe lab needs root (network namespaces, netfilter)');
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_LAB_ID) throw new LabError('EINVAL', `lab id must be an integer 0..${MAX_LAB_ID}, got ${id}`);
}

// ---------------------------------------------------------------------------
// The lab

class LabImpl implements Lab {
  readonly id: number;
  readonly profile: LabProfile;
  readonly namespaces: Lab['namespaces'];
  readonly interfaces: Lab['interfaces'];
  readonly addresses: LabAddresses;
  readonly persistent: boolean;
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | undefined;
  private destroyed = false;

  constructor(id: number, profile: LabProfile, persistent: boolean) {
    this.id = id;
    this.profile = profile;
    this.persistent = persistent;
    this.namespaces = labNamespaces(id);
    this.interfaces = { ...LAB_INTERFACES };
    this.addresses = labAddresses(id);
    liveLabs.add(this);
  }

  /** namespace name for a namespace name or role */
  resolveNs(ns: string): string {
    const byRole = (this.namespaces as Record<string, string>)[ns];
    if (byRole) return byRole;
    if (Object.values(this.namespaces).includes(ns)) return ns;
    throw new LabError('EINVAL', `${ns} is not a namespace of lab ${this.id} (${Object.values(this.namespaces).join(', ')})`);
  }

  private alive(): void {
    if (this.destroyed || this.destroying) throw new LabError('EDESTROYED', `lab ${this.id} has been destroyed`);
  }

  private track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  spawn(ns: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    this.alive();
    if (argv.length === 0) throw new LabError('EINVAL', 'spawn needs a command');
    const child = spawnChild('ip', ['netns', 'exec', this.resolveNs(ns), ...argv], opts);
    return this.track(child);
  }

  exec(ns: string, argv: string[], opts: LabExecOptions = {}): Promise<LabExecResult> {
    let full: string[];
    try {
      this.alive();
      if (argv.length === 0) throw new LabError('EINVAL', 'exec needs a command');
      full = ['ip', 'netns', 'exec', this.resolveNs(ns), ...argv];
    } catch (e) {
      return Promise.reject(e);
    }
    const child = this.track(spawnChild(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }));
    return collect(child, full, opts);
  }

  destroy(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    const kids = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    if (kids.length > 0) {
      const gone = Promise.all(kids.map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())))));
      for (const c of kids) c.kill('SIGTERM');
      const t = setTimeout(() => kids.forEach((c) => c.kill('SIGKILL')), 300);
      await gone;
      clearTimeout(t);
    }
    await teardownNamespaces(Object.values(this.namespaces));
    this.releasePidFile();
    this.destroyed = true;
    liveLabs.delete(this);
  }

  /** at process exit: nothing asynchronous can run any more */
  destroySync(): void {
    if (this.destroyed || this.persistent) return;
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    teardownNamespacesSync(Object.values(this.namespaces));
    this.releasePidFile();
    this.destroyed = true;
    liveLabs.delete(this);
  }

  private releasePidFile(): void {
    const info = readPidFile(this.id);
    if (info && (info.pid === process.pid || info.persistent)) {
      unlinkQuiet(pidPath(this.id));
      unlinkQuiet(logPath(this.id));
    }
  }

  // -- construction -------------------------------------------------------

  async build(): Promise<void> {
    const ns = this.namespaces;
    const ifs = this.interfaces;
    const a = this.addresses;
    // 1. namespaces and veth pairs, created directly inside the namespaces
    await run(['ip', '-batch', '-'], {
      input: [
        `netns add ${ns.initiator}`,
        `netns add ${ns.middlebox}`,
        `netns add ${ns.responder}`,
        `link add name ${ifs.middleboxLeft} netns ${ns.middlebox} type veth peer name ${ifs.initiator} netns ${ns.initiator}`,
        `link add name ${ifs.middleboxRight} netns ${ns.middlebox} type veth peer name ${ifs.responder} netns ${ns.responder}`,
        '',
      ].join('\n'),
      timeoutMs: 20_000,
    });
    // 2. per namespace, one shell: sysctls, offloads, addresses, routes
    const sys = (path: string, value: string) => `echo ${value} > /proc/sys/${path}`;
    const noDad = (devs: string[]) => [
      sys('net/ipv6/conf/all/accept_dad', '0'),
      sys('net/ipv6/conf/default/accept_dad', '0'),
      ...devs.map((d) => sys(`net/ipv6/conf/${d}/accept_dad`, '0')),
    ];
    const offload = (dev: string) => `ethtool -K ${dev} ${OFFLOADS.map((f) => `${f} off`).join(' ')} >/dev/null 2>&1 || true`;
    const ipBatch = (lines: string[]) => `ip -batch - <<'EOF'\n${lines.join('\n')}\nEOF`;
    const host = (dev: string, v4: string, v6: string, gw4: string, gw6: string) =>
      [
        'set -e',
        ...noDad([dev]),
        sys(`net/ipv6/conf/${dev}/router_solicitations`, '0'),
        offload(dev),
        ipBatch([
          'link set lo up',
          `addr add ${v4}/24 dev ${dev}`,
          `addr add ${v6}/64 dev ${dev} nodad`,
          `link set ${dev} up`,
          `route add default via ${gw4} dev ${dev}`,
          `route add default via ${gw6} dev ${dev}`,
        ]),
      ].join('\n');
    const mb = [
      'set -e',
      ...noDad([ifs.middleboxLeft, ifs.middleboxRight]),
      sys('net/ipv4/ip_forward', '1'),
      sys('net/ipv6/conf/all/forwarding', '1'),
      offload(ifs.middleboxLeft),
      offload(ifs.middleboxRight),
      ipBatch([
        'link set lo up',
        `addr add ${a.middleboxLeft}/24 dev ${ifs.middleboxLeft}`,
        `addr add ${a.middleboxRight}/24 dev ${ifs.middleboxRight}`,
        `addr add ${a.middleboxLeft6}/64 dev ${ifs.middleboxLeft} nodad`,
        `addr add ${a.middleboxRight6}/64 dev ${ifs.middleboxRight} nodad`,
        `link set ${ifs.middleboxLeft} up`,
        `link set ${ifs.middleboxRight} up`,
      ]),
    ].join('\n');
    const inNs = (name: string, script: string) => run(['ip', 'netns', 'exec', name, 'sh', '-c', script], { timeoutMs: 20_000 });
    await Promise.all([
      inNs(ns.initiator, host(ifs.initiator, a.initiator, a.initiator6, a.middleboxLeft, a.middleboxLeft6)),
      inNs(ns.middlebox, mb),
      inNs(ns.responder, host(ifs.responder, a.responder, a.responder6, a.middleboxRight, a.middleboxRight6)),
    ]);
    // 3. the profile's netfilter configuration, in one shell
    const setup = this.profile.setup(this);
    if (setup.length > 0) {
      const script = setup
        .map((argv) => {
          const text = cmdText(argv);
          return `${text} || { rc=$?; echo ${shq(`profile ${this.profile.name}: command failed: ${text}`)} >&2; exit $rc; }`;
        })
        .join('\n');
      await inNs(ns.middlebox, script);
    }
    // 4. daemons
    await this.startDaemons();
  }

  private async startDaemons(): Promise<void> {
    const daemons = this.profile.daemons?.(this) ?? [];
    if (daemons.length === 0) return;
    const stderr: string[] = [];
    const procs: ChildProcess[] = [];
    const readyLine = this.profile.readyLine;
    /** per daemon: has it printed readyLine (non-persistent labs read stdout, persistent ones the log) */
    const ready: boolean[] = daemons.map(() => readyLine === undefined);
    let logFd: number | undefined;
    let logStart = 0;
    if (this.persistent) {
      logFd = openSync(logPath(this.id), 'a');
      logStart = statSync(logPath(this.id)).size;
    }
    try {
      for (const [i, argv] of daemons.entries()) {
        const child = this.persistent
          ? this.spawn(this.namespaces.middlebox, argv, { stdio: ['ignore', logFd!, logFd!], detached: true })
          : this.spawn(this.namespaces.middlebox, argv, { stdio: ['pipe', readyLine ? 'pipe' : 'ignore', 'pipe'] });
        child.stderr?.on('data', (d: Buffer) => {
          stderr.push(d.toString());
          if (stderr.length > 50) stderr.shift();
        });
        let out = '';
        child.stdout?.on('data', (d: Buffer) => {
          if (ready[i]) return;
          out += d.toString();
          ready[i] = out.split('\n').includes(readyLine!);
        });
        if (this.persistent) child.unref();
        procs.push(child);
      }
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
    const wanted = this.profile.listens?.(this) ?? [];
    const deadline = Date.now() + 10_000;
    for (;;) {
      const dead = procs.find((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead) {
        await sleep(20); // let the stderr pipe drain
        throw new LabError('EDAEMON', `profile ${this.profile.name}: daemon exited (${dead.exitCode ?? dead.signalCode}) ${stderr.join('').trim()}`, {
          stderr: stderr.join(''),
        });
      }
      if (this.persistent && readyLine !== undefined) {
        const log = readFileSync(logPath(this.id)).subarray(logStart).toString();
        const count = log.split('\n').filter((l) => l === readyLine).length;
        ready.fill(true, 0, count);
      }
      const listening = wanted.length === 0 ? new Set<string>() : await listeningPorts(this.namespaces.middlebox);
      if (ready.every(Boolean) && wanted.every((w) => listening.has(`${w.family}:${w.port}`))) return;
      if (Date.now() > deadline) {
        throw new LabError('EDAEMON', `profile ${this.profile.name}: daemons not ready / listening after 10 s ${stderr.join('').trim()}`, {
          stderr: stderr.join(''),
        });
      }
      await sleep(15);
    }
  }
}

/** "4:<port>" / "6:<port>" for every listening TCP socket in the namespace */
async function listeningPorts(ns: string): Promise<Set<string>> {
  const { stdout } = await run(['ss', '-N', ns, '-H', '-l', '-t', '-n'], { allowFailure: true, timeoutMs: 5000 });
  const set = new Set<string>();
  for (const line of stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    if (!local) continue;
    const i = local.lastIndexOf(':');
    const port = local.slice(i + 1);
    const addr = local.slice(0, i);
    if (addr === '*') {
      set.add(`4:${port}`);
      set.add(`6:${port}`);
    } else if (addr.startsWith('[')) set.add(`6:${port}`);
    else set.add(`4:${port}`);
  }
  return set;
}

// ---------------------------------------------------------------------------
// createLab

export interface CreateLabOptions {
  profile: string | LabProfile;
  id?: number;
  /**
   * Persistent lab (scripts/lab up): not torn down when the creating process
   * exits, never considered stale, daemons run detached.  Remove with
   * destroy(), destroyLabById() or `scripts/lab down`.
   */
  keep?: boolean;
}

export function resolveProfile(profile: string | LabProfile): LabProfile {
  if (typeof profile !== 'string') return profile;
  const p = PROFILES[profile];
  if (!p) throw new LabError('EPROFILE', `unknown lab profile ${profile} (known: ${Object.keys(PROFILES).join(', ')})`);
  return p;
}

export async function createLab(opts: CreateLabOptions): Promise<Lab> {
  requireRoot();
  const profile = resolveProfile(opts.profile);
  if (opts.id !== undefined) checkId(opts.id);
  const persistent = opts.keep ?? false;
  const id = await withLock(async () => {
    await reapStaleLocked();
    let chosen: number | undefined;
    if (opts.id !== undefined) {
      const info = readPidFile(opts.id);
      if (info || labNamespaceNames().has(opts.id)) {
        throw new LabError('EBUSY', `lab ${opts.id} is in use${info ? ` (pid ${info.pid}${info.persistent ? ', persistent' : ''})` : ''}`);
      }
      chosen = opts.id;
    } else {
      const nsIds = labNamespaceNames();
      const used = new Set(pidFileIds());
      for (let i = 0; i <= MAX_LAB_ID; i++) {
        if (!used.has(i) && !nsIds.has(i)) {
          chosen = i;
          break;
        }
      }
      if (chosen === undefined) throw new LabError('ENOFREE', `all ${MAX_LAB_ID + 1} lab ids are in use`);
    }
    const start = processStart(process.pid) ?? '';
    await fsp.writeFile(pidPath(chosen), `${process.pid}\nstart=${start}\nprofile=${profile.name}\npersistent=${persistent ? 1 : 0}\n`, {
      flag: 'wx',
    });
    return chosen;
  });
  installExitHook();
  const lab = new LabImpl(id, profile, persistent);
  try {
    await lab.build();
  } catch (e) {
    await lab.destroy().catch(() => undefined);
    throw e;
  }
  return lab;
}

/** packets/bytes of a named nft counter in the middlebox's `inet mbprobe` table */
export async function nftCounter(lab: Lab, name: string): Promise<{ packets: number; bytes: number }> {
  const { stdout } = await lab.exec(lab.namespaces.middlebox, ['nft', 'list', 'counter', 'inet', NFT_TABLE, name]);
  const m = /packets (\d+) bytes (\d+)/.exec(stdout);
  if (!m) throw new LabError('ECOUNTER', `cannot parse counter ${name}: ${stdout}`);
  return { packets: Number(m[1]), bytes: Number(m[2]) };
}
