"""Listens on an interface (tests/net/sandbox.sh: the host's end of the veth) for the
sandbox's multicast membership reports: an IGMPv3 report with a record for 239.1.2.3 and
an MLDv2 report with a record for ff12::1:2, each sent with TTL or hop limit 1. Writes one
line per kind seen to OUT, once, and exits when both came or after SECONDS.

    reports.py IFACE OUT SECONDS
"""
import ipaddress
import socket
import sys
import time

ETH_P_ALL = 0x0003


def igmp_groups(ip):
    """The groups of an IGMPv3 report in IPv4 packet ip, or None."""
    ihl = (ip[0] & 0x0F) * 4
    if len(ip) < ihl + 8 or ip[9] != 2 or ip[8] != 1:
        return None
    msg = ip[ihl:]
    if msg[0] != 0x22:
        return None
    n = int.from_bytes(msg[6:8], "big")
    return [str(ipaddress.IPv4Address(msg[8 + k * 8 + 4:8 + k * 8 + 8])) for k in range(n)]


def mld_groups(ip):
    """The groups of an MLDv2 report (after a hop-by-hop header) in IPv6 packet ip, or None."""
    if len(ip) < 40 + 8 + 8 or ip[6] != 0 or ip[7] != 1:
        return None
    hbh = ip[40:]
    if hbh[0] != 58:
        return None
    msg = hbh[(hbh[1] + 1) * 8:]
    if not msg or msg[0] != 143:
        return None
    n = int.from_bytes(msg[6:8], "big")
    return [str(ipaddress.IPv6Address(msg[8 + k * 20 + 4:8 + k * 20 + 20])) for k in range(n)]


def main():
    iface, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.5)
    seen = set()
    end = time.time() + seconds
    while time.time() < end and len(seen) < 2:
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        kind = int.from_bytes(frame[12:14], "big")
        if kind == 0x0800 and "239.1.2.3" in (igmp_groups(frame[14:]) or []):
            seen.add("igmp")
        if kind == 0x86DD and "ff12::1:2" in (mld_groups(frame[14:]) or []):
            seen.add("mld")
    with open(out, "w") as f:
        for k in sorted(seen):
            f.write(k + "\n")


main()
