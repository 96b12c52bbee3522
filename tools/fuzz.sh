#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz) with clang under ASan+UBSan in
# build-fuzz, the build that also checks the thread-safety annotations, and
# runs each target for a while on a copy of its seed corpus.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target: the argument, else $FUZZ_SECONDS, else 20. For a long
# campaign, e.g. four hours each: FUZZ_SECONDS=14400 tools/fuzz.sh.
# $FUZZ_JOBS > 1 fuzzes each target in that many processes (libFuzzer's -fork).
# $FUZZ_BUILD_HUSK=1 also builds the `husk` binary, so that every sentry
# library passes -Wthread-safety (CI does this).
#
# Each run starts from tests/fuzz/corpus/<target>/ and keeps what it finds in
# build-fuzz/fuzz/<target>/corpus, which later runs start from too. A crash
# leaves its input in build-fuzz/fuzz/<target>/ (crash-*, leak-*, timeout-*)
# and fails the script: minimise it with
#   build-fuzz/tests/fuzz/<target> -minimize_crash=1 -runs=100000 <input>
# and commit the reproducer to tests/fuzz/corpus/<target>/.
#
# The targets are in-process (they make no random syscalls); they still run
# under build/tests/fence/husk_fence when one has been built.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-${FUZZ_SECONDS:-20}}
[ $# -gt 0 ] && shift
targets=${*:-elf_fuzz gofer_request_fuzz path_fuzz packet_fuzz}
parallel=""
[ "${FUZZ_JOBS:-1}" -gt 1 ] && parallel="-fork=$FUZZ_JOBS"

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHUSK_FUZZ=ON >/dev/null
build_targets=$targets
[ "${FUZZ_BUILD_HUSK:-0}" = 1 ] && build_targets="$build_targets husk"
# shellcheck disable=SC2086 # word splitting of the target list is wanted
cmake --build build-fuzz -j "$(nproc)" --target $build_targets

fence=""
if [ -x build/tests/fence/husk_fence ]; then
  # The fence's own limit, a margin above libFuzzer's.
  fence="build/tests/fence/husk_fence --time $((seconds + 120)) --"
fi

status=0
for t in $targets; do
  work=build-fuzz/fuzz/$t
  mkdir -p "$work/corpus" "$work/tmp"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  echo "fuzz: $t for ${seconds}s"
  # LeakSanitizer is on: a leak fails the run like any other finding. The
  # gofer target makes its directory tree under TMPDIR.
  # shellcheck disable=SC2086 # $fence is a command prefix, split on purpose
  if ! TMPDIR=$PWD/$work/tmp $fence build-fuzz/tests/fuzz/"$t" \
      -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
      ${parallel:+"$parallel"} -artifact_prefix="$work/" "$work/corpus" \
      >"$work/log" 2>&1; then
    status=1
    echo "fuzz: $t FAILED; the log is $work/log:"
    tail -n 60 "$work/log"
  fi
  # One line of each: coverage, corpus, executions.
  grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec' \
    "$work/log" | sed "s/^/fuzz: $t: /" || true
done
exit $status
