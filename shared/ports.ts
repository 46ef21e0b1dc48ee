/**
 * The responder's ports (design contract): 34343, a port no middlebox has a protocol for (as in
 * TCPExposure), 80 and 443, where interception proxies act; and the control/collection API's port.
 */
export const TEST_PORTS: readonly number[] = Object.freeze([34343, 80, 443]);
export const CONTROL_PORT = 8750;
