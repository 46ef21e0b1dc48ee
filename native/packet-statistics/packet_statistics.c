/*
 * The kernel's counters of a packet socket (getsockopt SOL_PACKET/PACKET_STATISTICS): packets that
 * passed the socket's filter and packets dropped because its ring was full. That is what libpcap's
 * pcap_stats() reads on Linux; the `cap` binding exposes neither pcap_stats nor the socket, so
 * mbprobe finds the socket's descriptor itself (shared/net/packet-statistics.ts) and reads it here.
 * Reading resets the kernel's counters (as for pcap_stats); the caller accumulates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(errno));
  napi_throw_error(env, "EPACKETSTATS", message);
  return NULL;
}

/* read(fd) -> [packets, drops] since the previous read of this socket */
static napi_value read_statistics(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "read(fd): fd must be a number");
    return NULL;
  }
  struct tpacket_stats stats;
  socklen_t length = sizeof stats;
  memset(&stats, 0, sizeof stats);
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) != 0) return throw_errno(env, "getsockopt(PACKET_STATISTICS)");
  napi_value result, packets, drops;
  napi_create_array_with_length(env, 2, &result);
  napi_create_uint32(env, stats.tp_packets, &packets);
  napi_create_uint32(env, stats.tp_drops, &drops);
  napi_set_element(env, result, 0, packets);
  napi_set_element(env, result, 1, drops);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "read", NAPI_AUTO_LENGTH, read_statistics, NULL, &fn);
  napi_set_named_property(env, exports, "read", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
