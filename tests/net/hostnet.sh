#!/bin/sh
# husk do --network=host (issue 15): inet sockets are host sockets the sentry opens in the
# network namespace husk starts in. In the fence's own network namespace, with a veth
# interface holding 10.202.0.1/24 and fd00:202::1/64 (nothing else is touched):
#   - ip addr and ip route inside show the host's interface, address and route;
#   - curl from inside to a server outside, over IPv4 and IPv6;
#   - nginx inside, fetched from outside with curl (a page and a 1.9 MB file intact);
#   - UDP both ways between a program inside and one outside;
#   - the sentry's seccomp filter lets inet sockets through only: a packet socket inside is
#     EAFNOSUPPORT (husk serves no packet family), and unix sockets stay the sandbox's own
#     (a name bound inside is not seen outside);
#   - a sandbox without --network=host cannot reach the outside server (its loopback is its
#     own).
#
#   hostnet.sh HUSK
set -eu
husk=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
fail() {
  echo "FAIL: $*"
  exit 1
}
for tool in ip curl nginx python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (tools/setup-debian.sh installs it)"
done
work=$(mktemp -d /tmp/hostnet.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ip link add hn0 type veth peer name hn1
ip link set hn1 up
ip link set hn0 up
ip addr add 10.202.0.1/24 dev hn0
ip -6 addr add fd00:202::1/64 dev hn0 nodad

# The sandbox sees the host's interfaces and routes.
out=$("$husk" do --network=host ip addr)
echo "$out" | grep -q 'inet 10.202.0.1/24' || fail "ip addr inside: $out"
echo "$out" | grep -q 'inet6 fd00:202::1/64' || fail "ip -6 addr inside: $out"
out=$("$husk" do --network=host ip route)
echo "$out" | grep -q '10.202.0.0/24 dev hn0' || fail "ip route inside: $out"

# From inside to a server outside, over IPv4 and IPv6.
mkdir -p "$work/out"
echo "from the host side" >"$work/out/h.txt"
python3 -m http.server -b :: -d "$work/out" 18100 >/dev/null 2>&1 &
pids="$pids $!"
for _ in $(seq 100); do curl -s -o /dev/null http://10.202.0.1:18100/h.txt && break; sleep 0.1; done
out=$("$husk" do --network=host curl -sS -m 10 http://10.202.0.1:18100/h.txt)
[ "$out" = "from the host side" ] || fail "curl from inside printed '$out'"
out=$("$husk" do --network=host curl -sS -m 10 -g 'http://[fd00:202::1]:18100/h.txt')
[ "$out" = "from the host side" ] || fail "curl -6 from inside printed '$out'"
# Without --network=host, the sandbox's loopback is its own: nothing listens there.
if "$husk" do curl -s -m 5 http://127.0.0.1:18100/h.txt >/dev/null; then
  fail "a sandbox without --network=host reached the host's loopback"
fi

# nginx inside, fetched from outside.
mkdir -p "$work/in/www" "$work/in/logs"
echo "a page from nginx in the sandbox" >"$work/in/www/index.html"
seq 1 300000 >"$work/in/www/big"
cat >"$work/in/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $work/in/nginx.pid;
error_log $work/in/logs/error.log;
events { worker_connections 64; }
http {
  access_log $work/in/logs/access.log;
  client_body_temp_path $work/in/body; proxy_temp_path $work/in/proxy;
  fastcgi_temp_path $work/in/fcgi; uwsgi_temp_path $work/in/uwsgi; scgi_temp_path $work/in/scgi;
  server { listen 10.202.0.1:18101; listen [fd00:202::1]:18101; root $work/in/www; }
}
CONF
chmod -R a+rwX "$work"
"$husk" do --network=host --volume="$work/in:$work/in:rw" nginx -c "$work/in/nginx.conf" \
  -p "$work/in" >"$work/nginx.out" 2>&1 &
ngx=$!
pids="$pids $ngx"
ok=""
for _ in $(seq 100); do
  if [ "$(curl -s -m 2 http://10.202.0.1:18101/index.html)" = "a page from nginx in the sandbox" ]; then
    ok=1
    break
  fi
  sleep 0.1
done
[ -n "$ok" ] || fail "curl of nginx in the sandbox failed: $(cat "$work/nginx.out")"
want=$(seq 1 300000 | md5sum)
got=$(curl -sS -m 20 http://10.202.0.1:18101/big | md5sum)
[ "$got" = "$want" ] || fail "the 1.9 MB file came out different"
out=$(curl -sS -m 10 -g 'http://[fd00:202::1]:18101/index.html')
[ "$out" = "a page from nginx in the sandbox" ] || fail "curl -6 of nginx printed '$out'"
kill "$ngx"

# UDP both ways: an echo server outside, a client inside; then the reverse.
cat >"$work/udp.py" <<'PY'
import socket, sys
role, port = sys.argv[1], int(sys.argv[2])
if role == "echo":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.202.0.1", port))
    s.settimeout(20)
    data, peer = s.recvfrom(100)
    s.sendto(data.upper(), peer)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    for _ in range(50):
        s.sendto(b"ping over udp", ("10.202.0.1", port))
        try:
            print(s.recvfrom(100)[0].decode())
            break
        except socket.timeout:
            pass
PY
python3 "$work/udp.py" echo 18102 &
pids="$pids $!"
out=$("$husk" do --network=host --volume="$work:$work:ro" python3 "$work/udp.py" client 18102)
[ "$out" = "PING OVER UDP" ] || fail "UDP from inside got '$out'"
"$husk" do --network=host --volume="$work:$work:ro" python3 "$work/udp.py" echo 18103 &
pids="$pids $!"
out=$(python3 "$work/udp.py" client 18103)
[ "$out" = "PING OVER UDP" ] || fail "UDP to inside got '$out'"

# Only inet reaches the host: a packet socket is refused, and a unix name bound inside stays
# the sandbox's own (the host cannot connect to it while it listens).
out=$("$husk" do --network=host python3 -c '
import socket
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    print("packet socket opened")
except OSError as e:
    print(e.errno)')
[ "$out" = 97 ] || fail "a packet socket inside: '$out'"
mkdir -p "$work/flag"
"$husk" do --network=host --volume="$work/flag:/flag:rw" python3 -c '
import socket, time
s = socket.socket(socket.AF_UNIX)
s.bind("\0husk-hostnet-test")
s.listen()
open("/flag/ready", "w").close()
time.sleep(10)' &
holder=$!
pids="$pids $holder"
for _ in $(seq 100); do [ -e "$work/flag/ready" ] && break; sleep 0.1; done
[ -e "$work/flag/ready" ] || fail "the sandbox holding a unix name never started"
out=$(python3 -c '
import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("\0husk-hostnet-test")
    print("connected")
except OSError as e:
    print(e.errno)')
[ "$out" = 111 ] || fail "the host connecting to the sandbox's abstract name: '$out'"
kill "$holder"
echo PASS
