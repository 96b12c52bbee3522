#!/bin/sh
# Issue 15's socket programs (python asyncio with 50 clients, multiprocessing Pipe and
# Pool, a socat relay between two unix sockets, a C program passing a descriptor over
# SCM_RIGHTS) give the same output inside `husk do` as natively.
#
#   programs.sh HUSK [FLAG...]      (FLAGs go to husk do, e.g. --platform=systrap)
set -eu
husk=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
for tool in python3 socat gcc curl redis-server redis-benchmark nginx; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed"; exit 1; }
done
native_dir=$(mktemp -d /tmp/husk-net.XXXXXX)
out=$(mktemp -d /var/tmp/husk-net-out.XXXXXX)
trap 'rm -rf "$native_dir" "$out"' EXIT
sh "$here/scenarios.sh" "$native_dir" >"$out/native" 2>&1
# Inside, the work directory is the sandbox's own /tmp (sentry memory).
"$husk" do "$@" -- sh -c 'd=$(mktemp -d /tmp/n.XXXXXX) && sh "$1" "$d"' sh "$here/scenarios.sh" \
  >"$out/husk" 2>&1
if diff -u "$out/native" "$out/husk"; then
  echo "PASS: $(grep -c '^==' "$out/native") programs, identical output"
else
  echo "FAIL: the outputs differ (native -, husk +)"
  exit 1
fi
