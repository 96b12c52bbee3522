#!/usr/bin/env python3
"""TCP urgent data (MSG_OOB) for tests/net/sandbox.sh, between the host side and the
sandbox's own TCP stack, both ways. Each side sends "ab", then one urgent byte, then the
rest; the receiver waits for the urgent data (select's exceptional set: POLLPRI), reads
up to the mark (SIOCATMARK then says 1), takes the urgent byte with MSG_OOB, and reads
the rest; the socket's owner (F_SETOWN) hears SIGURG. What it saw is one line:
"ab mark=1 oob=c de sigurg=1". Then the sandbox sets SO_OOBINLINE on its live
connection, and the host's next urgent byte stays in its stream (MSG_OOB is EINVAL).

    urgent.py host ADDR PORT OUT    the host side: serves one connection, writes to OUT
    urgent.py inside ADDR PORT      in the sandbox: connects, prints what it saw
"""
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

SIOCATMARK = 0x8905


def at_mark(s):
    return struct.unpack("i", fcntl.ioctl(s, SIOCATMARK, struct.pack("i", 0)))[0]


def send_around(s, before, urgent, after):
    s.send(before)
    time.sleep(0.2)  # "ab" goes on its own, before the urgent pointer
    s.send(urgent, socket.MSG_OOB)
    s.send(after)


def receive_around(s, after_len):
    r, _, x = select.select([], [], [s], 20)
    if not x:
        return "no urgent data"
    # The owner (F_SETOWN, set before the connection) heard SIGURG.
    urg = signal.sigtimedwait([signal.SIGURG], 5)
    head = b""
    for _ in range(100):
        if at_mark(s):
            break
        head += s.recv(100)
    mark = at_mark(s)
    oob = s.recv(1, socket.MSG_OOB)
    tail = b""
    s.settimeout(20)
    while len(tail) < after_len:
        got = s.recv(100)
        if not got:
            break
        tail += got
    return "%s mark=%d oob=%s %s sigurg=%d" % (head.decode(), mark, oob.decode(), tail.decode(),
                                                urg is not None and urg.si_signo == signal.SIGURG)


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGURG])
    if mode == "host":
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr, port))
        srv.listen(1)
        srv.settimeout(120)
        c, _ = srv.accept()
        fcntl.fcntl(c, fcntl.F_SETOWN, os.getpid())
        send_around(c, b"ab", b"c", b"de")
        seen = receive_around(c, 1)
        with open(sys.argv[4], "w") as f:
            f.write(seen + "\n")
        # The sandbox set SO_OOBINLINE on its connection before it sent: this urgent
        # byte stays in its stream.
        send_around(c, b"f", b"g", b"h")
        time.sleep(0.5)
        c.close()
        return 0
    s = None
    for _ in range(100):
        try:
            s = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            time.sleep(0.1)
    if s is None:
        print("inside: urgent data: no connection")
        return 0
    fcntl.fcntl(s, fcntl.F_SETOWN, os.getpid())
    print("inside: urgent data from the host: " + receive_around(s, 2))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    send_around(s, b"xy", b"z", b"w")
    inline = b""
    s.settimeout(20)
    while len(inline) < 3:
        got = s.recv(100)
        if not got:
            break
        inline += got
    try:
        s.recv(1, socket.MSG_OOB)
        oob = "a byte"
    except OSError as e:
        oob = errno.errorcode.get(e.errno, str(e.errno))
    print("inside: inline urgent data: %s, MSG_OOB %s" % (inline.decode(), oob))
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
