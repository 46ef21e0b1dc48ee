/** Routers that bleach or re-mark the IP header's DSCP and ECN fields (and the SYN's ECN flags). */
import { IPT_CHAIN, NFT_TABLE, nft, type LabProfile } from '../profile.js';

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

export const markingProfiles = (): LabProfile[] => [ecnDscpBleach(), dscpEcnRemark()];
