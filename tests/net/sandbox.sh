#!/bin/sh
# husk do --network=sandbox (issue 15): in a network namespace this test makes, with a veth
# pair whose two ends hold a private /30 (10.201.0.1 here, 10.201.0.2 on the sandbox's side)
# and no other address, the sandbox's own stack serves the address:
#   - ping of the sandbox from the host side;
#   - curl from the host side to nginx in the sandbox (a small page, and a 2 MB file whose
#     checksum must match), and from the sandbox to a server on the host side;
#   - iperf3 both ways (bytes must arrive; the rates are printed, not asserted: bench/ has
#     them);
#   - IPv6 over a unique-local /64 on the same pair: curl both ways, ping -6 of the sandbox;
#   - ping from inside (ICMP and ICMPv6 echo sockets) of the host side and of the sandbox's own
#     addresses, over IPv4 and IPv6;
#   - UDP broadcast to the /30's broadcast address both ways (SO_BROADCAST wanted);
#   - TCP urgent data (MSG_OOB, SIOCATMARK, select's exceptional set, SIGURG) both ways
#     (tests/net/urgent.py);
#   - UDP multicast (239.1.2.3, and ff12::1:2 on the veth's interface) both ways, the joins
#     reported on the wire (IGMPv3, MLDv2: tests/net/reports.py), and to the
#     sandbox's own members;
#   - DNS: with the sandbox's resolv.conf naming a server on the host side (dns_server.py),
#     getent and curl find a name;
#   - ip addr inside shows the interface; the address is back on the host side afterwards.
# Runs in a husk_fence (its own user and network namespaces), so nothing here touches the
# machine's interfaces.
#
#   sandbox.sh HUSK [FLAG...]  (the host side; FLAGs go to husk do: --platform=systrap)
#   sandbox.sh --inside DIR    (what runs in the sandbox)
set -eu
if [ "$1" = --inside ]; then
  d=$(mktemp -d /tmp/sb.XXXXXX)
  ip -4 addr show | grep -o 'inet 10\.201\.0\.2/30' | sed 's/^/inside: /'
  ip -6 addr show | grep -o 'inet6 fd00:201::2/64' | sed 's/^/inside: /'
  ip route show default | grep -o 'default via 10.201.0.1' | sed 's/^/inside: /'
  ip -6 route show default | grep -o 'default via fd00:201::1' | sed 's/^/inside: /'
  mkdir -p "$d/www" "$d/logs"
  echo "a page from nginx in the sandbox" >"$d/www/index.html"
  seq 1 300000 >"$d/www/big"
  cat >"$d/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/logs/error.log;
