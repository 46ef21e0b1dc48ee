/**
 * A crowd of volunteers on one lab path: many initiator addresses, the upper half of them behind a
 * NAT, all measuring against one responder at once (lab/crowd-driver.ts drives them from one
 * process). Used by scripts/bench.ts and test/integration/crowd.test.ts.
 */
import { join } from 'node:path';
import { NFT_TABLE, nft, projectRoot, type LabProfile } from './profile.js';
import type { Lab } from './topology.js';

/** First host number of the addresses behind the NAT (198.18.<id>.130 and up); below it, routed ones (198.18.<id>.10 and up). */
const NAT_FROM = 128;

/** A plain router for most initiator addresses, a home-router NAT (masquerade, random ports) for 198.18.<id>.128/25. */
export const crowdProfile: LabProfile = {
  name: 'crowd',
  description: 'Many volunteers at once: the initiator has many addresses; 198.18.<id>.128/25 is behind a NAT (masquerade, fully random ports), the rest is routed.',
  setup: (lab) => [
    nft([
      `add table inet ${NFT_TABLE}`,
      `add chain inet ${NFT_TABLE} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
      `add rule inet ${NFT_TABLE} postrouting oifname "${lab.interfaces.middleboxRight}" ip saddr 198.18.${lab.id}.${NAT_FROM}/25 masquerade fully-random`,
    ]),
  ],
};

export interface CrowdAddresses {
  routed: string[];
  natted: string[];
}

/** Adds `count` addresses to the initiator's interface, `natted` of them behind the crowd profile's NAT. */
export async function addCrowdAddresses(lab: Lab, count: number, natted: number): Promise<CrowdAddresses> {
  const routed = Array.from({ length: count - natted }, (_, i) => `198.18.${lab.id}.${10 + i}`);
  const behindNat = Array.from({ length: natted }, (_, i) => `198.18.${lab.id}.${NAT_FROM + 2 + i}`);
  if (routed.length > NAT_FROM - 10 || behindNat.length > 120) throw new Error(`at most ${NAT_FROM - 10} routed and 120 NATed addresses`);
  for (const address of [...routed, ...behindNat]) {
    await lab.exec(lab.namespaces.initiator, ['ip', 'addr', 'add', `${address}/24`, 'dev', lab.interfaces.initiator, 'nodad']);
  }
  return { routed, natted: behindNat };
}

export interface CrowdVerdict {
  address: string;
  test: string;
  port: number;
  verdict: string;
  runs: number;
  /** The result's detail (first 400 characters) when it was inconclusive or took more than one run. */
  why?: string;
}

/** Runs the catalogue from every address at once (one process); every verdict, and the wall time. */
export async function runCrowd(lab: Lab, addresses: readonly string[], options: { tests?: string; concurrency?: number; timeoutMs?: number } = {}): Promise<{ verdicts: CrowdVerdict[]; ms: number; stderr: string; code: number }> {
  // At a lower priority than the responder: the driver stands for 50 volunteers' machines, and on this
  // lab's 2 cores it would otherwise starve the responder's packet loop for 200-300 ms at a time (its
  // segments then recorded but not answered, `behind`), which a responder on its own host never sees.
  const argv = ['nice', '-n', '10', process.execPath, join(projectRoot(), 'dist/lab/crowd-driver.js'), '--responder', lab.addresses.responder, '--addresses', addresses.join(','),
    ...(options.tests ? ['--tests', options.tests] : []), ...(options.concurrency ? ['--concurrency', String(options.concurrency)] : [])];
  const started = Date.now();
  const result = await lab.exec(lab.namespaces.initiator, argv, { allowFailure: true, timeoutMs: options.timeoutMs ?? 900_000 });
  const lines = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CrowdVerdict & { done?: boolean; ms?: number });
  return { verdicts: lines.filter((l) => !l.done), ms: lines.find((l) => l.done)?.ms ?? Date.now() - started, stderr: result.stderr, code: result.code };
}

/** "test:port" -> verdict for one address. */
export const verdictsOf = (verdicts: readonly CrowdVerdict[], address: string): Record<string, string> =>
  Object.fromEntries(verdicts.filter((v) => v.address === address).map((v) => [`${v.test}:${v.port}`, v.verdict]));
