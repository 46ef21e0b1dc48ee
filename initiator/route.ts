import { execFileSync } from 'node:child_process';
import { MbprobeError } from '../shared/wire/errors.js';

/** The interface and source address the kernel would use to reach `address` (`ip route get`). */
export function routeTo(address: string): { iface: string; source: string } {
  let output: string;
  try {
    output = execFileSync('ip', ['-j', 'route', 'get', address], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? String(error);
    throw new MbprobeError('NO_ROUTE', `no route to the responder ${address}: ${stderr}`);
  }
  const [route] = JSON.parse(output) as Array<{ dev?: string; prefsrc?: string }>;
  if (!route?.dev || !route.prefsrc) throw new MbprobeError('NO_ROUTE', `the kernel has no usable route to ${address} (ip route get gave ${output.trim()})`);
  return { iface: route.dev, source: route.prefsrc };
}
