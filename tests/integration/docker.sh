#!/bin/sh
# husk as a Docker runtime (issue 14): dockerd 20.10 with "runtimes": {"husk": ...}, on its own
# containerd, data root, exec root and socket ("iptables": false; run in husk_fence --host-root,
# so the default bridge lives in the fence's network namespace). A busybox image is made with
# docker import. Scenarios: docker run --rm echo hi; exit code, stdout and stderr as with runc;
# run -d + exec + stats + logs + stop (a TERM handler runs) + rm; stop of an init without a handler
# (SIGKILL after the timeout, exit 137, as with runc); a -v HOSTDIR:/data write reaching the
# host; docker run -it under tmux (a prompt, Ctrl-C, the pane's size), compared with runc;
# --memory 64m stopping a 200 MB allocation; the bridge network served by the sandbox's stack
# (ping, curl at the container's address and through a published port, wget to the host side);
# docker run --network=host with a husk runtime given --network=host.
#
#   docker.sh HUSK
set -eu
husk=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
fail() {
  echo "FAIL: $*"
  [ -f "${work:-/nonexistent}/dockerd.log" ] && grep -v 'level=info' "$work/dockerd.log" | tail -20
  exit 1
}
for tool in containerd dockerd runc busybox python3 tmux curl ping /usr/bin/docker; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (tools/setup-debian.sh installs it)"
done

# wait_http URL: until a server answers there (10 s); a loaded machine starts python slowly.
wait_http() {
  for _ in $(seq 100); do
    curl -s -o /dev/null -m 2 "$1" && return 0
    sleep 0.1
  done
  fail "no server answered at $1"
}

work=$(mktemp -d /var/tmp/husk-docker.XXXXXX)
. "$here/engines.sh"
cleanup() {
  tmux -S "$work/tmux.sock" kill-server 2>/dev/null || true
  stop_engines
  remove_cgroups docker
  rm -rf "$work"
}
trap cleanup EXIT
start_containerd
start_dockerd "\"husk\": {\"path\": \"$husk\"}, \"husk-host\": {\"path\": \"$husk\", \"runtimeArgs\": [\"--network=host\"]}"
d() { $docker -H "unix://$work/d.sock" "$@"; }
python3 "$here/make_image.py" --rootfs "$(command -v busybox)" "$work/rootfs.tar"
d import -c 'CMD ["sh"]' "$work/rootfs.tar" busybox:husk >/dev/null

out=$(d run --rm --runtime=husk busybox:husk echo hi)
[ "$out" = hi ] || fail "docker run echo hi printed '$out'"

# The same scenario under runc and husk: exit code, stdout, stderr, and the capabilities
# Docker gives a container's root.
for rt in runc husk; do
  set +e
  d run --rm --runtime=$rt busybox:husk \
    sh -c 'grep ^Cap /proc/self/status; echo to-stdout; echo to-stderr >&2; exit 3' \
    >"$work/$rt.out" 2>"$work/$rt.err"
  echo "exit=$?" >>"$work/$rt.out"
  set -e
  cat "$work/$rt.err" >>"$work/$rt.out"
done
diff -u "$work/runc.out" "$work/husk.out" || fail "exit code or output differs from runc"

# run -d, exec, logs, stop (a TERM handler runs), rm.
d run -d --runtime=husk --name s1 busybox:husk \
  sh -c 'echo started; trap "echo bye; exit 0" TERM; while :; do sleep 0.2; done' >/dev/null
out=$(d exec s1 echo from-exec)
[ "$out" = from-exec ] || fail "docker exec printed '$out'"
d exec s1 ps -o pid,args | grep -q '^ *1 sh -c' || fail "docker exec ps: $(d exec s1 ps)"
# docker stats: the shim reads the container's cgroups through its pid (husk's monitor).
mem=$(d stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' s1)
case "$mem" in "" | 0B* | *" 0") fail "docker stats shows nothing of the container: '$mem'" ;; esac
d stop -t 5 s1 >/dev/null
d logs s1 >"$work/s1.log" 2>&1
grep -q started "$work/s1.log" && grep -q bye "$work/s1.log" || fail "docker logs: $(cat "$work/s1.log")"
[ "$(d inspect -f '{{.State.ExitCode}}' s1)" = 0 ] || fail "s1 exit code after stop"
d rm s1 >/dev/null

# An init without a TERM handler: stop waits out its timeout and kills it (137), as with runc.
for rt in runc husk; do
  d run -d --runtime=$rt --name "s2$rt" busybox:husk sleep 100 >/dev/null
  start=$(date +%s)
  d stop -t 2 "s2$rt" >/dev/null
  took=$(($(date +%s) - start))
  code=$(d inspect -f '{{.State.ExitCode}}' "s2$rt")
  echo "$rt: stop took ${took}s, exit $code"
  [ "$code" = 137 ] || fail "$rt: docker stop of a handler-less init gave exit $code, want 137"
  [ "$took" -ge 2 ] || fail "$rt: docker stop did not wait for its timeout (${took}s)"
  d rm "s2$rt" >/dev/null
done

# A volume: the write reaches the host directory.
mkdir "$work/vol"
d run --rm --runtime=husk -v "$work/vol:/data" busybox:husk sh -c 'echo x > /data/f'
[ "$(cat "$work/vol/f")" = x ] || fail "the volume write did not reach the host"