events { worker_connections 64; }
http {
  access_log $d/logs/access.log;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  server { listen 8080; listen [::]:8080; root $d/www; }
}
CONF
  chmod -R a+rX "$d"
  nginx -c "$d/nginx.conf" -p "$d" &
  ngx=$!
  iperf3 -s -1 -p 5201 >"$d/iperf-server.log" 2>&1 &
  ip3=$!
  # The host side's server, reached from inside.
  for _ in $(seq 100); do curl -s -o /dev/null http://10.201.0.1:8001/host.txt && break; sleep 0.1; done
  printf 'inside: curl to the host: %s\n' "$(curl -sS -m 10 http://10.201.0.1:8001/host.txt)"
  # ping(8) through an ICMP echo socket: the host side, and the sandbox's own addresses.
  for a in 10.201.0.1 127.0.0.1 10.201.0.2 fd00:201::1 ::1 fd00:201::2; do
    printf 'inside: ping %s: %s\n' "$a" "$(ping -c 2 -i 0.2 -W 2 "$a" 2>&1 | grep -o '[0-9]* received')"
  done
  # IPv6: the host side's server over the veth's ULA /64.
  printf 'inside: curl over IPv6: %s\n' "$(curl -sS -m 10 -g 'http://[fd00:201::1]:8003/host.txt')"
  # Broadcast over the /30, both ways.
  python3 "$(dirname "$0")/broadcast.py" inside 10.201.0.3
  # Urgent data, both ways.
  python3 "$(dirname "$0")/urgent.py" inside 10.201.0.1 5500
  # Multicast: a group joined both sides, over IPv4 and IPv6.
  python3 "$(dirname "$0")/multicast.py" inside
  python3 "$(dirname "$0")/multicast.py" inside6
  # Names, through the sandbox's own resolv.conf (its root's writable layer).
  rm -f /etc/resolv.conf
  echo "nameserver 10.201.0.1" >/etc/resolv.conf
  printf 'inside: getent: %s\n' "$(getent hosts host.test | tr -s ' ')"
  printf 'inside: curl by name: %s\n' "$(curl -sS -m 10 http://host.test:8001/host.txt)"
  # Until the host side is done with us.
  for _ in $(seq 600); do
    curl -s -f -o /dev/null http://10.201.0.1:8001/done && break
    sleep 0.1
  done
  # The host's iperf3 to us is over: the stack kept every byte its windows offered room for
  # (/proc/net/netstat's TCPRcvQDrop, a sender's retransmissions otherwise).
  awk '/^TcpExt:/ { if (!n++) { for (i = 2; i <= NF; i++) h[i] = $i } else {
         for (i = 2; i <= NF; i++) if (h[i] == "TCPRcvQDrop") v = $i } }
       END { print "inside: in-order data dropped: " v }' /proc/net/netstat
  iperf3 -c 10.201.0.1 -p 5202 -t 2 -J >"$d/iperf-client.json" 2>&1 || true
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["end"]["sum_received"]
print("inside: iperf3 to the host received %s" % ("bytes" if r["bytes"] > 1000000 else "too little"))
print("rate sandbox->host: %.0f Mbit/s" % (r["bits_per_second"] / 1e6), file=sys.stderr)
' "$d/iperf-client.json"
  kill "$ngx" 2>/dev/null || true
  wait "$ngx" 2>/dev/null || true
  wait "$ip3" 2>/dev/null || true
  printf 'inside: nginx served %s requests\n' "$(wc -l <"$d/logs/access.log")"
  exit 0
fi

husk=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
# The rest: flags for husk do (--platform=systrap).
here=$(cd "$(dirname "$0")" && pwd)
for tool in ip nsenter unshare ping curl iperf3 nginx python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed"; exit 1; }
done
dir=$(mktemp -d /tmp/husk-sb.XXXXXX)
hold=""
pids=""
cleanup() {
  for p in $pids $hold; do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -f "$dir/inside.out" ] && sed 's/^/  | /' "$dir/inside.out"
  [ -f "$dir/inside.err" ] && sed 's/^/  ! /' "$dir/inside.err"
  exit 1
}

ip link set lo up
ip link add h0 type veth peer name s0
unshare --net sleep 100000 &
hold=$!
sleep 0.2
ip link set s0 netns "$hold"
ip addr add 10.201.0.1/30 dev h0
ip link set h0 up
nsenter -t "$hold" -n ip link set lo up
nsenter -t "$hold" -n ip addr add 10.201.0.2/30 dev s0
nsenter -t "$hold" -n ip link set s0 up
# IPv6 as well: a unique-local /64 on the pair (no duplicate address detection to wait for).
ip addr add fd00:201::1/64 dev h0 nodad
nsenter -t "$hold" -n ip addr add fd00:201::2/64 dev s0 nodad
# Default routes through the host side: the sandbox takes them, and they come back after.
nsenter -t "$hold" -n ip route add default via 10.201.0.1
nsenter -t "$hold" -n ip -6 route add default via fd00:201::1

