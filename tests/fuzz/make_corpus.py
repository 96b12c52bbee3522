#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into corpus/<target>/.

The seeds are small hand-made inputs that reach past the first checks of
each target: minimal ELF files and #! scripts, gofer request sequences that
attach, walk, open and list, and paths through the symlinks of path_fuzz's
tree. Run it again after changing a seed; the files are committed.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# ELF (elf_fuzz.cc: the input is /prog; after ELF_SPLIT comes /i).

ELF_SPLIT = b"\xff\xfe\xfd\xfc"
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_INTERP, PT_PHDR = 1, 3, 6
PF_X, PF_W, PF_R = 1, 2, 4
EXIT0 = bytes([0xB8, 0x3C, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05])  # exit(0)


def phdr(ptype, flags, offset, vaddr, filesz, memsz, align):
    return struct.pack("<IIQQQQQQ", ptype, flags, offset, vaddr, vaddr, filesz, memsz, align)


def elf(etype, interp=b"", bss=0x100, with_phdr=False):
    """Header, program headers, code at 0x100, the PT_INTERP string after."""
    base = 0x400000 if etype == ET_EXEC else 0
    code, data = 0x100, 0x110
    size = data + (len(interp) + 1 if interp else 0)
    phs = []
    if with_phdr:
        phs.append(None)  # PT_PHDR, filled in below once the count is known
    if interp:
        phs.append(phdr(PT_INTERP, PF_R, data, 0, len(interp) + 1, len(interp) + 1, 1))
    phs.append(phdr(PT_LOAD, PF_R | PF_X, 0, base, size, size + bss, 0x1000))
    if with_phdr:
        n = len(phs) * 56
        phs[0] = phdr(PT_PHDR, PF_R, 64, base + 64, n, n, 8)
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh += struct.pack("<HHIQQQIHHHHHH", etype, 62, 1, base + code, 64, 0, 0, 64, 56, len(phs), 0,
                      0, 0)
    out = bytearray(size)
    out[0:64] = eh
    table = b"".join(phs)
    out[64:64 + len(table)] = table
    out[code:code + len(EXIT0)] = EXIT0
    if interp:
        out[data:data + len(interp)] = interp
    return bytes(out)


ELF_SEEDS = {
    "static": elf(ET_EXEC),
    "static_phdr_bss": elf(ET_EXEC, bss=0x1800, with_phdr=True),
    "pie_ld_so": elf(ET_DYN, b"/lib/ld.so"),
    "exec_interp_i": elf(ET_EXEC, b"/i") + ELF_SPLIT + elf(ET_DYN),
    "interp_self": elf(ET_EXEC, b"/prog"),
    "script": b"#!/bin/interp -a b\necho hi\n",
    "script_to_i": b"#! /i\n" + ELF_SPLIT + elf(ET_DYN, b"/lib/ld.so"),
    "script_loop": b"#!/i x\n" + ELF_SPLIT + b"#!/prog\n",
}

# ---------------------------------------------------------------------------
# Gofer requests (gofer_request_fuzz.cc: frames split at GOFER_SPLIT; a frame
# starting with GOFER_RAW is sent without a FrameHeader). Protobuf encoded by
# hand, field numbers from proto/gofer.proto.

GOFER_SPLIT = b"\xff\xfe"
GOFER_RAW = b"\xfd"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    return varint((num << 3) | 2) + varint(len(b)) + b


def request(op, body=b""):
    return field_bytes(op, body)


def attach():
    return request(1)


def walk(fid, *names):
    return request(2, field_varint(1, fid) + b"".join(field_bytes(2, n) for n in names))


def stat(fid):
    return request(3, field_varint(1, fid))


def open_(fid, flags):
    return request(4, field_varint(1, fid) + field_varint(2, flags))


def readlink(fid):
    return request(5, field_varint(1, fid))


def getdents(fid, cookie=0):
    return request(6, field_varint(1, fid) + field_varint(2, cookie))


def statfs(fid):
    return request(7, field_varint(1, fid))


def close(*fids):
    return request(8, field_bytes(1, b"".join(varint(f) for f in fids)))


def frames(*reqs):
    return GOFER_SPLIT.join(reqs)


O_WRONLY, O_CREAT, O_TRUNC = 0o1, 0o100, 0o1000

GOFER_SEEDS = {
    "open_file": frames(attach(), walk(1, b"file"), open_(2, 0), stat(2), close(2)),
    "list_and_walk": frames(attach(), getdents(1), walk(1, b"subdir", b"inner"), open_(3, 0),
                            getdents(2, 1)),
    "links": frames(attach(), walk(1, b"link_out"), readlink(2), walk(1, b"link_dir", b"secret"),
                    walk(1, b"subdir", b"up"), statfs(1)),
    "special_files": frames(attach(), walk(1, b"fifo"), open_(2, 0), walk(1, b"sock"),
                            open_(3, 0), walk(1, b"empty"), open_(4, O_WRONLY | O_TRUNC)),
    "bad_names": frames(attach(), walk(1, b"..", b"file"), walk(1, b"a/b"), walk(1, b"x" * 300),
                        open_(1, O_CREAT)),
    "close_fids": frames(attach(), walk(1, b"file") + field_varint(100, 1), stat(1),
                         close(0, 1, 2, 99)),
    "raw_bad_header": frames(attach(), GOFER_RAW + b"HUSK\x01\x00\x01\x00\xff\xff\x00\x00"),
}

