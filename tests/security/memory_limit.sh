#!/bin/sh
# The sandbox's memory limit (issue 11, finding 2): `husk do --memory` is what sysinfo(2) and
# /proc/meminfo report; a process that needs memory past it is killed with SIGKILL, as by
# Linux's OOM killer, and the rest of the sandbox goes on (its shell runs the next command,
# a tmpfs write past the limit fails with ENOSPC rather than growing the sentry). The process
# killed is the one holding the most memory, not the one that happened to need a page: a small
# allocation while a big process sits idle kills the big one and then succeeds.
#
#   memory_limit.sh HUSK MEMORY_HOG
set -eu
husk=$1 hog=$2
out=$("$husk" do --memory=128M /bin/sh -c '
  "$1" 512; echo "hog=$?"
  "$1" 16; echo "small=$?"
  echo "sysinfo=$("$1" sysinfo)"
  echo "meminfo=$(grep MemTotal /proc/meminfo | tr -s " " | cut -d" " -f2)"
  if head -c 300000000 /dev/zero > /tmp/fill 2>/dev/null; then echo fill=ok; else echo fill=failed; fi
  rm -f /tmp/fill
  "$1" 16; echo "after=$?"
  "$1" 80 hold > /tmp/held & big=$!
  until grep -q held /tmp/held; do sleep 0.1; done
  "$1" 64; echo "small_needs=$?"
  wait $big; echo "big=$?"' sh "$hog" 2>/dev/null)
echo "$out"
expect() { echo "$out" | grep -qx "$1" || { echo "FAIL: expected $1"; exit 1; }; }
expect "hog=137"      # SIGKILL
expect "small=0"      # the sandbox goes on
expect "sysinfo=128"
expect "meminfo=131072"
expect "fill=failed"  # ENOSPC (or the writer killed), never 300 MB in the sentry
expect "after=0"      # the removed file gave its memory back
expect "small_needs=0" # 80 + 64 MiB do not fit: the idle 80 MiB process goes, not this one
expect "big=137"
echo PASS
