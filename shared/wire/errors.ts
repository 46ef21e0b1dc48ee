/** Typed errors with stable codes: callers branch on `code`, people read `message`. */

/**
 * Every code an mbprobe error carries: a closed set, so a caller's branch cannot name one that does
 * not exist, and a new code is added here. The lab's (E...) follow errno's names.
 */
export type ErrorCode =
  | 'BAD_ADDRESS'
  | 'BAD_CA'
  | 'BAD_CONTACT'
  | 'BAD_DIFF_REFERENCE'
  | 'BAD_EXCLUDE'
  | 'BAD_FILTER'
  | 'BAD_GROUP_BY'
  | 'BAD_HEX'
  | 'BAD_ICMP_HEADER'
  | 'BAD_IP_OPTIONS'
  | 'BAD_MAX_HOPS'
  | 'BAD_NUMBER'
  | 'BAD_OPTION'
  | 'BAD_OUTPUT'
  | 'BAD_PACKET'
  | 'BAD_PORT'
  | 'BAD_RETRIES'
  | 'BAD_TAG'
  | 'BAD_TARGET'
  | 'BAD_TARGETS'
  | 'BAD_TEST_FILE'
  | 'BAD_TRANSPORT'
  | 'CANNOT_WRITE'
  | 'CAPTURE_FAILED'
  | 'CONTROL_REFUSED'
  | 'DATABASE_NOT_FOUND'
  | 'DATASETS_OVERLAP'
  | 'DATASET_NOT_FOUND'
  | 'DATASET_VERSION_MISMATCH'
  | 'EBUILD'
  | 'EBUSY'
  | 'ECOMMAND'
  | 'ECOUNTER'
  | 'EDAEMON'
  | 'EDESTROYED'
  | 'EEXIT'
  | 'EHOPS'
  | 'EINVAL'
  | 'ELOCK'
  | 'EMISSING'
  | 'ENOFREE'
  | 'EPERM'
  | 'EPROFILE'
  | 'ESPAWN'
  | 'ETIMEDOUT'
  | 'EWAN'
  | 'FIELD_OUT_OF_RANGE'
  | 'FILE_NOT_FOUND'
  | 'FIREWALL_FAILED'
  | 'INTERFACE_NOT_FOUND'
  | 'INTERRUPTED'
  | 'INVALID_ARGUMENT'
  | 'INVALID_UPLOAD'
  | 'IPROUTE2_NOT_FOUND'
  | 'MERGE_INCOMPLETE'
  | 'MERGE_STOPPED'
  | 'NATIVE_MODULE_MISSING'
  | 'NFT_NOT_FOUND'
  | 'NOT_A_DATABASE'
  | 'NOT_A_DATASET'
  | 'NOT_PRIVILEGED'
  | 'NO_INPUTS'
  | 'NO_MIGRATION'
  | 'NO_NEXT_HEADER'
  | 'NO_PSEUDO_HEADER'
  | 'NO_RESPONDER'
  | 'NO_ROUTE'
  | 'NO_RUN'
  | 'NO_RUNS'
  | 'NO_TARGETS'
  | 'ONE_DATABASE'
  | 'OPEN_FAILED'
  | 'OPTIONS_TOO_LONG'
  | 'OUT_EXISTS'
  | 'OUT_IS_DATABASE'
  | 'OUT_REQUIRED'
  | 'PARQUET_ONLY'
  | 'PORT_IN_USE'
  | 'PORT_NOT_SERVED'
  | 'PORT_RESERVATION_FAILED'
  | 'PORT_RESERVATION_UNSUPPORTED'
  | 'PRIVATE_TARGET'
  | 'RAW_SOCKET_FAILED'
  | 'RESPONDERS_FAILED'
  | 'RESPONDER_NOT_TLS'
  | 'RESPONDER_NOT_VERIFIED'
  | 'RESPONDER_UNREACHABLE'
  | 'RUN_AMBIGUOUS'
  | 'RUN_CONFLICT'
  | 'RUN_EXISTS'
  | 'RUN_NOT_FOUND'
  | 'RUN_REQUIRED'
  | 'RUN_UNFINISHED'
  | 'SCHEMA_VERSION_MISMATCH'
  | 'SEND_FAILED'
  | 'SUBMIT_FAILED'
  | 'TEST_NOT_FOUND'
  | 'TLS_INCOMPLETE'
  | 'TWO_DATABASES'
  | 'UNEXPORTABLE_VALUE'
  | 'UNKNOWN_HOST'
  | 'UNKNOWN_TEST'
  | 'UNSUPPORTED_LINK_TYPE'
  | 'WHOLE_DATABASE';

export class MbprobeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MbprobeError';
    this.code = code;
  }
}

/** Thrown by encoders when asked to write something a field cannot hold (a programming error, never wire data). */
export class EncodeError extends MbprobeError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'EncodeError';
  }
}
