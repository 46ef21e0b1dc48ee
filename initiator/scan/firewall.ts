/**
 * Keeping this host's kernel out of the scan's way (as initiatorRules does for `run`): the servers'
 * answers reach ports the kernel has no socket for, and it would reset every connection. A scan talks
 * to servers it does not know in advance, so the rule matches the answers by port instead of address:
 * TCP from the scanned ports to the scan's reserved local ports, addressed to this host. Body for
 * holdNftTable (family inet).
 */
import { MbprobeError } from '../../shared/wire/errors.js';

const set = (values: readonly number[]): string => (values.length === 1 ? String(values[0]) : `{ ${values.join(', ')} }`);

export function scanRules(localPorts: readonly number[], serverPorts: readonly number[]): string {
  for (const p of [...localPorts, ...serverPorts]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new MbprobeError('INVALID_ARGUMENT', `"${p}" is not a TCP port (1-65535)`);
  }
  if (localPorts.length === 0 || serverPorts.length === 0) throw new MbprobeError('INVALID_ARGUMENT', 'a scan needs local ports and server ports');
  const rule = `tcp sport ${set([...new Set(serverPorts)])} tcp dport ${set([...new Set(localPorts)])} fib daddr type local drop`;
  return `  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n    ${rule}\n  }`;
}
