#!/bin/sh
# Proves that husk_fence fences: PID, user, UTS, mount and net namespaces, exit statuses,
# the time limit and (where cgroups can be made) the process and memory limits.
#
#   selftest.sh PATH/TO/husk_fence
#
# Nothing here signals anything outside the fence; every misbehaviour happens inside it.
set -u
fence=${1:?usage: selftest.sh PATH/TO/husk_fence}
failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1" >&2; failures=$((failures + 1)); }
# expect NAME WANT GOT
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi; }

# The command is PID 2 of a new PID namespace, under the fence's init (PID 1).
expect "command is pid 2 in a new pid namespace" 2 "$("$fence" -- sh -c 'echo $$')"
expect "pid 1 is the fence init, /proc is fresh" fence-init "$("$fence" -- cat /proc/1/comm)"
expect "pid namespace differs" yes \
  "$(inner=$("$fence" -- readlink /proc/self/ns/pid); [ "$inner" != "$(readlink /proc/self/ns/pid)" ] && echo yes)"

# Root inside a new user namespace.
expect "uid 0 inside" 0 "$("$fence" -- id -u)"
expect "user namespace differs" yes \
  "$(inner=$("$fence" -- readlink /proc/self/ns/user); [ "$inner" != "$(readlink /proc/self/ns/user)" ] && echo yes)"

# Hostname changes stay inside.
outer_host=$(hostname)
expect "sethostname works inside" fence-selftest \
  "$("$fence" -- sh -c 'hostname fence-selftest && hostname')"
expect "hostname unchanged outside" "$outer_host" "$(hostname)"

# Mounts stay inside.
dir=$(mktemp -d /tmp/fence-selftest.XXXXXX)
expect "mount inside" tmpfs \
  "$("$fence" -- sh -c "mount -t tmpfs none '$dir' && stat -f -c %T '$dir'")"
if grep -qF " $dir " /proc/self/mountinfo; then fail "mount leaked outside"; else pass "mount did not leak"; fi
rmdir "$dir"

# Only a loopback interface.
expect "network namespace has only lo" lo \
  "$("$fence" -- sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")"

# Exit statuses.
"$fence" -- sh -c 'exit 7'; expect "exit code propagated" 7 $?
"$fence" -- sh -c 'kill -TERM $$'; expect "death by signal is 128+signal" 143 $?
"$fence" -- /nonexistent/command 2>/dev/null; expect "missing command is 127" 127 $?
"$fence" --bogus-option true 2>/dev/null; expect "bad option is 125" 125 $?
"$fence" 2>/dev/null; expect "no command is 125" 125 $?

# The time limit kills the whole namespace, background processes included.
start=$(date +%s)
"$fence" --time 1 -- sh -c 'sleep 60 & sleep 60' 2>/dev/null; rc=$?
elapsed=$(($(date +%s) - start))
expect "time limit gives 124" 124 $rc
if [ $elapsed -lt 10 ]; then pass "time limit is prompt (${elapsed}s)"; else fail "time limit took ${elapsed}s"; fi

# Leftover background processes die with the command.
"$fence" -- sh -c 'sleep 60 & exit 3'; expect "background process does not hold the fence" 3 $?

# Limits. Enforced by the pids cgroup, or for non-root callers by RLIMIT_NPROC.
limits=$("$fence" -- sh -c 'grep -c husk_fence- /proc/self/cgroup; id -u' 2>/dev/null | head -1)
if [ "${limits:-0}" -gt 0 ] || [ "$(id -u)" != 0 ]; then
  "$fence" --pids 16 -- sh -c 'i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i + 1)); done; exit 0' \
    2>/dev/null
  rc=$?
  if [ $rc -ne 0 ]; then pass "fork storm stopped by the process limit (status $rc)"; else
    fail "64 processes started under --pids 16"; fi
else
  echo "skip process limit: no cgroup could be made here"
fi
if "$fence" -- cat /proc/self/cgroup 2>/dev/null | grep -q 'memory:.*husk_fence-' ||
   "$fence" -- cat /proc/self/cgroup 2>/dev/null | grep -q '^0::.*husk_fence-'; then
  "$fence" --mem 64M -- sh -c 'head -c 512M /dev/zero | tail >/dev/null' 2>/dev/null
  expect "memory storm is killed (SIGKILL from the OOM killer)" 137 $?
else
  echo "skip memory limit: no memory cgroup could be made here"
fi

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all fence checks passed"
