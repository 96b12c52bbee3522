#!/bin/sh
# Unix sockets on read-write volumes (issue 15): a name bound in the sandbox on a --volume is
# a socket host processes connect to, and a host process's socket on a --volume can be
# connected to from the sandbox; both through the gofer, which binds and connects for the
# sentry. Nothing else of the host is reachable:
#   - a sandbox server at /v/s.sock: a host client and a sandbox client both get answers,
#     and the accepted host connection's getsockname is the sandbox's name;
#   - the node's mode follows the sandbox's umask on the host;
#   - a host server at DIR/h.sock (stream and seqpacket), reached as /v/h.sock;
#   - datagrams: the sandbox sends to a host process's socket at DIR/hd.sock by sendto(2)
#     and after connect(2) (getpeername is the sandbox's name, another sandbox socket's
#     datagrams to the connected one are EPERM, descriptors EOPNOTSUPP, a host socket
#     through a read-only volume ECONNREFUSED); a host process sends to a socket the sandbox bound at /v/sd.sock,
#     which poll(2) reports readable, a blocking recvfrom(2) waits for, and which arrive
#     unnamed, with MSG_TRUNC where cut short, mixed with the sandbox's own datagrams;
#   - descriptors cannot be passed to a host process (EOPNOTSUPP);
#   - the same host socket through a read-only volume, or through the host root the
#     sandbox sees, is ECONNREFUSED.
#
#   host_unix.sh HUSK
set -eu
husk=$(realpath "$1")
fail() {
  echo "FAIL: $*"
  exit 1
}
# Under /var/tmp: the sandbox sees the host's /var/tmp (read-only) through its root.
work=$(mktemp -d /var/tmp/husk-unix.XXXXXX)
chmod 755 "$work"
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/v" "$work/ro"
chmod 777 "$work/v"

cat >"$work/v/app.py" <<'PY'
import array, os, socket, sys, time

def serve(path, kind, count):
    os.umask(0o077)
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    s.listen()
    open(path + ".ready", "w").close()
    for _ in range(count):
        c, _ = s.accept()
        data = c.recv(100)
        # An accepted socket is bound and connected: bind is EINVAL, connect EISCONN
        # (from a host peer too, whose socket the sandbox never names on the host).
        said = []
        for call in (lambda: c.bind(path + ".x"), lambda: c.connect(path)):
            try:
                call()
                said.append("ok")
            except OSError as e:
                said.append(str(e.errno))
        c.sendall(data.upper() + b" " + c.getsockname().encode() + (" " + " ".join(said)).encode())
        c.close()

def ask(path, kind, text):
    c = socket.socket(socket.AF_UNIX, kind)
    try:
        c.connect(path)
    except OSError as e:
        return "errno %d" % e.errno
    c.sendall(text.encode())
    return c.recv(200).decode()

def wait_for(path):
    for _ in range(200):
        if os.path.exists(path):
            return
        time.sleep(0.05)
    sys.exit("never appeared: " + path)

cmd = sys.argv[1]
if cmd == "serve":
    serve(sys.argv[2], socket.SOCK_STREAM, int(sys.argv[3]))
elif cmd == "serve-seqpacket":
    serve(sys.argv[2], socket.SOCK_SEQPACKET, int(sys.argv[3]))
elif cmd == "ask":
    wait_for(sys.argv[2] + ".ready")
    print(ask(sys.argv[2], socket.SOCK_STREAM, sys.argv[3]))
elif cmd == "ask-seqpacket":
    print(ask(sys.argv[2], socket.SOCK_SEQPACKET, sys.argv[3]))
elif cmd == "serve-and-ask-self":
    # A server in the sandbox that the host asks, then a client in the sandbox too.
    pid = os.fork()
    if pid == 0:
        serve(sys.argv[2], socket.SOCK_STREAM, 2)
        os._exit(0)
    wait_for(sys.argv[2] + ".ready")
    wait_for(sys.argv[3])  # the host's answer arrived
    print(ask(sys.argv[2], socket.SOCK_STREAM, "from the sandbox"))
    os.waitpid(pid, 0)
