/*
 * echo-responder: the smallest responder that does what mbprobe-responder does for a SYN, as the
 * benchmark's yardstick (scripts/bench.ts): libpcap capture with the same settings as the `cap`
 * binding (snap length 65535, immediate mode, the given ring buffer), and for every SYN whose source
 * port is in --sports LO-HI a SYN-ACK (addresses and ports swapped, options mirrored) sent on a raw
 * socket. IPv4 only. On SIGINT/SIGTERM prints one JSON line: packets captured and answered, and
 * libpcap's pcap_stats (received, dropped by the kernel).
 *
 *   echo-responder --iface any --buffer BYTES --sports 20000-29999
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }
static unsigned long long captured = 0, answered = 0;
static int raw_fd, link_type;
static unsigned sport_lo = 0, sport_hi = 65535;

static uint16_t checksum(const uint8_t *data, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
  (void)user;
  captured++;
  size_t offset = link_type == DLT_LINUX_SLL ? 16 : link_type == DLT_LINUX_SLL2 ? 20 : link_type == DLT_EN10MB ? 14 : 0;
  if (h->caplen < offset + 40) return;
  const uint8_t *ip = bytes + offset;
  if ((ip[0] >> 4) != 4 || ip[9] != 6) return;
  size_t ihl = (ip[0] & 15) * 4, total = (ip[2] << 8) | ip[3];
  if (total > h->caplen - offset || total < ihl + 20) return;
  const uint8_t *tcp = ip + ihl;
  size_t thl = (tcp[12] >> 4) * 4;
  unsigned sport = (tcp[0] << 8) | tcp[1];
  if ((tcp[13] & 0x12) != 0x02 || thl < 20 || ihl + thl > total || sport < sport_lo || sport > sport_hi) return;
  uint8_t out[80];
  size_t len = 20 + thl;
  memset(out, 0, 20);
  out[0] = 0x45; out[2] = len >> 8; out[3] = len & 0xff; out[6] = 0x40; out[8] = 64; out[9] = 6;
  memcpy(out + 12, ip + 16, 4); memcpy(out + 16, ip + 12, 4);
  uint16_t ipsum = checksum(out, 20, 0); out[10] = ipsum >> 8; out[11] = ipsum & 0xff;
  uint8_t *r = out + 20;
  memcpy(r, tcp, thl);                                  /* options mirrored */
  r[0] = tcp[2]; r[1] = tcp[3]; r[2] = tcp[0]; r[3] = tcp[1];
  uint32_t seq = ((uint32_t)tcp[4] << 24 | tcp[5] << 16 | tcp[6] << 8 | tcp[7]);
  uint32_t isn = seq * 2654435761u ^ 0x6d627072u, ack = seq + 1;
  r[4] = isn >> 24; r[5] = isn >> 16; r[6] = isn >> 8; r[7] = isn;
  r[8] = ack >> 24; r[9] = ack >> 16; r[10] = ack >> 8; r[11] = ack;
  r[13] = 0x12; r[14] = 0xff; r[15] = 0xff; r[16] = r[17] = 0; r[18] = r[19] = 0;
  uint32_t sum = 0;
  for (int i = 12; i < 20; i += 2) sum += (out[i] << 8) | out[i + 1];
  sum += 6 + thl;
  uint16_t tcpsum = checksum(r, thl, sum); r[16] = tcpsum >> 8; r[17] = tcpsum & 0xff;
  struct sockaddr_in to = { .sin_family = AF_INET };
  memcpy(&to.sin_addr, out + 16, 4);
  if (sendto(raw_fd, out, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len) answered++;
}

int main(int argc, char **argv) {
  const char *iface = "any"; int buffer = 4 << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--iface")) iface = argv[i + 1];
    else if (!strcmp(argv[i], "--buffer")) buffer = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--sports")) sscanf(argv[i + 1], "%u-%u", &sport_lo, &sport_hi);
    else { fprintf(stderr, "echo-responder: unknown option %s\n", argv[i]); return 2; }
  }
  char err[PCAP_ERRBUF_SIZE];
  pcap_t *p = pcap_create(iface, err);
  if (!p) { fprintf(stderr, "pcap_create: %s\n", err); return 1; }
  pcap_set_snaplen(p, 65535); pcap_set_promisc(p, 1); pcap_set_immediate_mode(p, 1); pcap_set_buffer_size(p, buffer);
  if (pcap_activate(p) < 0) { fprintf(stderr, "pcap_activate: %s\n", pcap_geterr(p)); return 1; }
  struct bpf_program filter;
  if (pcap_compile(p, &filter, "tcp and (dst port 34343 or dst port 80 or dst port 443)", 1, PCAP_NETMASK_UNKNOWN) < 0 || pcap_setfilter(p, &filter) < 0) { fprintf(stderr, "filter: %s\n", pcap_geterr(p)); return 1; }
  pcap_setnonblock(p, 1, err);
  link_type = pcap_datalink(p);
  raw_fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (raw_fd < 0) { perror("socket"); return 1; }
  signal(SIGINT, on_signal); signal(SIGTERM, on_signal);
  fprintf(stderr, "echo-responder: answering on %s\n", iface);
  struct pollfd pfd = { .fd = pcap_get_selectable_fd(p), .events = POLLIN };
  while (!stop) {
    if (poll(&pfd, 1, 200) > 0) while (pcap_dispatch(p, -1, on_packet, NULL) > 0) {}
  }
  struct pcap_stat st = { 0 };
  pcap_stats(p, &st);
  printf("{\"captured\":%llu,\"answered\":%llu,\"pcapReceived\":%u,\"pcapDropped\":%u}\n", captured, answered, st.ps_recv, st.ps_drop);
  return 0;
}
