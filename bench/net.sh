#!/bin/bash
# The network over --network=sandbox (issue 15), run by bench/run.sh inside a husk_fence (its own
# network namespace): a veth pair with a private /30, the far end in a namespace of its own,
# where a server runs natively or in `husk do --network=sandbox` (the ptrace platform, then
# systrap). The client stays on the near side. Prints "RUNNER,ROW VALUE" lines: iperf3 to the
# server and from it (-R) in Mbit/s, redis-benchmark SET and GET in requests/s (medians of RUNS).
#
#   bench/net.sh HUSK
set -euo pipefail
husk=$1
runs=${RUNS:-3}
ip link set lo up
ip link add h0 type veth peer name s0
unshare --net sleep 100000 &
hold=$!
trap 'kill $hold 2>/dev/null || true' EXIT
sleep 0.2
ip link set s0 netns "$hold"
ip addr add 10.201.0.1/30 dev h0
ip link set h0 up
nsenter -t "$hold" -n ip link set lo up
nsenter -t "$hold" -n ip addr add 10.201.0.2/30 dev s0
nsenter -t "$hold" -n ip link set s0 up

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# serve RUNNER CMD...: runs a server on the far side, in the background.
serve() {
  local r=$1; shift
  case $r in
    native) (cd /tmp && exec nsenter -t "$hold" -n "$@") >/dev/null 2>&1 & ;;
    husk) (cd /tmp && exec nsenter -t "$hold" -n "$husk" do --network=sandbox -- "$@") \
            >/dev/null 2>&1 & ;;
    systrap) (cd /tmp && exec nsenter -t "$hold" -n "$husk" do --platform=systrap \
                --network=sandbox -- "$@") >/dev/null 2>&1 & ;;
  esac
  server=$!
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/10.201.0.2/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
iperf() {  # iperf RUNNER [-R]: one 3 s run's Mbit/s
  serve "$1" iperf3 -s -1 -p 5201
  sleep 0.5
  for _ in $(seq 50); do
    if out=$(iperf3 -c 10.201.0.2 -p 5201 -t 3 -J ${2:-} 2>/dev/null); then break; fi
    sleep 0.1
  done
  wait "$server" 2>/dev/null || true
  python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' <<<"$out"
}
for r in native husk systrap; do
  for _ in $(seq "$runs"); do iperf "$r"; done | median | sed "s/^/$r,0 /"
  for _ in $(seq "$runs"); do iperf "$r" -R; done | median | sed "s/^/$r,1 /"
  serve "$r" redis-server --port 6390 --save '' --appendonly no --protected-mode no
  wait_port 6390
  for _ in $(seq "$runs"); do
    redis-benchmark -h 10.201.0.2 -p 6390 -q -n 20000 -t set,get 2>/dev/null | tr '\r' '\n' |
      awk '/^SET:/ {s=$2} /^GET:/ {g=$2} END {print s, g}'
  done >/tmp/husk-bench-redis.$$
  awk '{print $1}' /tmp/husk-bench-redis.$$ | median | sed "s/^/$r,2 /"
  awk '{print $2}' /tmp/husk-bench-redis.$$ | median | sed "s/^/$r,3 /"
  rm -f /tmp/husk-bench-redis.$$
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
done