mkdir -p "$dir/www"
echo "a page from the host side" >"$dir/www/host.txt"
python3 -m http.server -b 10.201.0.1 -d "$dir/www" 8001 >"$dir/http.log" 2>&1 &
pids="$pids $!"
python3 -m http.server -b fd00:201::1 -d "$dir/www" 8003 >"$dir/http6.log" 2>&1 &
pids="$pids $!"
iperf3 -s -1 -B 10.201.0.1 -p 5202 >"$dir/iperf-host-server.log" 2>&1 &
pids="$pids $!"
python3 "$here/dns_server.py" 10.201.0.1 host.test >"$dir/dns.log" 2>&1 &
pids="$pids $!"
python3 "$here/broadcast.py" listen 5401 "$dir/broadcast.got" >/dev/null 2>&1 &
pids="$pids $!"
python3 "$here/broadcast.py" send 10.201.0.3 5400 >/dev/null 2>&1 &
pids="$pids $!"
python3 "$here/reports.py" h0 "$dir/reports.got" 120 >"$dir/reports.log" 2>&1 &
pids="$pids $!"
python3 "$here/urgent.py" host 10.201.0.1 5500 "$dir/urgent.got" >"$dir/urgent.log" 2>&1 &
pids="$pids $!"
python3 "$here/multicast.py" listen 10.201.0.1 "$dir/multicast.got" >/dev/null 2>&1 &
pids="$pids $!"
python3 "$here/multicast.py" send 10.201.0.1 >/dev/null 2>&1 &
pids="$pids $!"
python3 "$here/multicast.py" listen6 h0 "$dir/multicast6.got" >/dev/null 2>&1 &
pids="$pids $!"
python3 "$here/multicast.py" send6 h0 >/dev/null 2>&1 &
pids="$pids $!"

# A sandbox that cannot take pid 1's namespace says so.
if "$husk" do --network=sandbox true 2>"$dir/refused"; then
  fail "--network=sandbox ran in the fence's own namespace, whose init is pid 1"
fi
grep -q "not in pid 1's" "$dir/refused" || fail "no clear refusal: $(cat "$dir/refused")"

(cd /tmp && nsenter -t "$hold" -n "$husk" do "$@" --network=sandbox -- sh "$here/sandbox.sh" --inside \
  >"$dir/inside.out" 2>"$dir/inside.err") &
sandbox=$!
pids="$pids $sandbox"
ok=""
for _ in $(seq 200); do
  if curl -s -o /dev/null http://10.201.0.2:8080/index.html; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || fail "nginx in the sandbox did not answer on 10.201.0.2:8080"

# The host's kernel no longer holds the address: the sandbox answers for it.
nsenter -t "$hold" -n ip -4 addr show dev s0 | grep -q 10.201.0.2 &&
  fail "the address is still on the host's side of the interface"