elif cmd == "dgram-send":
    # To a host process's datagram socket: by sendto, then connected (its name is the
    # sandbox's; another socket's datagrams to a socket connected so are EPERM; no
    # descriptor goes to the host).
    def attempt(call):
        try:
            call()
            return "ok"
        except OSError as e:
            return "errno %d" % e.errno
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("/v/me.sock")
    said = [attempt(lambda: s.sendto(b"one", sys.argv[2]))]
    said.append(attempt(lambda: s.connect(sys.argv[2])))
    said.append(s.getpeername())
    said.append(attempt(lambda: s.send(b"two")))
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    said.append(attempt(lambda: other.sendto(b"x", "/v/me.sock")))
    said.append(attempt(lambda: s.sendmsg(
        [b"y"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0]))])))
    said.append(attempt(lambda: other.sendto(b"z", sys.argv[3])))
    print(" ".join(said))
elif cmd == "dgram-serve":
    # A datagram socket the host sends to; a socket of the sandbox's sends to it too.
    import select
    path = sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    open(path + ".ready", "w").close()
    got = []
    r, _, _ = select.select([s], [], [], 20)
    got.append("readable" if r else "timeout")
    data, addr = s.recvfrom(100)
    got.append("%s %r" % (data.decode(), addr))
    # Cut short: MSG_TRUNC says so.
    data, _, flags, _ = s.recvmsg(4)
    got.append("%s trunc=%d" % (data.decode(), bool(flags & socket.MSG_TRUNC)))
    open(path + ".more", "w").close()
    data, addr = s.recvfrom(100)  # blocks until the host's last one
    got.append(data.decode())
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    c.sendto(b"inside", path)
    got.append(s.recv(100).decode())
    print(" | ".join(got))
elif cmd == "pass-fd":
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sys.argv[2])
    try:
        c.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0]))])
        print("sent")
    except OSError as e:
        print("errno %d" % e.errno)
PY

# A sandbox server on the volume: the host asks, then a sandbox client asks.
"$husk" do --volume="$work/v:/v:rw" python3 /v/app.py serve-and-ask-self /v/s.sock /v/host-done \
  >"$work/inside.out" 2>&1 &
inside=$!
pids="$pids $inside"
out=$(python3 "$work/v/app.py" ask "$work/v/s.sock" "from the host")
[ "$out" = "FROM THE HOST /v/s.sock 22 106" ] || fail "the host asking the sandbox's server got '$out'"
touch "$work/v/host-done"
wait "$inside" || fail "the sandbox server: $(cat "$work/inside.out")"
[ "$(cat "$work/inside.out")" = "FROM THE SANDBOX /v/s.sock 22 106" ] ||
  fail "the sandbox asking its own server got '$(cat "$work/inside.out")'"
mode=$(stat -c %A "$work/v/s.sock")
[ "$mode" = srwx------ ] || fail "the socket node's mode on the host is $mode, not srwx------"

# A host server on the volume, stream and seqpacket, asked from the sandbox.
python3 "$work/v/app.py" serve "$work/v/h.sock" 1 &
pids="$pids $!"
python3 "$work/v/app.py" serve-seqpacket "$work/v/hq.sock" 1 &
pids="$pids $!"
for _ in $(seq 100); do [ -e "$work/v/h.sock.ready" ] && [ -e "$work/v/hq.sock.ready" ] && break; sleep 0.1; done
out=$("$husk" do --volume="$work/v:/v:rw" python3 /v/app.py ask /v/h.sock "to the host")
case "$out" in "TO THE HOST "*) ;; *) fail "the sandbox asking a host server got '$out'" ;; esac
out=$("$husk" do --volume="$work/v:/v:rw" python3 /v/app.py ask-seqpacket /v/hq.sock "packet")
case "$out" in "PACKET "*) ;; *) fail "seqpacket to a host server got '$out'" ;; esac

