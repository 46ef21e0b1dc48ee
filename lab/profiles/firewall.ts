/** Firewalls: a SYN-with-data dropper, a SYN proxy, a conntrack firewall dropping invalid segments. */
import { IPT_CHAIN, iptChain, NFT_TABLE, nft, portList, type LabProfile } from '../profile.js';

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

export const firewallProfiles = (): LabProfile[] => [dropSynData(), synproxy(), statefulFirewall()];
