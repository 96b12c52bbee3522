#!/bin/sh
# What husk costs as a container runtime, next to runc and (when installed) runsc: start-up of
# `ctr run --rm IMAGE true` (containerd's runc shim with --runc-binary) and of
# `docker run --rm --runtime=R IMAGE true`, medians of RUNS, and the resident memory of an idle
# `sleep` container (the shim and every process under it, summed). It starts its own containerd
# and dockerd (tests/integration/engines.sh), in husk_fence --host-root when built, and stops
# them when done. runsc runs with --network=none --platform=ptrace (ECOSYSTEM.md).
#
#   bench/containers.sh [BUILD_DIR]      (default: build; needs husk and husk_fence built)
#   RUNS=7 bench/containers.sh
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
husk=$(realpath "$build/cli/husk")
fence=$(realpath "$build/tests/fence/husk_fence")
if [ -z "${HUSK_BENCH_FENCED:-}" ]; then
  export HUSK_BENCH_FENCED=1
  exec "$fence" --host-root --time 1200 -- "$0" "$@"
fi
runs=${RUNS:-5}
here=$(pwd)/tests/integration
fail() { echo "bench: $*" >&2; exit 1; }
work=$(mktemp -d /var/tmp/husk-bench.XXXXXX)
. "$here/engines.sh"
trap 'stop_engines; remove_cgroups bench docker; rm -rf "$work"' EXIT

runtimes="runc husk"
command -v runsc >/dev/null && runtimes="$runtimes runsc"
# ctr --runc-binary takes a binary: runsc's flags go in through a wrapper.
printf '#!/bin/sh\nexec runsc --network=none --platform=ptrace "$@"\n' >"$work/runsc-ctr"
chmod +x "$work/runsc-ctr"
binary() {
  case $1 in
    runc) command -v runc ;;
    husk) echo "$husk" ;;
    runsc) echo "$work/runsc-ctr" ;;
  esac
}

start_containerd
start_dockerd "\"husk\": {\"path\": \"$husk\"},
  \"runsc\": {\"path\": \"$(command -v runsc || echo /nonexistent)\",
             \"runtimeArgs\": [\"--network=none\", \"--platform=ptrace\"]}"
image=docker.io/library/busybox:husk
python3 "$here/make_image.py" "$(command -v busybox)" "$image" "$work/busybox.tar"
python3 "$here/make_image.py" --rootfs "$(command -v busybox)" "$work/rootfs.tar"
c() { ctr -a "$work/c.sock" -n bench "$@"; }
d() { $docker -H "unix://$work/d.sock" "$@"; }
c images import "$work/busybox.tar" >/dev/null
d import -c 'CMD ["sh"]' "$work/rootfs.tar" busybox:husk >/dev/null

now_ms() { date +%s%3N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
n=0
ctr_ms() {  # ctr_ms RUNTIME
  for _ in $(seq "$runs"); do
    n=$((n + 1))
    t0=$(now_ms)
    c run --rm --runc-binary "$(binary "$1")" "$image" "b$n" true >/dev/null 2>&1 || echo fail >&2
    echo $(($(now_ms) - t0))
  done | median
}
docker_ms() {  # docker_ms RUNTIME
  for _ in $(seq "$runs"); do
    t0=$(now_ms)
    d run --rm --network none --runtime="$1" busybox:husk true >/dev/null 2>&1 || echo fail >&2
    echo $(($(now_ms) - t0))
  done | median
}
# The RSS (MB) of a process and everything under it.
tree_rss() {
  pids=$1
  total=0
  while [ -n "$pids" ]; do
    next=
    for p in $pids; do
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      total=$((total + ${kb:-0}))
      next="$next $(cat "/proc/$p/task/"*/children 2>/dev/null)"
    done
    pids=$(echo $next)
  done
  echo "$total" | awk '{printf "%.1f", $1 / 1024}'
}
idle_mb() {  # idle_mb RUNTIME
  n=$((n + 1))
  c run -d --runc-binary "$(binary "$1")" "$image" "idle$n" sleep 60 >/dev/null 2>&1
  sleep 2
  task=$(c task ls | awk -v id="idle$n" '$1 == id {print $2}')
  shim=$(awk '{print $4}' "/proc/$task/stat")
  tree_rss "$shim"
  c task kill -s SIGKILL "idle$n" >/dev/null 2>&1
  sleep 1
  c task delete "idle$n" >/dev/null 2>&1 || true
  c containers delete "idle$n" >/dev/null 2>&1 || true
}

for r in $runtimes; do
  eval "ctr_$r=\$(ctr_ms $r)"
  eval "docker_$r=\$(docker_ms $r)"
  eval "idle_$r=\$(idle_mb $r)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '%-32s %9s %9s %9s %11s %11s\n' containers runc husk runsc husk/runc husk/runsc
for row in "ctr run --rm true (ms):ctr" "docker run --rm true (ms):docker" \
           "idle container RSS (MB):idle"; do
  label=${row%:*}
  key=${row##*:}
  eval "a=\${${key}_runc:-} h=\${${key}_husk:-} s=\${${key}_runsc:--}"
  printf '%-32s %9s %9s %9s %11s %11s\n' "$label" "$a" "$h" "$s" "$(ratio "$h" "$a")" \
    "$( [ "$s" = - ] && echo - || ratio "$h" "$s")"
done
echo "(lower is better; RSS sums the shim and every process under it)"