# ---------------------------------------------------------------------------
# Paths (path_fuzz.cc: byte 0 flags, byte 1 start directory, then the path).

FOLLOW, PARENT, UNPRIV, CHROOT, FORGET, SHRINK = 1, 2, 4, 8, 16, 32
START_ROOT, START_AB, START_MNT, START_JAIL_IN, START_FILE, START_DEEP, START_GONE, START_NOPERM = \
    range(8)


def path(flags, start, p):
    return bytes([flags, start]) + p


PATH_SEEDS = {
    "abc": path(FOLLOW, START_ROOT, b"/a/b/c"),
    "loop": path(FOLLOW, START_ROOT, b"/loop1"),
    "chain": path(FOLLOW, START_ROOT, b"/chain0/b"),
    "relative_links": path(FOLLOW, START_AB, b"up/rel/../../../abs/self/file"),
    "chroot_escape": path(FOLLOW | CHROOT, START_ROOT, b"/esc/../../in/../root/in"),
    "mount": path(FOLLOW, START_MNT, b"deep/x/mnt/up/a/b"),
    "parent_trailing": path(PARENT, START_ROOT, b"/a/b/newname/"),
    "noperm": path(FOLLOW | UNPRIV, START_NOPERM, b"f"),
    "gone": path(FOLLOW, START_GONE, b"../a/./b//c"),
    "forget_shrink": path(FOLLOW | FORGET | SHRINK, START_AB, b"../b/c/../file"),
    "filedir": path(0, START_FILE, b"x/../../filedir"),
}

# ---------------------------------------------------------------------------
# Frames (packet_fuzz.cc: records of [flags][length][bytes]; flags bit 0
# wraps the bytes in Ethernet and IPv4 headers, bits 4-5 pick the protocol,
# bit 1 skips the transport checksum, bit 2 advances the clock).

WRAP, CSUM_OK, TICK, V6 = 1, 2, 4, 8
TCP, UDP, ICMP = 0x00, 0x10, 0x20


def record(flags, body):
    return struct.pack(">BH", flags, len(body)) + body


def tcp(sport, dport, seq, ack, flags, payload=b"", options=b""):
    off = (20 + len(options)) // 4
    return struct.pack(">HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + \
        options + payload


SYN_OPTS = bytes([2, 4, 5, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])
ARP_REQUEST = (bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 6]) +
               struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + bytes([2, 0, 0, 0, 0, 1]) +
               bytes([10, 0, 0, 1]) + bytes(6) + bytes([10, 0, 0, 2]))

PACKET_SEEDS = {
    "syn_then_ack": record(WRAP | CSUM_OK | TCP, tcp(5000, 80, 1000, 0, 0x02, options=SYN_OPTS)) +
    record(WRAP | CSUM_OK | TCP, tcp(5000, 80, 1001, 1, 0x10, b"GET / HTTP/1.0\r\n\r\n")) +
    record(WRAP | CSUM_OK | TCP, tcp(5000, 80, 1019, 1, 0x11)),
    "synack_to_client": record(WRAP | CSUM_OK | TCP, tcp(80, 40000, 7, 1, 0x12, options=SYN_OPTS)),
    "rst_and_timers": record(WRAP | CSUM_OK | TCP, tcp(5000, 80, 1, 0, 0x02)) +
    record(TICK | WRAP | CSUM_OK | TCP, tcp(5000, 80, 2, 0, 0x04)) + record(TICK, bytes(200)),
    "udp_dns": record(WRAP | UDP, struct.pack(">HHHH", 5353, 53, 12, 0) + b"abcd"),
    "udp_closed_port": record(WRAP | UDP, struct.pack(">HHHH", 5353, 54, 12, 0) + b"abcd"),
    "ping": record(WRAP | ICMP, bytes([8, 0, 0xF7, 0xFD, 0, 1, 0, 1])),
    "arp": record(0, ARP_REQUEST),
    "v6_syn": record(WRAP | CSUM_OK | V6 | TCP, tcp(5000, 80, 1000, 0, 0x02, options=SYN_OPTS)),
    "v6_neighbour_solicit": record(WRAP | V6 | ICMP, bytes([135, 0, 0, 0, 0, 0, 0, 0]) +
                                   bytes([0xFD] + [0] * 14 + [2]) +
                                   bytes([1, 1, 2, 0, 0, 0, 0, 1])),
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    write("elf_fuzz", ELF_SEEDS)
    write("gofer_request_fuzz", GOFER_SEEDS)
    write("path_fuzz", PATH_SEEDS)
    write("packet_fuzz", PACKET_SEEDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
