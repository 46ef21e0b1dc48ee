#!/usr/bin/env python3
"""Helper for scripts/capture-fixtures.sh (not meant to be run by hand).

Sub-commands:
  server READY_FILE            run in namespace mbfx-b: listeners for every scenario
  client IFACE                 run in namespace mbfx-a: drive every scenario
  convert PCAP OUT [HDR...]    turn the capture into test/fixtures/linux-segments.txt
  check FIXTURE [PCAP]         re-read a fixture file and sanity-check every block;
                               with PCAP, also write the blocks as a raw-IP pcap
                               and have tshark verify them

Traffic is only ever exchanged between the two namespaces' own addresses
(10.77.0.1 <-> 10.77.0.2 and fd77::1 <-> fd77::2).
"""

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

CLIENT = {socket.AF_INET: "10.77.0.1", socket.AF_INET6: "fd77::1"}
SERVER = {socket.AF_INET: "10.77.0.2", socket.AF_INET6: "fd77::2"}
FAMILIES = (socket.AF_INET, socket.AF_INET6)

# scenario -> server port.  The converter uses the port to know which
# scenario a captured segment belongs to.
PORTS = {
    "normal": 5001,
    "closed": 5002,   # nothing listens here: SYN answered by RST
    "unread": 5003,   # server closes with unread data: RST
    "linger0": 5004,  # client closes with SO_LINGER 0: RST
    "sack": 5005,     # nft in mbfx-b drops 2 data segments -> SACK blocks
    "ecn": 5006,      # client toggles net.ipv4.tcp_ecn=1
    "urg": 5007,      # MSG_OOB -> URG flag + urgent pointer
    "tfo": 5008,      # TCP Fast Open: cookie request, then cookie + data
    "mptcp": 5009,    # IPPROTO_MPTCP on both sides
    "bulk": 5010,     # 128 KiB one way, locked receive buffer -> other wscale
    "nots": 5011,     # client has tcp_timestamps=0: short segments, padded copy
}
PORT_TO_SCENARIO = {v: k for k, v in PORTS.items()}

IPPROTO_MPTCP = 262
MSG_FASTOPEN = getattr(socket, "MSG_FASTOPEN", 0x20000000)
TCP_FASTOPEN = getattr(socket, "TCP_FASTOPEN", 23)
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

SETTLE = 0.25  # seconds between scenarios so flows do not interleave


def log(*a):
    print("[traffic]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# server (namespace mbfx-b)
# --------------------------------------------------------------------------

def recv_all(conn):
    """Read until EOF (or reset); return the number of bytes read."""
    n = 0
    while True:
        try:
            b = conn.recv(65536)
        except ConnectionResetError:
            return n
        if not b:
            return n
        n += len(b)


def handle(scenario, conn):
    try:
        if scenario in ("normal", "ecn", "tfo", "nots"):
            conn.recv(4096)
            conn.sendall(b"mbprobe-reply " + scenario.encode() + b"\n")
            recv_all(conn)
        elif scenario == "unread":
            # wait until the client's data is queued, then close without
            # reading it: Linux answers with RST instead of FIN.
            select.select([conn], [], [], 5)
            time.sleep(0.05)
        elif scenario == "mptcp":
            while True:
                b = conn.recv(4096)
                if not b:
                    break
                conn.sendall(b"echo:" + b)
        else:  # linger0, sack, urg, bulk
            recv_all(conn)
    except OSError as e:
        log("server", scenario, "error", e)
    finally:
        conn.close()


def listener(fam, scenario):
    proto = IPPROTO_MPTCP if scenario == "mptcp" else 0
    s = socket.socket(fam, socket.SOCK_STREAM, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if scenario == "tfo":
        s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 16)
    if scenario == "bulk":
        # a locked receive buffer makes Linux pick a smaller window scale
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((SERVER[fam], PORTS[scenario]))
    s.listen(16)
    return s


def accept_loop(s, scenario):
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(scenario, conn), daemon=True).start()


