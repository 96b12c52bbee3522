#!/usr/bin/env python3
"""The OCI runtime's terminals (issue 14), driven as containerd's shim drives them.

A busybox bundle with process.terminal set is created with --console-socket; the pty master
that arrives on the socket is then used as an engine uses it: an interactive shell prints its
prompt, edits a line (erase), Ctrl-C interrupts `sleep 100`, Ctrl-Z stops it and `fg` brings
it back, the shell's own terminal reports the size the engine set (and a resize reaches it as
SIGWINCH), and `husk exec --tty` gets a terminal of its own in a session of its own. Output
written just before the container ends still reaches the master.

    console.py HUSK
"""
import array
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time

HUSK = sys.argv[1]
WORK = tempfile.mkdtemp()
ROOT = os.path.join(WORK, "state")
BUNDLE = os.path.join(WORK, "bundle")


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def husk(*args, check=True):
    # Files, not pipes: the sandbox that create leaves running holds its stdio, so a pipe
    # would never reach its end.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        r = subprocess.run([HUSK, "--root", ROOT, *args], stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        r.stdout, r.stderr = out.read(), err.read()
    if check and r.returncode != 0:
        fail("husk %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


class Console:
    """The engine's side of a console socket: the master that husk sends."""

    def __init__(self, name):
        self.path = os.path.join(WORK, name + ".sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.master = None
        self.seen = b""

    def receive(self):
        conn, _ = self.sock.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(256, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        conn.close()
        if len(fds) != 1:
            fail("the console socket got %d descriptors" % len(fds))
        if not msg.startswith(b"/dev/pts/"):
            fail("the console message names %r, not a pty" % msg)
        self.master = fds[0]

    def send(self, data):
        os.write(self.master, data)

    def expect(self, want, timeout=20):
        """Reads until `want` (bytes) appears in what came since the last expect."""
        deadline = time.time() + timeout
        while want not in self.seen:
            left = deadline - time.time()
            if left <= 0:
                fail("waited for %r; the terminal showed %r" % (want, self.seen[-400:]))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    fail("the terminal ended while waiting for %r (%r)" % (want, self.seen[-400:]))
                self.seen += chunk
        at = self.seen.index(want) + len(want)
        before, self.seen = self.seen[:at], self.seen[at:]
        return before

    def resize(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def make_bundle():
    busybox = shutil.which("busybox")
    if busybox is None:
        fail("busybox (busybox-static) is not installed")
    rootfs = os.path.join(BUNDLE, "rootfs")
    for d in ("bin", "etc", "tmp", "root"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy(busybox, os.path.join(rootfs, "bin", "busybox"))
    for app in ("sh", "echo", "sleep", "stty", "tty", "ps", "cat", "kill"):
        os.symlink("busybox", os.path.join(rootfs, "bin", app))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    husk("spec", "--bundle", BUNDLE)
    path = os.path.join(BUNDLE, "config.json")
    with open(path) as f:
        c = json.load(f)
    c["process"]["terminal"] = True
    c["process"]["args"] = ["sh"]
    c["process"]["env"].append("PS1=box$ ")
    c["process"]["consoleSize"] = {"height": 30, "width": 100}
    with open(path, "w") as f:
        json.dump(c, f)


def main():
    make_bundle()
    # Without a console socket, a terminal cannot be had: one line, nothing left behind.
    r = husk("create", "--bundle", BUNDLE, "noconsole", check=False)
    if r.returncode == 0 or "console-socket" not in r.stderr:
        fail("create with a terminal and no --console-socket: %d %r" % (r.returncode, r.stderr))
    if os.path.exists(os.path.join(ROOT, "noconsole")):
        fail("a refused create left its state behind")

    con = Console("init")
    husk("create", "--bundle", BUNDLE, "--console-socket", con.path, "c1")
    con.receive()
    husk("start", "c1")
    con.expect(b"box$ ")

    # The size the bundle asked for, and the terminal is the shell's controlling one.
    con.send(b"stty size; tty\r")
    out = con.expect(b"box$ ")
    if b"30 100" not in out or b"/dev/pts/0" not in out:
        fail("stty size; tty: %r" % out)

    # Line editing: the erased character never reaches the shell.
    con.send(b"echo abx\x7fc\r")
    out = con.expect(b"box$ ")
    if b"\r\nabc\r\n" not in out:
        fail("erase: %r" % out)

    # Ctrl-C interrupts the foreground job, not the shell.
    con.send(b"sleep 100\r")
    time.sleep(0.5)
    con.send(b"\x03")
    con.expect(b"^C")
    con.expect(b"box$ ")
    con.send(b"echo after $((6*7))\r")
    out = con.expect(b"box$ ")
    if b"after 42" not in out:
        fail("the shell after Ctrl-C: %r" % out)

    # Ctrl-Z stops the job; fg continues it; Ctrl-C then ends it.
    con.send(b"sleep 100\r")
    time.sleep(0.5)
    con.send(b"\x1a")
    out = con.expect(b"box$ ")
    if b"Stopped" not in out:
        fail("Ctrl-Z: %r" % out)
    con.send(b"fg\r")
    con.expect(b"sleep 100")
    time.sleep(0.5)
    con.send(b"\x03")
    con.expect(b"box$ ")

    # A resize by the engine reaches the terminal, and the foreground job hears SIGWINCH.
    con.send(b"trap 'echo winched' WINCH; sleep 2; stty size\r")
    time.sleep(0.7)
    con.resize(40, 120)
    out = con.expect(b"box$ ")
    if b"winched" not in out or b"40 120" not in out:
        fail("resize: %r" % out)

    # exec --tty: a terminal of its own, in a session of its own.
    ex = Console("exec")
    proc = subprocess.Popen(
        [HUSK, "--root", ROOT, "exec", "--tty", "--console-socket", ex.path, "c1", "sh"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ex.receive()
    ex.send(b"tty; exit 3\r")
    out = ex.expect(b"/dev/pts/")
    out += ex.expect(b"\r\n")
    if not out.endswith(b"/dev/pts/1\r\n"):
        fail("exec --tty: %r" % out)
    try:
        rc = proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("exec --tty did not end")
    if rc != 3:
        fail("exec --tty: exit status %d" % rc)

    # The shell's last words reach the engine after it exits.
    con.send(b"echo last words; exit 5\r")
    con.expect(b"last words\r\n")
    state = "running"
    for _ in range(200):
        state = json.loads(husk("state", "c1").stdout)["status"]
        if state == "stopped":
            break
        time.sleep(0.05)
    if state != "stopped":
        fail("the container did not stop after its shell exited (%s)" % state)
    husk("delete", "c1")
    print("console: ok")


try:
    main()
finally:
    for name in os.listdir(ROOT) if os.path.isdir(ROOT) else []:
        subprocess.run([HUSK, "--root", ROOT, "delete", "--force", name], capture_output=True)
    shutil.rmtree(WORK, ignore_errors=True)
