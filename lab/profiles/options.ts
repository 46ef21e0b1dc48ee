/** Boxes that strip or clamp TCP options (Linux TCPOPTSTRIP and TCPMSS in the forward path). */
import { iptChain, type LabProfile } from '../profile.js';

export const optionProfiles = (): LabProfile[] => [
  {
    name: 'strip-options',
    description:
      'A firewall/IPS that scrubs TCP options it does not know: replaces option kinds 200 (unassigned), 30 (MPTCP) and 34 (TFO) with NOPs in both directions.',
    setup: () => iptChain('mangle', 'FORWARD', [['-p', 'tcp', '-j', 'TCPOPTSTRIP', '--strip-options', '200,30,34']]),
  },
  {
    name: 'strip-timestamps-sack',
    description:
      'An old load balancer / "TCP normaliser" that removes timestamps (8) and SACK-permitted (4) options from every segment in both directions.',
    setup: () => iptChain('mangle', 'FORWARD', [['-p', 'tcp', '-j', 'TCPOPTSTRIP', '--strip-options', 'timestamp,sack-permitted']]),
  },
  {
    name: 'mss-clamp',
    description: 'A PPPoE/VPN access router clamping the MSS of SYNs in both directions to 536 (never raising it).',
    setup: () => iptChain('mangle', 'FORWARD', [['-p', 'tcp', '--tcp-flags', 'SYN,RST', 'SYN', '-j', 'TCPMSS', '--set-mss', '536']]),
  },
  {
    name: 'strip-syn-options',
    description:
      'A misconfigured firewall/IPS that removes the MSS (2) and window-scale (3) options from SYNs in both directions, so both ends fall back to the default MSS and unscaled windows.',
    setup: () => iptChain('mangle', 'FORWARD', [['-p', 'tcp', '--tcp-flags', 'SYN', 'SYN', '-j', 'TCPOPTSTRIP', '--strip-options', 'mss,wscale']]),
  },
];
