#!/bin/sh
# Unix sockets on read-write volumes (issue 15): a name bound in the sandbox on a --volume is
# a socket host processes connect to, and a host process's socket on a --volume can be
# connected to from the sandbox; both through the gofer, which binds and connects for the
# sentry. Nothing else of the host is reachable:
#   - a sandbox server at /v/s.sock: a host client and a sandbox client both get answers,
#     and the accepted host connection's getsockname is the sandbox's name;
#   - the node's mode follows the sandbox's umask on the host;
#   - a host server at DIR/h.sock (stream and seqpacket), reached as /v/h.sock;
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
