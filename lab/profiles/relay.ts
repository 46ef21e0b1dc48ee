/** Transparent split-connection proxies: the relay daemon (lab/daemons/relay.ts) behind a redirect of the test ports. */
import { relayArgv, RELAY_SOURCE } from '../daemons/relay.js';
import { IPT_CHAIN, LAB_PORTS, LabError, NFT_TABLE, nft, type LabProfile } from '../profile.js';
import type { Lab } from '../topology.js';

/** relay port on the middlebox for LAB_PORTS[i] */
export const RELAY_PORT_BASE = 41000;

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
 * The relay (lab/daemons/relay.ts) behind a redirect of the test ports.  `mss`: the SYN and SYN-ACK
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

export const relayProfiles = (): LabProfile[] => [splitProxy(), resegmentingProxy()];
