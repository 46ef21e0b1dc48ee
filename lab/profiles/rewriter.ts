/** Boxes no Linux feature imitates (ISN randomisers, option rewriters, normalisers), built on the user-space rewriter (lab/daemons/rewriter.ts). */
import { daemonScript, LAB_PORTS, NFT_TABLE, nft, type LabProfile } from '../profile.js';

/**
 * A profile run by lab/daemons/rewriter.ts: the forward chain drops the test traffic (TCP to the test
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
        daemonScript('rewriter'),
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

export const rewriterProfiles = (): LabProfile[] => [
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

