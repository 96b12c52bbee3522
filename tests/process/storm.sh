#!/bin/sh
# Thread and process storms leave nothing behind on the host (issue 12): the host threads and
# processes of the sandbox, and the sandbox's memory in use, are the same before and after
# THREADS threads (ALIVE at a time) and CHILDREN fork+exec+wait rounds.
#
#   storm.sh HUSK STORM THREADS ALIVE CHILDREN
#
# Run inside the fence (its own PID namespace), so every task in /proc is ours.
set -eu
husk=$1 storm=$2 threads=$3 alive=$4 children=$5
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkfifo "$d/in" "$d/out"
"$husk" do "$storm" "$threads" "$alive" "$children" <"$d/in" >"$d/out" &
husk_pid=$!
exec 3>"$d/in" 4<"$d/out"
host_tasks() {  # processes and threads of the husk tree (every task here but this shell's)
  n=0
  for p in /proc/[0-9]*; do
    case "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" in
      *husk*) n=$((n + $(ls "$p/task" 2>/dev/null | wc -l))) ;;
    esac
  done
  echo "$n"
}
read -r _ used_before <&4
tasks_before=$(host_tasks)
start=$(date +%s)
echo go >&3
read -r state used_after ran <&4 || state=
end=$(date +%s)
tasks_after=$(host_tasks)
echo end >&3
wait "$husk_pid" || true
echo "storm: $threads threads ($alive alive), $children fork+exec+wait in $((end - start)) s: $ran"
echo "host tasks before $tasks_before, after $tasks_after; sandbox memory in use before $used_before, after $used_after"
[ "$state" = "done" ] || { echo "FAIL: the storm did not finish ($state)"; exit 1; }
[ "$ran" = "threads=$threads" ] || { echo "FAIL: not every thread ran"; exit 1; }
[ "$tasks_before" -gt 0 ] || { echo "FAIL: no husk task found"; exit 1; }
[ "$tasks_after" -le "$tasks_before" ] || { echo "FAIL: host tasks left behind"; exit 1; }
# Memory-file pages: the process's own heap may grow a little (thread stacks are cached by
# glibc); 16 MiB is far below what 10,000 leaked stacks or 1,000 leaked images would hold.
[ "$used_after" -le $((used_before + 16 * 1024 * 1024)) ] || { echo "FAIL: memory left behind"; exit 1; }
echo PASS
