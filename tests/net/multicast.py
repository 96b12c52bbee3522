#!/usr/bin/env python3
"""UDP multicast for tests/net/sandbox.sh: group 239.1.2.3 over the veth pair.

    multicast.py listen IFADDR OUT   the host side: joins on IFADDR's interface, port 5501,
                                     and writes the first datagram to OUT
    multicast.py send IFADDR         the host side: to port 5500 every 0.1 s, until killed
    multicast.py inside              in the sandbox: joins on port 5500, sends to 5501 (which
                                     another member of its own hears, IP_MULTICAST_LOOP),
                                     then waits for the host's
"""
import socket
import struct
import sys
import time

GROUP = "239.1.2.3"


def member(port, ifaddr="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(ifaddr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.settimeout(30)
    return s


def main():
    mode = sys.argv[1]
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