def server(ready_file):
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    for fam in FAMILIES:
        for scenario in PORTS:
            if scenario == "closed":
                continue
            s = listener(fam, scenario)
            threading.Thread(target=accept_loop, args=(s, scenario), daemon=True).start()
    with open(ready_file, "w") as f:
        f.write("ready\n")
    while True:
        time.sleep(3600)


# --------------------------------------------------------------------------
# client (namespace mbfx-a)
# --------------------------------------------------------------------------

def addr(fam, scenario):
    return (SERVER[fam], PORTS[scenario])


def tcp_socket(fam, proto=0):
    s = socket.socket(fam, socket.SOCK_STREAM, proto)
    s.settimeout(10)
    return s


def set_sysctl(path, value):
    with open("/proc/sys/" + path, "w") as f:
        f.write(str(value))


def get_sysctl(path):
    with open("/proc/sys/" + path) as f:
        return f.read().strip()


def graceful_close(s):
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()


def sc_normal(fam, scenario="normal"):
    s = tcp_socket(fam)
    s.connect(addr(fam, scenario))
    s.sendall(b"mbprobe-request " + scenario.encode() + b"\n")
    s.recv(4096)
    graceful_close(s)


def sc_closed(fam):
    s = tcp_socket(fam)
    try:
        s.connect(addr(fam, "closed"))
    except ConnectionRefusedError:
        pass
    else:
        raise SystemExit("connect to closed port unexpectedly succeeded")
    s.close()


def sc_unread(fam):
    s = tcp_socket(fam)
    s.connect(addr(fam, "unread"))
    s.sendall(b"this data is never read by the server")
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()


