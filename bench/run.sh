#!/bin/bash
# Measures what isolation costs: start-up, one syscall, a clock read, a file
# open, file throughput and page faults, natively, in husk (column "husk": the
# ptrace platform, the default; column "systrap": --platform=systrap) and, when
# installed, in runsc (gVisor, ptrace platform). Prints medians and ratios.
#
#   bench/run.sh [BUILD_DIR]      (default: build; needs husk and husk_bench built)
#   RUNS=7 bench/run.sh           (repetitions per measurement; median is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
husk=$(realpath "$build/cli/husk")
bench=$(realpath "$build/bench/husk_bench")
runs=${RUNS:-5}
for f in "$husk" "$bench"; do
  [[ -x $f ]] || { echo "bench: $f is missing; build first (cmake --build $build)" >&2; exit 1; }
done
case $bench in
  /tmp/*) echo "bench: the build tree must not be under /tmp (husk gives the sandbox its own /tmp)" >&2
          exit 1 ;;
esac

runners=(native husk systrap)
if command -v runsc >/dev/null; then runners+=(runsc); fi

run_in() {  # run_in RUNNER CMD...
  local r=$1; shift
  case $r in
    native) "$@" ;;
    husk) "$husk" do -- "$@" ;;
    systrap) "$husk" do --platform=systrap -- "$@" ;;
    runsc) runsc --network=none --platform=ptrace do "$@" 2>/dev/null ;;
  esac
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# measure RUNNER CMD...: median of the value husk_bench prints.
measure() {
  local r=$1; shift
  for _ in $(seq "$runs"); do run_in "$r" "$@" | awk '{print $2}'; done | median
}

# startup RUNNER: wall time of running /bin/true, in ms.
startup() {
  local r=$1
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    run_in "$r" /bin/true
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b - a) / 1e6}'
  done | median
}

data=/var/tmp/husk-bench-64M
[[ -f $data ]] || head -c $((64 << 20)) /dev/urandom > "$data"

declare -A result
names=("startup /bin/true (ms)" "getppid (ns/call)" "clock_gettime (ns/call)"
       "open+read+close (ns)" "read 64 MiB (MiB/s)" "page fault (ns/page)"
       "fork, 16 MiB heap (us)" "fork+exec+wait (us)" "thread create+join (us)"
       "futex wake-up (us)" "mmap+touch+munmap 64M (ms)")
for r in "${runners[@]}"; do
  result["$r,0"]=$(startup "$r")
  result["$r,1"]=$(measure "$r" "$bench" syscall 200000)
  # CLOCK_MONOTONIC through glibc: the vDSO natively, husk's own in husk, gVisor's in runsc.
  result["$r,2"]=$(measure "$r" "$bench" clock 10000000)
  result["$r,3"]=$(measure "$r" "$bench" open /etc/os-release 20000)
  result["$r,4"]=$(measure "$r" "$bench" read "$data")
  result["$r,5"]=$(measure "$r" "$bench" fault 20000)
  result["$r,6"]=$(measure "$r" "$bench" fork 20 16 | awk '{printf "%.1f\n", $1 / 1000}')
  result["$r,7"]=$(measure "$r" "$bench" forkexec 50 | awk '{printf "%.1f\n", $1 / 1000}')
  result["$r,8"]=$(measure "$r" "$bench" thread 500 | awk '{printf "%.1f\n", $1 / 1000}')
  result["$r,9"]=$(measure "$r" "$bench" futex 5000 | awk '{printf "%.1f\n", $1 / 1000}')
  # 16,384 pages: 64 MiB mapped, touched and unmapped.
  result["$r,10"]=$(measure "$r" "$bench" fault 16384 | awk '{printf "%.1f\n", $1 * 16384 / 1e6}')
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# table TITLE NAMES VALUES [RUNNER...]: a table of VALUES["RUNNER,ROW"] (an associative
# array), rows named by the NAMES array, with husk's ratios to native and to runsc; a
# missing value prints as -.
table() {
  local title=$1
  local -n tnames=$2 tvals=$3
  shift 3
  local rs=("$@")
  [[ ${#rs[@]} -gt 0 ]] || rs=("${runners[@]}")
  printf '%-30s' "$title"
  for r in "${rs[@]}"; do printf '%12s' "$r"; done
  printf '%14s' "husk/native"
  [[ " ${rs[*]} " == *" runsc "* ]] && printf '%13s' "husk/runsc"
  [[ " ${rs[*]} " == *" systrap "* ]] && printf '%16s' "systrap/native"
  [[ " ${rs[*]} " == *" systrap "* && " ${rs[*]} " == *" runsc "* ]] && printf '%15s' "systrap/runsc"
  echo
  for i in "${!tnames[@]}"; do
    printf '%-30s' "${tnames[$i]}"
    for r in "${rs[@]}"; do printf '%12s' "${tvals[$r,$i]:--}"; done
    if [[ -n ${tvals[husk,$i]:-} && -n ${tvals[native,$i]:-} ]]; then
      printf '%14s' "$(ratio "${tvals[husk,$i]}" "${tvals[native,$i]}")"
    else
      printf '%14s' -
    fi
    if [[ -n ${tvals[runsc,$i]:-} && -n ${tvals[husk,$i]:-} ]]; then
      printf '%13s' "$(ratio "${tvals[husk,$i]}" "${tvals[runsc,$i]}")"
    fi
    if [[ " ${rs[*]} " == *" systrap "* ]]; then
      if [[ -n ${tvals[systrap,$i]:-} && -n ${tvals[native,$i]:-} ]]; then
        printf '%16s' "$(ratio "${tvals[systrap,$i]}" "${tvals[native,$i]}")"
      else
        printf '%16s' -
      fi
      if [[ -n ${tvals[runsc,$i]:-} && -n ${tvals[systrap,$i]:-} ]]; then
        printf '%15s' "$(ratio "${tvals[systrap,$i]}" "${tvals[runsc,$i]}")"
      fi
    fi
    echo
  done
}
table benchmark names result
echo "(read: higher is better, so a ratio below 1 is a slowdown; all others: lower is better)"

# Files (issue 13). The host-side trees are made once: a 1,000-entry directory and a git
# repository of 5,000 files, both read through the gofer in husk; a volume directory.
dir1000=/var/tmp/husk-bench-dir1000
if [[ ! -d $dir1000 ]]; then
  mkdir -p "$dir1000.new" && (cd "$dir1000.new" && seq 1000 | xargs touch) && mv "$dir1000.new" "$dir1000"
fi
repo=/var/tmp/husk-bench-git5000
if [[ ! -d $repo/.git ]] && command -v git >/dev/null; then
  rm -rf "$repo.new" && mkdir -p "$repo.new"
  (cd "$repo.new" && for d in $(seq 50); do mkdir "d$d" && (cd "d$d" && seq 100 | xargs touch); done &&
     git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm files) &&
    mv "$repo.new" "$repo"
fi
vol=/var/tmp/husk-bench-vol
mkdir -p "$vol"

# run_files RUNNER CMD...: like run_in, with the volume mounted at /vol (husk only) and a
# memory-backed directory at $mem (natively /dev/shm; /tmp in the sandboxes).
run_files() {
  local r=$1; shift
  case $r in
    native) "$@" ;;
    husk) "$husk" do --volume "$vol:/vol" -- "$@" ;;
    systrap) "$husk" do --platform=systrap --volume "$vol:/vol" -- "$@" ;;
    runsc) runsc --network=none --platform=ptrace do "$@" 2>/dev/null ;;
  esac
}
measure_files() {
  local r=$1; shift
  for _ in $(seq "$runs"); do run_files "$r" "$@" | tail -n 1 | awk '{print $2}'; done | median
}
fnames=("stat, seen path (ns)" "open+close (ns)" "readdir 1000 entries (us)"
        "write 64M tmpfs (MiB/s)" "read 64M tmpfs (MiB/s)" "write 64M volume (MiB/s)"
        "read 64M volume (MiB/s)" "git status 5000 (ms)")
declare -A files
for r in "${runners[@]}"; do
  mem=/tmp; [[ $r == native ]] && mem=/dev/shm
  volf=/vol/f; [[ $r == native ]] && volf=$vol/f
  files["$r,0"]=$(measure_files "$r" "$bench" stat /usr/include/stdio.h 100000)
  files["$r,1"]=$(measure_files "$r" "$bench" openclose /etc/os-release 20000)
  files["$r,2"]=$(measure_files "$r" "$bench" readdir "$dir1000" 200 | awk '{printf "%.1f\n", $1 / 1000}')
  files["$r,3"]=$(measure_files "$r" sh -c "$bench write $mem/husk-bench-w 64; rm -f $mem/husk-bench-w")
  files["$r,4"]=$(measure_files "$r" sh -c "$bench write $mem/husk-bench-r 64 >/dev/null; $bench read $mem/husk-bench-r; rm -f $mem/husk-bench-r")
  if [[ $r != runsc ]]; then  # runsc do has no volumes
    files["$r,5"]=$(measure_files "$r" sh -c "$bench write $volf 64")
    files["$r,6"]=$(measure_files "$r" "$bench" read "$volf")
  fi
  if [[ -d $repo/.git ]]; then
    files["$r,7"]=$(measure_files "$r" "$bench" run 3 git -C "$repo" status --porcelain |
                    awk '{printf "%.1f\n", $1 / 1e6}')
  fi
done
rm -f "$vol/f"
echo
table files fnames files
# Sockets (issue 15): unix stream sockets, and TCP over 127.0.0.1 inside the sandbox.
snames=("unix round trip (us)" "unix stream (MiB/s)" "TCP loopback round trip (us)"
        "TCP loopback stream (MiB/s)" "TCP connect+accept (us)")
declare -A socks
for r in "${runners[@]}"; do
  socks["$r,0"]=$(measure "$r" "$bench" unixrtt 20000 | awk '{printf "%.1f\n", $1 / 1000}')
  socks["$r,1"]=$(measure "$r" "$bench" unixbw 256)
  socks["$r,2"]=$(measure "$r" "$bench" tcprtt 20000 | awk '{printf "%.1f\n", $1 / 1000}')
  socks["$r,3"]=$(measure "$r" "$bench" tcpbw 256)
  socks["$r,4"]=$(measure "$r" "$bench" tcpconn 2000 | awk '{printf "%.1f\n", $1 / 1000}')
done
echo
table sockets snames socks

# The network over --network=sandbox (bench/net.sh, in a fence of its own: it makes a veth
# pair). runsc is left out: its sandbox network needs a NAT set-up on the host.
fence=$build/tests/fence/husk_fence
nnames=("iperf3 to the sandbox (Mbit/s)" "iperf3 from it (Mbit/s)" "redis SET (requests/s)"
        "redis GET (requests/s)")
declare -A nets
if [[ -x $fence ]] && command -v iperf3 >/dev/null && command -v redis-server >/dev/null; then
  while read -r key value; do nets[$key]=$value; done < <(
    RUNS=$runs "$fence" --time 600 -- "$PWD/bench/net.sh" "$husk" 2>/dev/null)
  echo
  table "--network=sandbox (veth)" nnames nets native husk systrap
else
  echo "(--network=sandbox: skipped, it needs $fence, iperf3 and redis-server)"
fi

# The target for a seen path: no gofer round trip, i.e. at most twice husk's own null syscall.
echo "husk: stat of a seen path = $(ratio "${files[husk,0]}" "${result[husk,1]}")x husk's getppid"
echo "(MiB/s: higher is better; all others: lower is better)"
