/** Address and port translation: home routers, carrier-grade NAT, port-randomising firewalls. */
import { NFT_TABLE, portList, nft, type LabProfile } from '../profile.js';

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

export const natProfiles = (): LabProfile[] => [
  masquerade('nat',
    'A home router / carrier-grade NAT: source NAT (masquerade, fully random ports) of the initiator behind the middlebox right address, IPv4 and IPv6 (NAT66).',
    ' fully-random'),
  masquerade('nat-keep-port',
    'A port-preserving home router NAT (plain Linux masquerade): source NAT of the initiator behind the middlebox right address, keeping its source port whenever it is free, IPv4 and IPv6 (NAT66).',
    ''),
  portRewrite(),
];