def sc_linger0(fam):
    s = tcp_socket(fam)
    s.connect(addr(fam, "linger0"))
    s.sendall(b"bye")
    time.sleep(0.1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def sc_nots(fam, iface):
    """A connection without TCP timestamps (client sysctl off for it).

    Its pure ACKs are 40-byte IPv4 packets, i.e. 54-byte Ethernet frames.
    veth never pads short frames (a physical NIC pads them to 60 bytes), so
    the client grabs its own handshake ACK with an AF_PACKET socket and sends
    one extra copy with zero padding up to 60 bytes.  The server just sees a
    duplicate ACK; the capture gets a genuinely padded frame, which becomes
    the eth-padded fixture."""
    old = get_sysctl("net/ipv4/tcp_timestamps")
    set_sysctl("net/ipv4/tcp_timestamps", 0)
    ps = None
    try:
        if fam == socket.AF_INET:
            ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            ps.bind((iface, 0))
            ps.settimeout(2)
        s = tcp_socket(fam)
        s.connect(addr(fam, "nots"))
    finally:
        set_sysctl("net/ipv4/tcp_timestamps", old)
    if ps is not None:
        lport = s.getsockname()[1]
        frame = None
        deadline = time.time() + 3
        while time.time() < deadline and frame is None:
            try:
                data, meta = ps.recvfrom(65535)
            except socket.timeout:
                break
            if meta[2] != PACKET_OUTGOING or len(data) < 54 or data[12:14] != b"\x08\x00":
                continue
            if data[23] != 6:
                continue
            tcp = 14 + (data[14] & 0x0F) * 4
            sport = struct.unpack("!H", data[tcp:tcp + 2])[0]
            if sport == lport and data[tcp + 13] == 0x10:  # pure ACK
                frame = data
        ps.close()
        if frame is None:
            raise SystemExit("did not see our own handshake ACK on %s" % iface)
        if len(frame) >= 60:
            raise SystemExit("ACK frame is %d bytes, no padding needed" % len(frame))
        time.sleep(0.05)
        ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        ps.bind((iface, 0))
        ps.send(frame + b"\x00" * (60 - len(frame)))
        ps.close()
        time.sleep(0.05)
    s.sendall(b"mbprobe-request nots\n")
    s.recv(4096)
    graceful_close(s)


def sc_sack(fam):
    s = tcp_socket(fam)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect(addr(fam, "sack"))
    mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    payload = bytes((i * 7) & 0xFF for i in range(mss * 8))
    s.sendall(payload)
    time.sleep(0.3)  # let the loss recovery finish before FIN
    graceful_close(s)


def sc_ecn(fam):
    old = get_sysctl("net/ipv4/tcp_ecn")
    set_sysctl("net/ipv4/tcp_ecn", 1)
    try:
        sc_normal(fam, "ecn")
    finally:
        set_sysctl("net/ipv4/tcp_ecn", old)


def sc_urg(fam):
    s = tcp_socket(fam)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect(addr(fam, "urg"))
    s.sendall(b"normal data before urgent byte")
    time.sleep(0.05)
    s.send(b"!", socket.MSG_OOB)
    time.sleep(0.05)
    graceful_close(s)


def sc_tfo(fam):
    for i in (1, 2):
        s = tcp_socket(fam)
        s.settimeout(None)  # a socket with a timeout would get EINPROGRESS here
        s.sendto(b"mbprobe-tfo-%d data in SYN?" % i, MSG_FASTOPEN, addr(fam, "tfo"))
        s.settimeout(10)
        s.recv(4096)
        graceful_close(s)
        time.sleep(SETTLE)


def sc_mptcp(fam):
    s = tcp_socket(fam, IPPROTO_MPTCP)
    s.connect(addr(fam, "mptcp"))
    for i in (1, 2, 3):
        s.sendall(b"mptcp ping %d" % i)
        s.recv(4096)
    graceful_close(s)


def sc_bulk(fam):
    s = tcp_socket(fam)
    s.connect(addr(fam, "bulk"))
    s.sendall(b"\xa5" * (128 * 1024))
    graceful_close(s)


def client(iface):
    # tcp_ecn is toggled per scenario; make sure the default is "accept only"
    set_sysctl("net/ipv4/tcp_ecn", 2)
    for fam in FAMILIES:
        fname = "v4" if fam == socket.AF_INET else "v6"
        for name, fn in (
            ("normal", sc_normal),
            ("closed", sc_closed),
            ("unread", sc_unread),
            ("linger0", sc_linger0),
            ("sack", sc_sack),
            ("ecn", sc_ecn),
            ("urg", sc_urg),
            ("tfo", sc_tfo),
            ("mptcp", sc_mptcp),
            ("bulk", sc_bulk),
            ("nots", lambda f: sc_nots(f, iface)),
        ):
            log(fname, name)
            fn(fam)
            time.sleep(SETTLE)


# --------------------------------------------------------------------------
# pcap -> fixture
# --------------------------------------------------------------------------

def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise SystemExit("%s: not a classic pcap file" % path)
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        raise SystemExit("%s: link type %d, expected Ethernet (1)" % (path, linktype))
    off, frames = 24, []
    while off < len(data):
        _, _, incl, orig = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if incl != orig:
            raise SystemExit("packet truncated by snaplen (%d < %d)" % (incl, orig))
        frames.append(data[off:off + incl])
        off += incl
    return frames


def tcpdump_lines(path):
    out = subprocess.run(
        ["tcpdump", "-r", path, "-nn", "-v", "-t"],
        check=True, capture_output=True, text=True,
    ).stdout
    pkts = []
    for line in out.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            pkts[-1] += " " + line.strip()
        else:
            pkts.append(line.rstrip())
    return pkts


class Seg:
    pass


def parse_ip(frame):
    """Return a Seg describing the Ethernet frame's IP/TCP contents."""
    seg = Seg()
    ethertype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if ethertype == 0x0800:
        seg.fam = "v4"
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        seg.ecn = ip[1] & 3
        if ip[9] != 6:
            return None
    elif ethertype == 0x86DD:
        seg.fam = "v6"
        ihl = 40
        total = 40 + struct.unpack("!H", ip[4:6])[0]
        seg.ecn = (struct.unpack("!I", ip[0:4])[0] >> 20) & 3
        if ip[6] != 6:
            return None  # no extension headers expected from plain Linux TCP
    else:
        return None
    if total > len(ip):
        raise SystemExit("IP packet longer than the captured frame")
    seg.padding = len(ip) - total
    seg.ip = ip[:total]
    seg.raw = ip  # IP packet plus whatever trailer the frame had
    tcp = seg.ip[ihl:]
    seg.sport, seg.dport, seg.seq, seg.ack = struct.unpack("!HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    seg.flags = tcp[13] | ((tcp[12] & 1) << 8)
    seg.urp = struct.unpack("!H", tcp[18:20])[0]
    seg.payload = len(tcp) - doff
    seg.opts = []      # (kind, value) of every option except NOP/EOL
    seg.layout = []    # (kind, length) of everything in the option area
    o = tcp[20:doff]
    i = 0
    while i < len(o):
        kind = o[i]
        if kind in (0, 1):
            seg.layout.append((kind, 1))
            i += 1
            continue
        ln = o[i + 1]
        if ln < 2 or i + ln > len(o):
            raise SystemExit("malformed TCP option in capture")
        seg.opts.append((kind, o[i + 2:i + ln]))
        seg.layout.append((kind, ln))
        i += ln
    return seg


def signature(seg):
    """What makes a segment structurally different for the codec: flags,
    option layout (plus window scale and MPTCP subtype/flags), ECN bits,
    whether it carries data, and trailing padding."""
    extra = []
    for kind, val in seg.opts:
        if kind == 3:
            extra.append(("ws", val[0]))
        elif kind == 30:
            extra.append(("mptcp", val[:2]))
    return (seg.fam, seg.flags, tuple(seg.layout), tuple(extra), seg.ecn,
            seg.payload > 0, seg.payload == seg.mss_hint, seg.padding > 0)


F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG, F_ECE, F_CWR = 1, 2, 4, 8, 16, 32, 64, 128


def describe(seg, direction, retrans):
    """Short name fragment for a segment: flags first, then notable extras."""
    f = seg.flags
    parts = []
    if f & F_SYN:
        parts.append("synack" if f & F_ACK else "syn")
    elif f & F_RST:
        parts.append("rstack" if f & F_ACK else "rst")
    elif f & F_FIN:
        parts.append("fin")
    elif seg.payload:
        parts.append("data")
    else:
        parts.append("ack")
    if seg.payload and (f & (F_SYN | F_FIN | F_RST)):
        parts.append("data")
    if not f & F_SYN:
        parts.append(direction)
    if retrans:
        parts.append("retrans")
    if f & F_URG:
        parts.append("urg")
    if f & F_ECE and f & F_CWR:
        parts.append("ece-cwr")
    elif f & F_ECE:
        parts.append("ece")
    elif f & F_CWR:
        parts.append("cwr")
    if seg.ecn == 2:
        parts.append("ect0")
    elif seg.ecn == 1:
        parts.append("ect1")
    elif seg.ecn == 3:
        parts.append("ce")
    for kind, val in seg.opts:
        if kind == 5:
            parts.append("sack%d" % (len(val) // 8))
        elif kind == 34:
            parts.append("tfo-cookie" if val else "tfo-req")
        elif kind == 30:
            sub = val[0] >> 4
            if sub == 0:
                parts.append("mpc")
            elif sub == 2:
                parts.append("dss")
                if len(val) > 1 and val[1] & 0x10:
                    parts.append("datafin")
            else:
                parts.append("mptcp%d" % sub)
    if seg.payload and seg.payload == seg.mss_hint:
        parts.append("fullsize")
    if seg.padding:
        parts.append("eth-padded")
    return "-".join(parts)


# Which segments of a scenario are the reason the scenario exists: these are
# always kept (at most one per name).  All other segments are kept only
# if no earlier segment had the same signature(), so repeated handshakes,
# FINs and bulk ACKs appear once.
def essential(scenario, name, seg):
    if seg.padding:
        return True
    if scenario in ("closed", "unread", "linger0"):
        return bool(seg.flags & F_RST)
    if scenario == "sack":
        return bool(re.search(r"-sack\d", name)) or "fullsize" in name
    if scenario == "ecn":
        # ECN bits are part of signature(): one of each kind survives
        return False
    if scenario == "urg":
        return bool(seg.flags & F_URG)
    if scenario == "tfo":
        return "tfo-" in name
    if scenario == "mptcp":
        # every MP_CAPABLE form; DSS variants are told apart by signature()
        return "-mpc" in name
    if scenario == "bulk":
        return bool(seg.flags & F_SYN) or "fullsize" in name or "ack-s2c" in name
    return False


def hexblock(b):
    h = b.hex()
    return "\n".join(h[i:i + 64] for i in range(0, len(h), 64))


def convert(pcap, out, header):
    frames = read_pcap(pcap)
    lines = tcpdump_lines(pcap)
    if len(lines) != len(frames):
        raise SystemExit("tcpdump printed %d packets, pcap holds %d" % (len(lines), len(frames)))
    segs = []
    for frame, line in zip(frames, lines):
        seg = parse_ip(frame)
        if seg is None:
            continue
        seg.line = line
        segs.append(seg)

    # flows: (family, client port, server port) in order of first appearance
    flow_index = {}
    flow_mss = {}
    flow_maxseq = {}
    blocks = []
    counts = {}
    seen = set()
    for seg in segs:
        if seg.dport in PORT_TO_SCENARIO:
            scen, cport, direction = PORT_TO_SCENARIO[seg.dport], seg.sport, "c2s"
        elif seg.sport in PORT_TO_SCENARIO:
            scen, cport, direction = PORT_TO_SCENARIO[seg.sport], seg.dport, "s2c"
        else:
            raise SystemExit("segment on unexpected ports %d > %d" % (seg.sport, seg.dport))
        key = (seg.fam, scen, cport)
        if key not in flow_index:
            n = sum(1 for k in flow_index if k[:2] == key[:2]) + 1
            flow_index[key] = n
        label = scen if flow_index[key] == 1 else "%s%d" % (scen, flow_index[key])
        if scen == "tfo":
            label = "tfo%d" % flow_index[key]
        # the MSS announced by the other side bounds our full-size segments;
        # timestamps (12 bytes with padding) are taken out of every segment
        for kind, val in seg.opts:
            if kind == 2 and len(val) == 2:
                flow_mss[(key, direction)] = struct.unpack("!H", val)[0]
        other = "s2c" if direction == "c2s" else "c2s"
        has_ts = any(k == 8 for k, _ in seg.opts)
        mss = flow_mss.get((key, other))
        seg.mss_hint = (mss - 12 if has_ts else mss) if mss else -1
        # retransmission: data that does not advance the highest sequence seen
        end = (seg.seq + seg.payload) & 0xFFFFFFFF
        fk = (key, direction)
        retrans = False
        if seg.payload and not seg.flags & F_SYN and fk in flow_maxseq:
            top = flow_maxseq[fk]
            if ((top - end) & 0xFFFFFFFF) < 0x80000000 and not seg.padding:
                retrans = True
        if seg.payload and not retrans:
            flow_maxseq[fk] = end
        name = "%s-%s-%s" % (seg.fam, label, describe(seg, direction, retrans))
        sig = signature(seg)
        if not essential(scen, name, seg) and sig in seen:
            continue
        seen.add(sig)
        counts[name] = counts.get(name, 0) + 1
        if counts[name] > 1:
            continue  # one fixture per name is enough
        raw = seg.raw if seg.padding else seg.ip
        blocks.append((name, seg.line, raw))

    names = [b[0] for b in blocks]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate fixture names")
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("# mbprobe fixture corpus: real Linux segments captured between two network "
                "namespaces by scripts/capture-fixtures.sh\n")
        for h in header:
            f.write("# %s\n" % h)
        f.write("# %d segments; hex is the whole IP packet (no Ethernet header), exactly as "
                "captured; the eth-padded block keeps the\n" % len(blocks))
        f.write("# Ethernet padding that follows the IP packet (veth does not pad, so that frame is "
                "the kernel's own ACK re-sent\n")
        f.write("# through AF_PACKET with zero padding to the 60-byte Ethernet minimum, as a "
                "physical NIC would).\n")
        for name, line, raw in blocks:
            f.write("\n## %s\n# %s\n%s\n" % (name, line, hexblock(raw)))
    os.replace(tmp, out)
    for name, _, raw in blocks:
        print("%-45s %4d bytes" % (name, len(raw)))
    print("%d fixtures written to %s" % (len(blocks), out))


# --------------------------------------------------------------------------
# fixture self-check
# --------------------------------------------------------------------------

def check(path, pcap_out=None):
    text = open(path).read()
    lines = text.split("\n")
    if not lines[0].startswith("# mbprobe fixture corpus:"):
        raise SystemExit("bad first line")
    blocks, cur = [], None
    for ln in lines:
        if ln.startswith("## "):
            cur = {"name": ln[3:], "comment": [], "hex": ""}
            blocks.append(cur)
        elif cur is None:
            if ln and not ln.startswith("#"):
                raise SystemExit("non-comment line before first block: %r" % ln)
        elif ln.startswith("#"):
            if cur["hex"]:
                raise SystemExit("%s: comment after hex" % cur["name"])
            cur["comment"].append(ln)
        elif ln:
            if not re.fullmatch(r"[0-9a-f]{2,64}", ln) or len(ln) % 2:
                raise SystemExit("%s: bad hex line %r" % (cur["name"], ln))
            cur["hex"] += ln
    names = set()
    padded = 0
    for b in blocks:
        if b["name"] in names or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", b["name"]):
            raise SystemExit("bad or duplicate name %r" % b["name"])
        names.add(b["name"])
        if len(b["comment"]) != 1:
            raise SystemExit("%s: expected one description line" % b["name"])
        raw = bytes.fromhex(b["hex"])
        v = raw[0] >> 4
        total = struct.unpack("!H", raw[2:4])[0] if v == 4 else 40 + struct.unpack("!H", raw[4:6])[0]
        if v not in (4, 6) or total > len(raw):
            raise SystemExit("%s: not a complete IP packet" % b["name"])
        if total < len(raw):
            padded += 1
            if "padded" not in b["name"]:
                raise SystemExit("%s: trailing bytes in a block not named padded" % b["name"])
        if "(incorrect" in b["comment"][0]:
            raise SystemExit("%s: tcpdump reports a bad checksum" % b["name"])
    if padded != 1:
        raise SystemExit("expected exactly one padded block, found %d" % padded)
    # hex lines must be exactly 64 chars except the last of each block
    prev_short = False
    for ln in lines:
        if ln.startswith("## "):
            prev_short = False
        elif ln and not ln.startswith("#"):
            if prev_short:
                raise SystemExit("short hex line in the middle of a block")
            prev_short = len(ln) < 64
    if pcap_out:
        # cross-check with tshark: every block as a raw-IP (linktype 101)
        # packet, checksums verified, nothing malformed
        with open(pcap_out, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
            for i, b in enumerate(blocks):
                raw = bytes.fromhex(b["hex"])
                f.write(struct.pack("<IIII", i, 0, len(raw), len(raw)))
                f.write(raw)
        args = ["tshark", "-r", pcap_out, "-o", "tcp.check_checksum:TRUE",
                "-o", "ip.check_checksum:TRUE"]
        total = subprocess.run(args + ["-T", "fields", "-e", "frame.number"],
                               check=True, capture_output=True, text=True).stdout.split()
        if len(total) != len(blocks):
            raise SystemExit("tshark read %d packets, expected %d" % (len(total), len(blocks)))
        bad = subprocess.run(
            args + ["-Y", "_ws.malformed || _ws.expert.severity == error || "
                    "tcp.checksum.status == 0 || ip.checksum.status == 0"],
            check=True, capture_output=True, text=True).stdout
        if bad.strip():
            names = [blocks[int(l.split()[0]) - 1]["name"] for l in bad.strip().splitlines()]
            print(bad, file=sys.stderr)
            raise SystemExit("tshark flags blocks: %s" % ", ".join(names))
    print("%s: %d blocks OK" % (path, len(blocks)))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd = sys.argv[1]
    if cmd == "server":
        server(sys.argv[2])
    elif cmd == "client":
        client(sys.argv[2])
    elif cmd == "convert":
        convert(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
