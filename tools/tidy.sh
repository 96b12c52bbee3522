#!/bin/sh
# Runs clang-tidy, with the checks in .clang-tidy, over husk's own C++ code and
# the first-party headers it includes (never generated files); fails if
# clang-tidy reports anything.
#
#   tools/tidy.sh            every .cc file git tracks: sources, unit tests,
#                            the conformance, security and fuzz suites
#   tools/tidy.sh FILE...    only these files
#
# It reads the compile commands of the normal build (build/, or $TIDY_BUILD),
# so configure and build first: the generated headers must exist. The fuzz
# targets (tests/fuzz) are only in the clang build: they are checked with
# build-fuzz's compile commands when tools/fuzz.sh has made that build, and
# skipped with a note otherwise. $TIDY_JOBS clang-tidy processes run at once
# (default 2); the whole tree takes about 6 CPU-minutes.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
build=${TIDY_BUILD:-build}
fuzz_build="build-fuzz"
jobs=${TIDY_JOBS:-2}
if [ ! -f "$build/compile_commands.json" ]; then
  echo "tidy: no $build/compile_commands.json: configure and build first" >&2
  exit 2
fi

# Diagnostics in headers count when the header is ours: under a top-level
# folder that holds tracked headers (not build*/, where the generated ones are).
dirs=$(git ls-files '*.h' | sed -n 's|/.*||p' | sort -u | paste -sd '|' -)
root_re=$(printf '%s' "$root" | sed 's/[].[^$*+?(){}|\\]/\\&/g')
header_filter="^$root_re/($dirs)/"

if [ $# -gt 0 ]; then
  files=$*
else
  files=$(git ls-files '*.cc')
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# One line per file to check: the build directory whose commands compile it.
: >"$out/list"
for f in $files; do
  f=${f#"$root"/}
  f=${f#./}
  if grep -qF "\"file\": \"$root/$f\"" "$build/compile_commands.json"; then
    echo "$build $f" >>"$out/list"
  elif [ -f "$fuzz_build/compile_commands.json" ] &&
    grep -qF "\"file\": \"$root/$f\"" "$fuzz_build/compile_commands.json"; then
    echo "$fuzz_build $f" >>"$out/list"
  else
    echo "tidy: skipping $f: no compile command in $build or $fuzz_build"
  fi
done

start=$(date +%s)
# Each clang-tidy writes its own log, so that parallel output never interleaves;
# a failed file leaves a .failed mark next to its log.
# shellcheck disable=SC2016 # $1..$4 are the inner shell's: out, filter, build, file
xargs -P "$jobs" -L 1 sh -c '
  log="$1/$(printf %s "$4" | tr / _).log"
  clang-tidy -p "$3" --quiet --warnings-as-errors="*" --header-filter="$2" "$4" \
    >"$log" 2>&1 || : >"$log.failed"
' sh "$out" "$header_filter" <"$out/list"

checked=$(wc -l <"$out/list")
failed=$(find "$out" -name '*.failed' | wc -l)
seconds=$(($(date +%s) - start))
if [ "$failed" -eq 0 ]; then
  echo "tidy: $checked files clean (${seconds}s)"
  exit 0
fi
for mark in "$out"/*.failed; do
  grep -Ev '^[0-9]+ warnings?( and [0-9]+ errors?)? generated\.$' "${mark%.failed}" || true
done
# A finding in a header shows once per file that includes it: list each once.
echo "tidy: $failed of $checked files have findings (${seconds}s); each finding once:"
cat "$out"/*.log | grep -E '^[^ ]+:[0-9]+:[0-9]+: error: ' | sed "s|^$root/||" | sort -u
exit 1
