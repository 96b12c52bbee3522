#!/usr/bin/env python3
"""UDP broadcast for tests/net/sandbox.sh, over the /30 whose broadcast address is ADDR.

    broadcast.py listen PORT OUT    the host side: writes the first datagram to OUT
    broadcast.py send ADDR PORT     the host side: a broadcast every 0.1 s, until killed
    broadcast.py inside ADDR        in the sandbox: EACCES without SO_BROADCAST, then a
                                    broadcast to port 5401, then waits for one on 5400
"""
import errno
import socket
import sys
import time


def main():
    mode = sys.argv[1]
    if mode == "listen":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", int(sys.argv[2])))
        s.settimeout(60)
        data, _ = s.recvfrom(2048)
        with open(sys.argv[3], "wb") as f:
            f.write(data)
        return 0
    if mode == "send":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        while True:
            s.sendto(b"a broadcast from the host side", (sys.argv[2], int(sys.argv[3])))
            time.sleep(0.1)
    # inside
    addr = sys.argv[2]
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("", 5400))
    r.settimeout(20)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", (addr, 5401))
        print("inside: broadcast without SO_BROADCAST: sent")
    except OSError as e:
        print("inside: broadcast without SO_BROADCAST: %s" % errno.errorcode[e.errno])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.sendto(b"a broadcast from the sandbox", (addr, 5401))
    data, _ = r.recvfrom(2048)
    print("inside: received %s" % data.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
