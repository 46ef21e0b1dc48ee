/**
 * "Unset means compute, set means write as given" (scapy's post_build). A decoded header has every
 * field set, so encoding it reproduces the bytes; a crafted header leaves lengths and checksums unset.
 * These flags force recomputation even where a value is set.
 */
export interface EncodeOptions {
  /** Recompute data offset, option lengths, IP header length, total/payload length. */
  fixLengths?: boolean;
  /** Recompute the IPv4 header checksum and the TCP checksum. */
  computeChecksums?: boolean;
}
