#!/usr/bin/env python3
"""A DNS server for tests/net/sandbox.sh: answers A queries for NAME with ADDR, AAAA queries
with no answer, and anything else with NXDOMAIN, over UDP on ADDR:53, until killed.

    dns_server.py ADDR NAME
"""
import socket
import struct
import sys


def main():
    addr, name = sys.argv[1], sys.argv[2].rstrip(".").lower()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    while True:
        query, peer = s.recvfrom(4096)
        if len(query) < 12:
            continue
        ident, flags, qdcount = struct.unpack(">HHH", query[:6])
        if qdcount != 1:
            continue
        # The question: labels, then type and class.
        at, labels = 12, []
        while at < len(query) and query[at] != 0:
            n = query[at]
            labels.append(query[at + 1:at + 1 + n].decode("ascii", "replace"))
            at += 1 + n
        at += 1
        if at + 4 > len(query):
            continue
        qtype = struct.unpack(">H", query[at:at + 2])[0]
        question = query[12:at + 4]
        asked = ".".join(labels).lower()
        rd = flags & 0x0100
        if asked != name:
            header = struct.pack(">HHHHHH", ident, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0)
            s.sendto(header + question, peer)
            continue
        answers = b""
        count = 0
        if qtype == 1:
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
            count = 1
        header = struct.pack(">HHHHHH", ident, 0x8000 | rd | 0x0080, 1, count, 0, 0)
        s.sendto(header + question + answers, peer)


if __name__ == "__main__":
    main()