# docker run -it under tmux, with runc and husk: a prompt, Ctrl-C interrupts `sleep 100` and
# the shell goes on, the terminal has the pane's size; the screens must read the same.
export TERM=xterm
tm() { tmux -S "$work/tmux.sock" "$@"; }
# pane_has SESSION TEXT [COUNT]: waits (10 s) until TEXT shows COUNT times (1) in the pane.
pane_has() {
  for _ in $(seq 100); do
    [ "$(tm capture-pane -p -t "$1" | grep -cF "$2")" -ge "${3:-1}" ] && return 0
    sleep 0.1
  done
  fail "the $1 pane never showed '$2' ${3:-1} times: $(tm capture-pane -p -t "$1")"
}
# A session that lives through the loop: killing the last session makes the server exit, and a
# new-session racing that exit fails with "server exited unexpectedly" (seen once in CI).
tm new-session -d -s hold 'sleep 300'
for rt in runc husk; do
  tm new-session -d -x 100 -y 30 -s "it$rt" \
    "$docker -H unix://$work/d.sock run -it --rm --runtime=$rt -e PS1='box\$ ' busybox:husk sh; sleep 100"
  pane_has "it$rt" 'box$'
  tm send-keys -t "it$rt" 'sleep 100' Enter
  sleep 1
  tm send-keys -t "it$rt" C-c
  pane_has "it$rt" 'box$' 2
  tm send-keys -t "it$rt" 'echo done-$((6*7)); stty size' Enter
  pane_has "it$rt" '30 100'
  tm send-keys -t "it$rt" 'exit' Enter
  pane_has "it$rt" 'box$ exit'
  sleep 1
  tm capture-pane -p -t "it$rt" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$work/it$rt.screen"
  tm kill-session -t "it$rt"
done
tm kill-server 2>/dev/null || true
grep -q '^done-42$' "$work/ithusk.screen" || fail "docker run -it: $(cat "$work/ithusk.screen")"
diff -u "$work/itrunc.screen" "$work/ithusk.screen" || fail "docker run -it reads differently from runc"

# Docker's bridge network (issue 15): the container's interface, set up by Docker's hook in
# the sandbox's network namespace, is served by the sandbox's own stack. From the host: ping
# of the container's address, curl of busybox httpd at that address and through a published
# port (docker-proxy); from inside: a server on the bridge's host side, and ip addr.
d run -d --runtime=husk --name web -p 18080:8080 busybox:husk sh -c \
  'mkdir /www && echo hi-from-husk >/www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
ip=$(d inspect -f '{{.NetworkSettings.IPAddress}}' web)
gw=$(d inspect -f '{{.NetworkSettings.Gateway}}' web)
[ -n "$ip" ] && [ -n "$gw" ] || fail "the container has no address on the bridge"
ok=""
for _ in $(seq 100); do
  if [ "$(curl -s -m 2 "http://$ip:8080/index.html")" = hi-from-husk ]; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || fail "curl of httpd at the container's address $ip failed"
ping -c 2 -i 0.2 -W 2 "$ip" >/dev/null || fail "ping of the container's address $ip"
out=$(curl -s -m 5 http://127.0.0.1:18080/index.html)
[ "$out" = hi-from-husk ] || fail "curl through the published port printed '$out'"
mkdir -p "$work/www" && echo hi-from-the-host >"$work/www/h.txt"
python3 -m http.server -b "$gw" -d "$work/www" 18081 >/dev/null 2>&1 &
web=$!
wait_http "http://$gw:18081/h.txt"
out=$(d exec web wget -qO- "http://$gw:18081/h.txt" 2>&1) || true
kill "$web"
[ "$out" = hi-from-the-host ] || fail "wget from the container to the host side printed '$out'"
d exec web ip addr | grep -q "inet $ip/" || fail "ip addr in the container: $(d exec web ip addr)"
d rm -f web >/dev/null

# docker run --network=host: a runtime given husk's --network=host serves the container's
# inet sockets with host sockets (a server on the host's loopback answers); plain husk keeps
# such a container to its own loopback, as runsc does.
python3 -m http.server -b 127.0.0.1 -d "$work/www" 18083 >/dev/null 2>&1 &
web=$!
wait_http http://127.0.0.1:18083/h.txt
out=$(d run --rm --network=host --runtime=husk-host busybox:husk wget -qO- http://127.0.0.1:18083/h.txt 2>&1) || true
[ "$out" = hi-from-the-host ] || { kill "$web"; fail "docker run --network=host with husk --network=host printed '$out'"; }
if d run --rm --network=host --runtime=husk busybox:husk wget -qO- -T 3 http://127.0.0.1:18083/h.txt >/dev/null 2>&1; then
  kill "$web"
  fail "a husk container without --network=host reached the host's loopback"
fi
kill "$web"

# --memory 64m: a 200 MB allocation inside fails or is killed; the sandbox, not the host.
set +e
d run --rm --runtime=husk --memory 64m busybox:husk \
  sh -c 'a=$(head -c 200000000 /dev/zero | tr "\\0" x); echo ${#a}' >"$work/mem.out" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] || fail "a 200 MB allocation under --memory 64m succeeded: $(cat "$work/mem.out")"
grep -q '^200000000$' "$work/mem.out" && fail "the allocation completed under --memory 64m"
echo PASS
