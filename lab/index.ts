/** The lab: what scripts/demo, scripts/bench and the tests import. */
export * from './topology.js';
export * from './profile.js';
export { PROFILES } from './profiles/index.js';
export { PORT_REWRITE_RANGE } from './profiles/nat.js';
export { RELAY_PORT_BASE, RESEGMENT_MSS } from './profiles/relay.js';
export { formatWanSpec, parseWanSpec, type WanDirection, type WanSpec } from './wan.js';
export * from './measure.js';
export { formatHopsSpec, parseHopsSpec, type HopsSpec, type LabHop } from './hops.js';
export * from './locate.js';
