/*
 * flood: sends crafted IPv4 TCP segments at a steady rate from a raw socket, for the responder's
 * load benchmark (scripts/bench.ts, lab/load.ts). Built from Debian's gcc at benchmark time.
 *
 *   flood --dst ADDR --rate PPS --seconds S [--flows FILE] [--junk FRACTION] [--junk-src PREFIX]
 *
 * FILE has one registered test per line, "SRC SPORT DPORT ISN": the flood sends those SYNs in turn
 * (the responder answers each, as a retransmitted SYN). A FRACTION of the segments are junk instead,
 * as scanners send: random sources in PREFIX.0/24, random ports and flags, a quarter of them
 * malformed (bad checksum, data offset past the end, cut short). Prints one JSON line of counts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 100000
#define BATCH 64

struct flow { uint32_t src; uint16_t sport, dport; uint32_t isn; };

static uint16_t checksum(const uint8_t *data, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len & 1) sum += data[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint64_t rng = 88172645463325252ULL;
static uint32_t next_random(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }

/* An IPv4 SYN (or junk) of 40 bytes into buf; returns its length. */
static size_t build(uint8_t *buf, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags, int damage) {
  memset(buf, 0, 40);
  buf[0] = 0x45; buf[3] = 40; buf[6] = 0x40; buf[8] = 64; buf[9] = 6;
  memcpy(buf + 12, &src, 4); memcpy(buf + 16, &dst, 4);
  uint16_t ipsum = checksum(buf, 20, 0); buf[10] = ipsum >> 8; buf[11] = ipsum & 0xff;
  uint8_t *tcp = buf + 20;
  tcp[0] = sport >> 8; tcp[1] = sport & 0xff; tcp[2] = dport >> 8; tcp[3] = dport & 0xff;
  tcp[4] = seq >> 24; tcp[5] = seq >> 16; tcp[6] = seq >> 8; tcp[7] = seq;
  tcp[12] = 5 << 4; tcp[13] = flags; tcp[14] = 0xfa; tcp[15] = 0xf0;
  uint8_t pseudo[12]; memcpy(pseudo, &src, 4); memcpy(pseudo + 4, &dst, 4); pseudo[8] = 0; pseudo[9] = 6; pseudo[10] = 0; pseudo[11] = 20;
  uint32_t sum = 0; for (int i = 0; i < 12; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  uint16_t tcpsum = checksum(tcp, 20, sum); tcp[16] = tcpsum >> 8; tcp[17] = tcpsum & 0xff;
  if (damage == 1) tcp[17] ^= 0x5a;                 /* bad checksum */
  if (damage == 2) tcp[12] = 15 << 4;               /* data offset past the end */
  if (damage == 3) { buf[3] = 30; return 30; }      /* cut short */
  return 40;
}

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  const char *dst_text = NULL, *flows_path = NULL, *junk_prefix = "203.0.113";
  double rate = 10000, seconds = 1, junk = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dst")) dst_text = argv[i + 1];
    else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--flows")) flows_path = argv[i + 1];
    else if (!strcmp(argv[i], "--junk")) junk = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--junk-src")) junk_prefix = argv[i + 1];
    else { fprintf(stderr, "flood: unknown option %s\n", argv[i]); return 2; }
  }
  struct in_addr dst;
  if (!dst_text || inet_pton(AF_INET, dst_text, &dst) != 1) { fprintf(stderr, "flood: --dst IPv4 address needed\n"); return 2; }
  static struct flow flows[MAX_FLOWS];
  int nflows = 0;
  if (flows_path) {
    FILE *f = fopen(flows_path, "r");
    if (!f) { perror(flows_path); return 2; }
    char src[64]; unsigned sport, dport; unsigned long isn;
    while (nflows < MAX_FLOWS && fscanf(f, "%63s %u %u %lu", src, &sport, &dport, &isn) == 4) {
      struct in_addr a; if (inet_pton(AF_INET, src, &a) != 1) continue;
      flows[nflows++] = (struct flow){ a.s_addr, (uint16_t)sport, (uint16_t)dport, (uint32_t)isn };
    }
    fclose(f);
  }
  if (nflows == 0 && junk < 1) junk = 1;
  struct in_addr junk_base;
  char junk_text[64]; snprintf(junk_text, sizeof junk_text, "%s.0", junk_prefix);
  if (inet_pton(AF_INET, junk_text, &junk_base) != 1) { fprintf(stderr, "flood: bad --junk-src\n"); return 2; }

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) { perror("socket"); return 1; }
  int size = 4 << 20; setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);

  static uint8_t bufs[BATCH][40];
  struct mmsghdr msgs[BATCH]; struct iovec iovs[BATCH];
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = dst };
  unsigned long long sent = 0, syns = 0, junked = 0, malformed = 0, errors = 0;
  unsigned long long total = (unsigned long long)(rate * seconds);
  double start = now();
  int next_flow = 0;
  while (sent < total) {
    int n = 0;
    for (; n < BATCH && sent + n < total; n++) {
      size_t len;
      if (nflows > 0 && (double)(next_random() % 1000000) / 1e6 >= junk) {
        struct flow *fl = &flows[next_flow++ % nflows];
        len = build(bufs[n], fl->src, dst.s_addr, fl->sport, fl->dport, fl->isn, 0x02, 0);
        syns++;
      } else {
        uint32_t r = next_random();
        uint32_t src = junk_base.s_addr | htonl((r & 0xff) == 0 ? 1 : (r & 0xff));
        static const uint16_t ports[] = { 34343, 80, 443 };
        static const uint8_t flags[] = { 0x02, 0x10, 0x18, 0x04, 0x11, 0x29 };
        int damage = (r >> 8) % 4 == 0 ? 1 + (r >> 10) % 3 : 0;
        len = build(bufs[n], src, dst.s_addr, 40000 + (r >> 16) % 20000, ports[(r >> 12) % 3], next_random(), flags[(r >> 4) % 6], damage);
        junked++;
        if (damage) malformed++;
      }
      iovs[n] = (struct iovec){ bufs[n], len };
      msgs[n] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iovs[n], .msg_iovlen = 1 } };
    }
    int done = sendmmsg(fd, msgs, n, 0);
    if (done < 0) { errors += n; if (errno != ENOBUFS && errno != EAGAIN) { perror("sendmmsg"); break; } }
    else { errors += n - done; }
    sent += n;
    double due = start + sent / rate, late = due - now();
    if (late > 0) { struct timespec t = { (time_t)late, (long)((late - (time_t)late) * 1e9) }; nanosleep(&t, NULL); }
  }
  double elapsed = now() - start;
  printf("{\"sent\":%llu,\"syns\":%llu,\"junk\":%llu,\"malformed\":%llu,\"errors\":%llu,\"seconds\":%.3f,\"rate\":%.0f}\n", sent - errors, syns, junked, malformed, errors, elapsed, (sent - errors) / elapsed);
  return 0;
}