ping -c 3 -i 0.2 -W 2 10.201.0.2 >"$dir/ping" || fail "ping of the sandbox: $(tail -2 "$dir/ping")"
echo "host: ping: $(grep -o '[0-9]* received' "$dir/ping")"
page=$(curl -sS -m 10 http://10.201.0.2:8080/index.html)
echo "host: curl: $page"
want=$(seq 1 300000 | md5sum | cut -d' ' -f1)
got=$(curl -sS -m 30 http://10.201.0.2:8080/big | md5sum | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "the 2 MB file came back different ($got, not $want)"
echo "host: curl of a 2 MB file: intact"
missing=$(curl -s -o /dev/null -w '%{http_code}' http://10.201.0.2:8080/missing)
page6=$(curl -sS -m 10 -g 'http://[fd00:201::2]:8080/index.html') || fail "curl over IPv6"
echo "host: curl over IPv6: $page6"
ping -6 -c 2 -i 0.2 -W 2 fd00:201::2 >"$dir/ping6" || fail "ping -6 of the sandbox: $(tail -2 "$dir/ping6")"
echo "host: ping -6: $(grep -o '[0-9]* received' "$dir/ping6")"
echo "host: a missing page: $missing"
iperf3 -c 10.201.0.2 -p 5201 -t 2 -J >"$dir/iperf.json" 2>&1 || fail "iperf3 to the sandbox: $(tail -3 "$dir/iperf.json")"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["end"]["sum_received"]
print("host: iperf3 to the sandbox received %s" % ("bytes" if r["bytes"] > 1000000 else "too little"))
print("rate host->sandbox: %.0f Mbit/s" % (r["bits_per_second"] / 1e6), file=sys.stderr)
' "$dir/iperf.json"
touch "$dir/www/done"
wait "$sandbox" || fail "the sandbox exited with $?"
cat "$dir/inside.out"
sed -n 's/^rate/inside rate/p' "$dir/inside.err"
nsenter -t "$hold" -n ip -4 addr show dev s0 | grep -q 'inet 10.201.0.2/30' ||
  fail "the address did not come back to the host's side"
nsenter -t "$hold" -n ip -6 addr show dev s0 | grep -q 'inet6 fd00:201::2/64' ||
  fail "the IPv6 address did not come back to the host's side"
nsenter -t "$hold" -n ip route show default | grep -q 'via 10.201.0.1' ||
  fail "the default route did not come back"
nsenter -t "$hold" -n ip -6 route show default | grep -q 'via fd00:201::1' ||
  fail "the IPv6 default route did not come back"
echo "host: the addresses and default routes are back on s0"

cat >"$dir/want" <<WANT
inside: inet 10.201.0.2/30
inside: inet6 fd00:201::2/64
inside: default via 10.201.0.1
inside: default via fd00:201::1
inside: curl to the host: a page from the host side
inside: ping 10.201.0.1: 2 received
inside: ping 127.0.0.1: 2 received
inside: ping 10.201.0.2: 2 received
inside: ping fd00:201::1: 2 received
inside: ping ::1: 2 received
inside: ping fd00:201::2: 2 received
inside: curl over IPv6: a page from the host side
inside: broadcast without SO_BROADCAST: EACCES
inside: received a broadcast from the host side
inside: urgent data from the host: ab mark=1 oob=c de sigurg=1
inside: inline urgent data: fgh, MSG_OOB EINVAL
inside: IP_MULTICAST_TTL 1, IP_MULTICAST_LOOP 1
inside: looped back: a group datagram from the sandbox
inside: received a group datagram from the host side
inside: IPV6_MULTICAST_HOPS 1, IPV6_MULTICAST_LOOP 1
inside: looped back over IPv6: a group datagram from the sandbox (hop limit 2)
inside: received over IPv6 a group datagram from the host side
inside: getent: 10.201.0.1 host.test
inside: curl by name: a page from the host side
inside: in-order data dropped: 0
inside: iperf3 to the host received bytes
WANT
grep '^inside: ' "$dir/inside.out" | grep -v 'nginx served' >"$dir/got"
diff -u "$dir/want" "$dir/got" || fail "the sandbox's side differs"
grep -q '^inside: nginx served [1-9]' "$dir/inside.out" || fail "nginx logged no request"
[ "$missing" = 404 ] || fail "a missing page gave $missing"
[ "$page6" = "a page from nginx in the sandbox" ] || fail "curl over IPv6 printed '$page6'"
[ "$(cat "$dir/urgent.got" 2>/dev/null)" = "xy mark=1 oob=z w sigurg=1" ] ||
  fail "the sandbox's urgent data reached the host side as '$(cat "$dir/urgent.got" 2>/dev/null)' $(cat "$dir/urgent.log")"
[ "$(cat "$dir/broadcast.got" 2>/dev/null)" = "a broadcast from the sandbox" ] ||
  fail "the sandbox's broadcast did not reach the host side"
[ "$(cat "$dir/multicast.got" 2>/dev/null)" = "a group datagram from the sandbox" ] ||
  fail "the sandbox's group datagram did not reach the host side"
[ "$(cat "$dir/multicast6.got" 2>/dev/null)" = "a group datagram from the sandbox (hop limit 2)" ] ||
  fail "the sandbox's IPv6 group datagram did not reach the host side with hop limit 2: $(cat "$dir/multicast6.got" 2>/dev/null)"
# The sandbox's joins were reported on the wire (IGMPv3, MLDv2), as a snooping switch needs.
for _ in $(seq 100); do [ -s "$dir/reports.got" ] && break; sleep 0.1; done
[ "$(cat "$dir/reports.got" 2>/dev/null | tr '\n' ' ')" = "igmp mld " ] ||
  fail "the sandbox's group memberships were not reported (seen: $(cat "$dir/reports.got" 2>/dev/null | tr '\n' ' ')$(cat "$dir/reports.log"))"
echo "PASS: ping both ways, curl both ways, a 2 MB file, iperf3 both ways, broadcast, multicast over IPv4 and IPv6 (memberships reported), DNS over --network=sandbox"
