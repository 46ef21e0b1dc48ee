#!/usr/bin/env bash
# Capture a corpus of real Linux TCP segments and write them to
# test/fixtures/linux-segments.txt (used by the packet codec round-trip tests
# and the tshark cross-check).
#
# Two network namespaces (mbfx-a = client, mbfx-b = server) joined by a veth
# pair; all traffic stays between them.  tcpdump runs in mbfx-b, the traffic
# comes from scripts/capture-fixtures-traffic.py.  Offloads are off on both
# veth ends so the captured segments are MSS-sized and carry real checksums.
#
# Usage: sudo scripts/capture-fixtures.sh [output-file]
#        (MBFX_KEEP_PCAP=/some/file.pcap also keeps the raw capture)
# Needs: root, ip (iproute2), ethtool, nft, tcpdump, tshark, python3, a kernel
# with MPTCP and TCP Fast Open.  Re-running overwrites the output file; it is
# only replaced once the new corpus has been generated and checked.

set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "capture-fixtures.sh: must be run as root (creates network namespaces, runs tcpdump)" >&2
    exit 2
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
TRAFFIC="$SCRIPT_DIR/capture-fixtures-traffic.py"
OUT=${1:-"$REPO_DIR/test/fixtures/linux-segments.txt"}

NS_A=mbfx-a
NS_B=mbfx-b
DEV_A=mbfx-va
DEV_B=mbfx-vb
PORT_SACK=5005

for tool in ip ethtool nft tcpdump tshark python3 sysctl flock; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "capture-fixtures.sh: required tool '$tool' not found" >&2
        exit 1
    fi
done
# the real interpreter (not a pyenv shim) so that $! is the python process
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

# one run at a time (the namespace names are fixed); lock the script itself
# so that no lock file is left behind
exec 9<"${BASH_SOURCE[0]}"
if ! flock -n 9; then
    echo "capture-fixtures.sh: another capture is running" >&2
    exit 1
fi

TMP=$(mktemp -d /tmp/mbfx-capture.XXXXXX)
TCPDUMP_PID=
SERVER_PID=
CLIENT_PID=

log() { echo "capture-fixtures: $*" >&2; }

