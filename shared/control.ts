import { z } from 'zod';
import { fromHex, toHex } from './wire/bytes.js';
import type { TcpOption } from './wire/tcp-options.js';
import { CONNECTION_TOKEN_SCHEMA } from './token.js';

/**
 * The control protocol between initiator and responder: HTTP + JSON on the control port.
 * Every request body is validated with these schemas on the responder (bad input gets a 4xx with
 * the reason), and the initiator builds its requests from the same types.
 */
export const CONTROL_API_VERSION = 'v1';
export const MAX_CONTROL_BODY_BYTES = 64 * 1024;

const hex = z.string().max(4096).regex(/^([0-9a-f]{2})*$/i, 'must be an even-length hex string');
const u32 = z.number().int().min(0).max(0xffffffff);
const port = z.number().int().min(1).max(65535);

export const wireOptionSchema = z.object({
  kind: z.number().int().min(0).max(255),
  length: z.number().int().min(0).max(255).optional(),
  data: hex,
});
export type WireOption = z.infer<typeof wireOptionSchema>;

export const toWireOption = (o: TcpOption): WireOption => (o.length === undefined ? { kind: o.kind, data: toHex(o.data) } : { kind: o.kind, length: o.length, data: toHex(o.data) });
export const fromWireOption = (o: WireOption): TcpOption => ({ kind: o.kind, length: o.length, data: fromHex(o.data) });

/**
 * What the responder does for one test, beyond its default behaviour (answer a SYN with a SYN-ACK
 * mirroring the SYN's options, acknowledge data, answer FIN, ignore RST).
 */
export const responderPlanSchema = z.object({
  /** Options appended to the SYN-ACK after the mirrored ones. */
  synAckOptions: z.array(wireOptionSchema).max(8).optional(),
  /** Options on every data-phase ACK. */
  ackOptions: z.array(wireOptionSchema).max(8).optional(),
  /** Never acknowledge data: lets the initiator see ACKs that a middlebox generated on its own. */
  withholdAck: z.boolean().optional(),
  /** Receive window of the responder's segments. */
  window: z.number().int().min(0).max(65535).optional(),
  /** After the handshake completes, send this many bytes of data (bounded by the per-source budget). */
  sendBytes: z.number().int().min(0).max(8192).optional(),
}).strict();
export type ResponderPlan = z.infer<typeof responderPlanSchema>;

export const openSessionSchema = z.object({
  label: z.string().max(200).optional(),
  /** The initiator's own address, so the responder can report what a NAT made of it. */
  initiatorAddress: z.string().max(64),
  toolVersion: z.string().max(64),
}).strict();
export type OpenSessionRequest = z.infer<typeof openSessionSchema>;

/**
 * What this responder does beyond the first control API, as its hello lists it (`features`):
 * `token`: registrations may carry a connection token (attribution rule 6, shared/token.ts). An
 * initiator uses such a feature only with a responder that lists it (an older one refuses the field).
 */
export const RESPONDER_FEATURES = ['token'] as const;
export type ResponderFeature = (typeof RESPONDER_FEATURES)[number];

export interface HelloResponse {
  toolVersion: string;
  ports: number[];
  /** The initiator's address as the responder sees it on the control connection. */
  observedAddress: string;
  /** RESPONDER_FEATURES; absent from responders older than the list. */
  features?: string[];
}

export interface OpenSessionResponse {
  sessionId: string;
  /** The initiator's address as the responder sees it on the control connection. */
  observedAddress: string;
  ports: number[];
  toolVersion: string;
}

export const registerTestSchema = z.object({
  testId: z.string().regex(/^[A-Za-z0-9._:-]{1,80}$/),
  name: z.string().max(80),
  port,
  /** The initiator's source port and initial sequence number: the keys of attribution. */
  initiatorPort: port,
  initiatorIsn: u32,
  plan: responderPlanSchema,
  /**
   * Bytes an initiator sends to pay for data it asks the responder to send (`plan.sendBytes`): the
   * responder never sends a session more bytes than the session sent it.
   */
  padding: z.string().max(16 * 1024).optional(),
  /**
   * A test of the same session registered before this one and not yet bound: until that one has a
   * flow (or is collected), this one is not a candidate for any flow (the initiator has not sent
   * anything of it yet), so a proxy's connection for that one cannot be taken for this one's.
   */
  after: z.string().regex(/^[A-Za-z0-9._:-]{1,80}$/).optional(),
  /**
   * The address the box on the path connects to the responder from (the port's first test was bound
   * through it by only-test): only-test gives this test only a SYN from there, never a stranger's
   * (a public responder receives scanners' SYNs all day).
   */
  from: z.string().max(64).optional(),
  /**
   * The test's connection token (shared/token.ts), which the first bytes of its stream carry: behind a
   * box that rewrites everything, the responder answers the box's connections from `from` while tests
   * with a token wait, and gives each to the test whose token its data carries.
   */
  token: z.string().regex(CONNECTION_TOKEN_SCHEMA).optional(),
}).strict();
export type RegisterTestRequest = z.infer<typeof registerTestSchema>;

export interface ObservedSegment {
  dir: 'sent' | 'received';
  atUs: number;
  hex: string;
}

export interface TestSegmentsResponse {
  testId: string;
  segments: ObservedSegment[];
  /** How the test's flows were attributed (for the evidence in `detail`). */
  attribution: string[];
  /** Segments on the test's port, while it was registered, that no test could take: some may have been its own. */
  unattributed?: number;
  /** Of those, SYNs from the session's own addresses or the box's the test named (`from`): on a path that keeps the initiator's ISN or port, or behind a known box, only these could have been its own. */
  unattributedFromInitiator?: number;
  /** The test's segments the responder recorded but did not answer: its packet loop was behind a flood (absent when none). */
  behind?: number;
  /** The responder's answers to the test recorded as sent whose send failed (its socket's buffer was full; absent when none). */
  notSent?: number;
  /** Flows a stranger's SYN got by only-test before the test's own SYN (with its ISN) arrived and displaced them (absent when none). */
  displaced?: string[];
  /** Bound by only-test: SYNs from other addresses on the port that nobody took afterwards; one may have been the test's own (absent when none). */
  strangerSyns?: number;
  /** Segments (anyone's) the responder's capture lost while the test was registered: some may have been its own (absent when none). */
  captureLost?: number;
  /** Connection tokens (shared/token.ts) the data of the test's flows carried (absent when none): another run's says a flow was that run's. */
  tokens?: string[];
}

export interface TestBoundResponse {
  bound: boolean;
  /** The attribution rule that bound the test's first flow (flow, isn, port, address, only-test, token). */
  rule?: string;
  /** The source address of that flow. */
  from?: string;
  /** Bound by only-test: SYNs from other addresses nobody took since (one may have been the test's). */
  strangerSyns?: number;
  /** Bound by only-test and asked to hold (holdMs): the rule and address are those after the hold. */
  held?: boolean;
}

/** Formats a zod error as one readable line: "plan.window: Number must be less than or equal to 65535". */
export function describeValidationError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
}
