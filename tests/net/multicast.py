#!/usr/bin/env python3
"""UDP multicast for tests/net/sandbox.sh: groups 239.1.2.3 and ff12::1:2 over the veth pair.

    multicast.py listen IFADDR OUT   the host side: joins on IFADDR's interface, port 5501,
                                     and writes the first datagram to OUT
    multicast.py send IFADDR         the host side: to port 5500 every 0.1 s, until killed
    multicast.py inside              in the sandbox: joins on port 5500, sends to 5501 (which
                                     another member of its own hears, IP_MULTICAST_LOOP),
                                     then waits for the host's
    multicast.py listen6 IFNAME OUT  IPv6, the host side: joins on interface IFNAME, port
                                     5511, and writes the first datagram and its hop limit
                                     to OUT
    multicast.py send6 IFNAME        IPv6, the host side: out of IFNAME to port 5510 every
                                     0.1 s, until killed
    multicast.py inside6             IPv6, in the sandbox: joins on port 5510 on the
                                     interface the group's route picks (index 0) and on
                                     5511 on its interface by index, sends to 5511 with hop
                                     limit 2 (its own member hears it, IPV6_MULTICAST_LOOP),
                                     then waits for the host's
"""
import socket
import struct
import sys
import time

GROUP = "239.1.2.3"
GROUP6 = "ff12::1:2"


def member(port, ifaddr="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(ifaddr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.settimeout(30)
    return s


def member6(port, ifindex):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    s.bind(("::", port))
    mreq = socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    s.settimeout(30)
    return s


def receive6(s):
    """A datagram and the hop limit it came with."""
    data, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(4))
    hops = -1
    for level, kind, value in anc:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
            hops = struct.unpack("@i", value[:4])[0]
    return data, hops


def main6(mode):
    if mode == "listen6":
        s = member6(5511, socket.if_nametoindex(sys.argv[2]))
        data, hops = receive6(s)
        with open(sys.argv[3], "w") as f:
            f.write("%s (hop limit %d)" % (data.decode(), hops))
        return 0
    if mode == "send6":
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                     socket.if_nametoindex(sys.argv[2]))
        while True:
            s.sendto(b"a group datagram from the host side", (GROUP6, 5510))
            time.sleep(0.1)
    # The sandbox's own interface: the one that is not loopback.
    ifindex = [i for i, name in socket.if_nameindex() if name != "lo"][0]
    r = member6(5510, 0)
    loop = member6(5511, ifindex)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    print("inside: IPV6_MULTICAST_HOPS %d, IPV6_MULTICAST_LOOP %d" %
          (s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS),
           s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP)))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 2)
    s.sendto(b"a group datagram from the sandbox", (GROUP6, 5511))
    data, hops = receive6(loop)
    print("inside: looped back over IPv6: %s (hop limit %d)" % (data.decode(), hops))
    data, _ = receive6(r)
    print("inside: received over IPv6 %s" % data.decode())
    return 0


def main():
    mode = sys.argv[1]
    if mode in ("listen6", "send6", "inside6"):
        return main6(mode)
    if mode == "listen":
        s = member(5501, sys.argv[2])
        data, _ = s.recvfrom(2048)
        with open(sys.argv[3], "wb") as f:
            f.write(data)
        return 0
    if mode == "send":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[2]))
        while True:
            s.sendto(b"a group datagram from the host side", (GROUP, 5500))
            time.sleep(0.1)
    r = member(5500)
    loop = member(5501)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print("inside: IP_MULTICAST_TTL %d, IP_MULTICAST_LOOP %d" %
          (s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL),
           s.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP)))
    s.sendto(b"a group datagram from the sandbox", (GROUP, 5501))
    data, _ = loop.recvfrom(2048)
    print("inside: looped back: %s" % data.decode())
    data, _ = r.recvfrom(2048)
    print("inside: received %s" % data.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