# Datagrams to a host process's socket on the volume.
python3 - "$work/v/hd.sock" >"$work/hd.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[1] + ".ready", "w").close()
s.settimeout(20)
print(s.recv(100).decode(), s.recv(100).decode())
PY
hd=$!
pids="$pids $hd"
for _ in $(seq 100); do [ -e "$work/v/hd.sock.ready" ] && break; sleep 0.1; done
python3 - "$work/ro/rd.sock" <<'PY'
import socket, sys
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).bind(sys.argv[1])
PY
out=$("$husk" do --volume="$work/v:/v:rw" --volume="$work/ro:/ro:ro" \
  python3 /v/app.py dgram-send /v/hd.sock /ro/rd.sock)
want="ok ok /v/hd.sock ok errno 1 errno 95 errno 111"
[ "$out" = "$want" ] || fail "datagrams to a host socket: '$out', not '$want'"
wait "$hd" || fail "the host's datagram receiver: $(cat "$work/hd.out")"
[ "$(cat "$work/hd.out")" = "one two" ] || fail "the host received '$(cat "$work/hd.out")'"

# Datagrams from a host process to a socket the sandbox bound on the volume.
"$husk" do --volume="$work/v:/v:rw" python3 /v/app.py dgram-serve /v/sd.sock >"$work/sd.out" 2>&1 &
inside=$!
pids="$pids $inside"
for _ in $(seq 100); do [ -e "$work/v/sd.sock.ready" ] && break; sleep 0.1; done
python3 - "$work/v/sd.sock" <<'PY' || fail "the host could not send to the sandbox's socket"
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
time.sleep(0.3)  # the sandbox is in select(2) by now
s.sendto(b"from the host", sys.argv[1])
s.sendto(b"longer datagram", sys.argv[1])
for _ in range(200):
    if os.path.exists(sys.argv[1] + ".more"):
        break
    time.sleep(0.05)
time.sleep(0.3)  # the sandbox waits in recvfrom(2) by now
s.sendto(b"last", sys.argv[1])
PY
wait "$inside" || fail "the sandbox's datagram socket: $(cat "$work/sd.out")"
want="readable | from the host '' | long trunc=1 | last | inside"
[ "$(cat "$work/sd.out")" = "$want" ] ||
  fail "the sandbox's datagram socket heard '$(cat "$work/sd.out")', not '$want'"
mode=$(stat -c %F "$work/v/sd.sock")
[ "$mode" = socket ] || fail "the sandbox's datagram name on the host is a $mode"

# Descriptors stay in the sandbox.
python3 "$work/v/app.py" serve "$work/v/f.sock" 1 &
pids="$pids $!"
for _ in $(seq 100); do [ -e "$work/v/f.sock.ready" ] && break; sleep 0.1; done
out=$("$husk" do --volume="$work/v:/v:rw" python3 /v/app.py pass-fd /v/f.sock)
[ "$out" = "errno 95" ] || fail "passing a descriptor to a host process: '$out'"

# The same kind of host socket through a read-only volume, and through the root: refused.
python3 "$work/v/app.py" serve "$work/ro/r.sock" 1 &
pids="$pids $!"
for _ in $(seq 100); do [ -e "$work/ro/r.sock.ready" ] && break; sleep 0.1; done
out=$("$husk" do --volume="$work/v:/v:rw" --volume="$work/ro:/ro:ro" \
  python3 /v/app.py ask /ro/r.sock "x")
[ "$out" = "errno 111" ] || fail "a host socket through a read-only volume: '$out'"
out=$("$husk" do --volume="$work/v:/v:rw" python3 /v/app.py ask "$work/ro/r.sock" "x")
[ "$out" = "errno 111" ] || fail "a host socket through the root: '$out'"
echo PASS
