#!/bin/sh
# grep -r over a large host tree inside `husk do` must neither break the sandbox (every host
# file still readable, grep exits 1: no match, no EIO) nor let the sentry's or the gofer's
# host descriptors grow with the number of files read (issue 11, finding 2).
#
#   grep_fds.sh HUSK DIR MAX_SENTRY_FDS MAX_GOFER_FDS
#
# Run inside the fence (its own PID namespace), so the husk processes found in /proc are ours.
set -eu
husk=$1 dir=$2 max_sentry=$3 max_gofer=$4
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkfifo "$d/in" "$d/out"
# The sandbox reports grep's status, waits for a line on stdin, then proves /bin still works.
"$husk" do /bin/sh -c 'grep -r zzzz-not-there-anywhere "$1" >/dev/null 2>&1; echo "grep=$?"; read go; /bin/true && echo alive' sh "$dir" <"$d/in" >"$d/out" &
husk_pid=$!
exec 3>"$d/in" 4<"$d/out"
read -r result <&4
count_fds() {  # the open descriptors of the husk process whose arguments start with $1
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^[^ ]*husk $1 "; then
      ls "$p/fd" | wc -l
      return
    fi
  done
  echo 0
}
sentry=$(count_fds boot)
gofer=$(count_fds gofer)
echo go >&3
read -r alive <&4 || alive=
wait "$husk_pid" || true
echo "grep -r $dir: $result; host fds after it: sentry $sentry (max $max_sentry), gofer $gofer (max $max_gofer); $alive"
[ "$result" = "grep=1" ] || { echo "FAIL: grep should find nothing and read everything"; exit 1; }
[ "$alive" = "alive" ] || { echo "FAIL: the sandbox could not run /bin/true afterwards"; exit 1; }
[ "$sentry" -gt 0 ] && [ "$sentry" -le "$max_sentry" ] || { echo "FAIL: sentry fds"; exit 1; }
[ "$gofer" -gt 0 ] && [ "$gofer" -le "$max_gofer" ] || { echo "FAIL: gofer fds"; exit 1; }
echo PASS