cleanup() {
    local rc=$?
    set +e
    if [ -n "$CLIENT_PID" ] && kill -0 "$CLIENT_PID" 2>/dev/null; then
        kill "$CLIENT_PID" 2>/dev/null
        wait "$CLIENT_PID" 2>/dev/null
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [ -n "$TCPDUMP_PID" ] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
        kill -INT "$TCPDUMP_PID" 2>/dev/null
        wait "$TCPDUMP_PID" 2>/dev/null
    fi
    for ns in "$NS_A" "$NS_B"; do
        if [ -e "/run/netns/$ns" ]; then
            ip netns del "$ns"
        fi
    done
    rm -rf "$TMP" "$OUT.tmp"
    if [ "$rc" -ne 0 ]; then
        log "FAILED (exit $rc); namespaces and temporary files removed"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# (background jobs below call "ip netns exec" directly, not through these
# functions, so that $! is the process itself: ip netns exec execs the command)
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# leftovers of a run that was killed with SIGKILL
for ns in "$NS_A" "$NS_B"; do
    if [ -e "/run/netns/$ns" ]; then
        log "removing stale namespace $ns"
        ip netns del "$ns"
    fi
done

log "setting up namespaces $NS_A and $NS_B"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "$DEV_A" netns "$NS_A" type veth peer name "$DEV_B" netns "$NS_B"

in_a ip addr add 10.77.0.1/24 dev "$DEV_A"
in_b ip addr add 10.77.0.2/24 dev "$DEV_B"
in_a ip -6 addr add fd77::1/64 dev "$DEV_A" nodad
in_b ip -6 addr add fd77::2/64 dev "$DEV_B" nodad
for ns_dev in "$NS_A:$DEV_A" "$NS_B:$DEV_B"; do
    ns=${ns_dev%%:*}
    dev=${ns_dev#*:}
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$dev" up
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null
    ip netns exec "$ns" sysctl -q -w \
        net.ipv4.tcp_fastopen=3 \
        net.mptcp.enabled=1 \
        net.ipv4.tcp_sack=1 \
        net.ipv4.tcp_timestamps=1 \
        net.ipv4.tcp_window_scaling=1
done
# server accepts and answers ECN; the client turns net.ipv4.tcp_ecn=1 on
# only for the ECN scenario so that the other flows stay plain
in_b sysctl -q -w net.ipv4.tcp_ecn=1

# lose the 2nd and 4th data segment of the SACK flow (conntrack packet 4 and
# 6 in the original direction: SYN=1, ACK=2, data=3,4,...) so the receiver
# sends SACK blocks; tcpdump sees the segments before netfilter drops them.
in_b nft -f - <<EOF
table inet mbfx {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport $PORT_SACK ct original packets { 4, 6 } drop
    }
}
EOF
in_b sysctl -q -w net.netfilter.nf_conntrack_acct=1

# wait until both veth ends report carrier (addresses are nodad: usable at once)
for i in $(seq 50); do
    if ip -n "$NS_A" link show "$DEV_A" | grep -q LOWER_UP && ip -n "$NS_B" link show "$DEV_B" | grep -q LOWER_UP; then
        break
    fi
    [ "$i" -eq 50 ] && { log "veth link did not come up"; exit 1; }
    sleep 0.1
done

PCAP="$TMP/capture.pcap"
log "starting tcpdump on $NS_B/$DEV_B"
ip netns exec "$NS_B" tcpdump -i "$DEV_B" -s 0 -U -nn -Z root -w "$PCAP" tcp 2>"$TMP/tcpdump.err" &
TCPDUMP_PID=$!
for i in $(seq 100); do
    grep -q "listening on" "$TMP/tcpdump.err" 2>/dev/null && break
    if ! kill -0 "$TCPDUMP_PID" 2>/dev/null; then
        cat "$TMP/tcpdump.err" >&2
        log "tcpdump exited"
        exit 1
    fi
    [ "$i" -eq 100 ] && { log "tcpdump did not start"; exit 1; }
    sleep 0.1
done

log "starting server in $NS_B"
ip netns exec "$NS_B" "$PYTHON" "$TRAFFIC" server "$TMP/server.ready" &
SERVER_PID=$!
for i in $(seq 100); do
    [ -e "$TMP/server.ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited"; exit 1; }
    [ "$i" -eq 100 ] && { log "server did not start"; exit 1; }
    sleep 0.1
done

log "generating traffic from $NS_A"
# in the background + wait, so that a TERM/INT reaches the trap at once
ip netns exec "$NS_A" "$PYTHON" "$TRAFFIC" client "$DEV_A" &
CLIENT_PID=$!
wait "$CLIENT_PID"
CLIENT_PID=
sleep 0.5

kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=
cat "$TMP/tcpdump.err" >&2

if [ -n "${MBFX_KEEP_PCAP:-}" ]; then
    cp "$PCAP" "$MBFX_KEEP_PCAP"
    log "raw capture copied to $MBFX_KEEP_PCAP"
fi

# sanity checks on the raw capture (outputs go to files first: "grep -q" in
# a pipeline would SIGPIPE the producer and trip pipefail)
tshark -r "$PCAP" -Y '_ws.malformed || _ws.expert.severity == error' >"$TMP/tshark-bad.txt" 2>/dev/null
if [ -s "$TMP/tshark-bad.txt" ]; then
    cat "$TMP/tshark-bad.txt" >&2
    log "tshark reports malformed packets in the capture"
    exit 1
fi
tcpdump -r "$PCAP" -nn -v >"$TMP/tcpdump-v.txt" 2>/dev/null
if grep -q "incorrect" "$TMP/tcpdump-v.txt"; then
    grep "incorrect" "$TMP/tcpdump-v.txt" >&2
    log "tcpdump reports bad checksums in the capture"
    exit 1
fi
if ! grep -q "sack [0-9]" "$TMP/tcpdump-v.txt"; then
    log "no SACK blocks in the capture"
    exit 1
fi

log "converting $(grep -c '^[0-9]' "$TMP/tcpdump-v.txt") captured packets"
mkdir -p "$(dirname "$OUT")"
"$PYTHON" "$TRAFFIC" convert "$PCAP" "$TMP/linux-segments.txt" \
    "kernel $(uname -r), $(tcpdump --version 2>&1 | sed -n 1p); veth pair, offloads off, MTU 1500" \
    "(sequence numbers, ports, timestamps and keys differ on every run)"
"$PYTHON" "$TRAFFIC" check "$TMP/linux-segments.txt" "$TMP/fixture-check.pcap"
cp "$TMP/linux-segments.txt" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
log "done: $OUT"
