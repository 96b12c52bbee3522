# Sourced by the integration tests and bench/containers.sh: starts a containerd and, if asked,
# a dockerd of their own (config, root, state, sockets under $work; the CRI plugin off; dockerd
# with "iptables": false and the runtimes given), and stops them by pid. Needs $work and fail().
#
#   start_containerd            sets cpid; ctr -a "$work/c.sock" reaches it
#   start_dockerd RUNTIMES_JSON sets dpid; docker -H "unix://$work/d.sock" reaches it
#   stop_engines                kills what was started, unmounts what is left under $work
#   remove_cgroups NAME...      removes the (empty) cgroups runc left for NAME (a containerd
#                               namespace, or dockerd's "docker") under every hierarchy
cpid= dpid=
docker=/usr/bin/docker  # Debian's 20.10 client; another docker may come first on PATH

start_containerd() {
  cat >"$work/containerd.toml" <<CFG
version = 2
root = "$work/c-root"
state = "$work/c-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
[debug]
  address = "$work/c-debug.sock"
CFG
  containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
  cpid=$!
  local i=0
  until ctr -a "$work/c.sock" version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "containerd did not start"; sleep 0.1
  done
}

start_dockerd() {  # start_dockerd '"husk": {"path": "..."}, ...'
  cat >"$work/daemon.json" <<CFG
{
  "data-root": "$work/data",
  "exec-root": "$work/exec",
  "pidfile": "$work/docker.pid",
  "hosts": ["unix://$work/d.sock"],
  "containerd": "$work/c.sock",
  "storage-driver": "overlay2",
  "iptables": false, "ip-forward": false, "ip-masq": false,
  "runtimes": {$1}
}
CFG
  dockerd --config-file "$work/daemon.json" >"$work/dockerd.log" 2>&1 &
  dpid=$!
  local i=0
  until $docker -H "unix://$work/d.sock" version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 300 ] || fail "dockerd did not start"; sleep 0.1
  done
}

stop_engines() {
  if [ -n "$dpid" ]; then
    for c in $($docker -H "unix://$work/d.sock" ps -aq 2>/dev/null); do
      $docker -H "unix://$work/d.sock" rm -f "$c" >/dev/null 2>&1 || true
    done
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
  fi
  if [ -n "$cpid" ]; then
    kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
  fi
  grep " $work/" /proc/mounts | cut -d' ' -f2 | sort -r | while read -r m; do umount -l "$m"; done
}

remove_cgroups() {
  for name in "$@"; do
    for d in /sys/fs/cgroup/*/"$name"/* /sys/fs/cgroup/*/"$name"; do
      [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
  done
}
