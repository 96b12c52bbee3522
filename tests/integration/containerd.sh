#!/bin/sh
# husk under an unchanged containerd (issue 14): containerd 1.6's runc v2 shim with husk as its
# runc binary (ctr run --runc-binary). This script starts its own containerd (own config, root,
# state and socket; the CRI plugin off), imports a busybox image made without a registry, and:
#   - ctr run --rm echo hi prints hi;
#   - exit codes, stdout and stderr reach ctr as with runc (the same scenario under both);
#   - ctr run -d, then ctr task exec lists the sandbox's processes and returns an exec's status;
#   - ctr task ps, pause and resume;
#   - ctr task kill and ctr task delete leave no process and no runtime state;
#   - ctr run -t and ctr task exec -t under tmux: shells on the sandbox's terminals (Ctrl-C,
#     the panes' sizes);
#   - an unknown command fails at start with husk's one-line reason in containerd's error.
# Everything it started is stopped by pid.
#
#   containerd.sh HUSK
set -eu
husk=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*"; [ -f "${work:-/nonexistent}/containerd.log" ] && tail -20 "$work/containerd.log"; exit 1; }
for tool in containerd ctr runc busybox python3 tmux; do
  command -v $tool >/dev/null || fail "$tool is not installed (tools/setup-debian.sh installs it)"
done

work=$(mktemp -d /var/tmp/husk-ctr.XXXXXX)
ns=husk-test-$$
. "$here/engines.sh"
cleanup() {
  tmux -S "$work/tmux.sock" kill-server 2>/dev/null || true
  if [ -n "$cpid" ]; then
    for t in $(ctr -a "$work/c.sock" -n "$ns" task ls -q 2>/dev/null); do
      ctr -a "$work/c.sock" -n "$ns" task kill -s SIGKILL "$t" 2>/dev/null || true
      sleep 0.5
      ctr -a "$work/c.sock" -n "$ns" task delete -f "$t" 2>/dev/null || true
    done
    for c in $(ctr -a "$work/c.sock" -n "$ns" containers ls -q 2>/dev/null); do
      ctr -a "$work/c.sock" -n "$ns" containers delete "$c" 2>/dev/null || true
    done
  fi
  stop_engines
  remove_cgroups "$ns"
  rm -rf "$work" "/run/containerd/runc/$ns"
}
trap cleanup EXIT
start_containerd
c() { ctr -a "$work/c.sock" -n "$ns" "$@"; }
image=docker.io/library/busybox:husk
python3 "$here/make_image.py" "$(command -v busybox)" "$image" "$work/busybox.tar"
c images import "$work/busybox.tar" >/dev/null

out=$(c run --rm --runc-binary "$husk" "$image" t1 echo hi)
[ "$out" = hi ] || fail "ctr run echo hi printed '$out'"

# The same scenario under runc and husk: exit code, stdout, stderr.
scenario() {  # scenario RUNTIME-BINARY ID
  set +e
  c run --rm --runc-binary "$1" "$image" "$2" sh -c 'echo to-stdout; echo to-stderr >&2; exit 3' \
    >"$work/$2.out" 2>"$work/$2.err"
  echo "exit=$?" >>"$work/$2.out"
  set -e
  grep -v 'level=' "$work/$2.err" >>"$work/$2.out" || true
}
scenario "$(command -v runc)" runc1
scenario "$husk" husk1
diff -u "$work/runc1.out" "$work/husk1.out" || fail "exit code or output differs from runc"
grep -q '^exit=3$' "$work/husk1.out" || fail "exit code: $(cat "$work/husk1.out")"

# Detached, killed, deleted: nothing left.
before=$(ps -e --no-headers | wc -l)
c run -d --runc-binary "$husk" "$image" t2 sleep 100
c task ls | grep -q '^t2 .*RUNNING' || fail "t2 is not running: $(c task ls)"
[ -f "/run/containerd/runc/$ns/t2/state.json" ] || fail "no husk state for t2"
# ctr task ps (runc ps --format json): the sandbox's processes.
c task ps t2 >"$work/taskps.out"
grep -q '^1 ' "$work/taskps.out" || fail "ctr task ps: $(cat "$work/taskps.out")"
# ctr task exec: the sandbox's processes, and an exec's exit status.
c task exec --exec-id e1 t2 ps -o pid,args >"$work/ps.out"
grep -q '^ *1 sleep 100' "$work/ps.out" || fail "ctr task exec ps: $(cat "$work/ps.out")"
set +e
c task exec --exec-id e2 t2 sh -c 'exit 5'
rc=$?
set -e
[ "$rc" = 5 ] || fail "ctr task exec exit status $rc, want 5"
# ctr task pause/resume (runc pause/resume: the container's cgroups frozen and thawed).
c task pause t2
c task ls | grep -q '^t2 .*PAUSED' || fail "t2 is not paused: $(c task ls)"
c task resume t2
c task ls | grep -q '^t2 .*RUNNING' || fail "t2 did not resume: $(c task ls)"
c task kill -s SIGKILL t2
i=0
until c task ls | grep -q '^t2 .*STOPPED'; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "t2 did not stop: $(c task ls)"; sleep 0.1
done
c task delete t2 >/dev/null
c containers delete t2
sleep 0.5
[ -e "/run/containerd/runc/$ns/t2" ] && fail "husk's state for t2 is left"
after=$(ps -e --no-headers | wc -l)
[ "$after" -le "$before" ] || fail "processes: $before before, $after after: $(ps -ef)"

# ctr run -t under tmux: a shell on the sandbox's own terminal, with the pane's size; Ctrl-C
# interrupts `sleep 100`; ctr task exec -t gets a terminal of its own, sized as its pane.
export TERM=xterm
tm() { tmux -S "$work/tmux.sock" "$@"; }
pane_has() {  # pane_has SESSION TEXT [COUNT]: waits (10 s) for TEXT to show COUNT times
  for _ in $(seq 100); do
    [ "$(tm capture-pane -p -t "$1" | grep -cF "$2")" -ge "${3:-1}" ] && return 0
    sleep 0.1
  done
  fail "the $1 pane never showed '$2' ${3:-1} times: $(tm capture-pane -p -t "$1")"
}
tm new-session -d -x 90 -y 25 -s run \
  "ctr -a $work/c.sock -n $ns run -t --rm --runc-binary $husk --env PS1='box\$ ' $image t4 sh; sleep 100"
pane_has run 'box$'
tm send-keys -t run 'sleep 100' Enter
sleep 1
tm send-keys -t run C-c
pane_has run 'box$' 2
tm send-keys -t run 'stty size; tty' Enter
pane_has run '25 90'
pane_has run '/dev/pts/0'
# ctr sizes the exec's terminal once the process has started (as it does with runc): the
# process waits for the size to arrive.
tm new-session -d -x 70 -y 20 -s exec \
  "ctr -a $work/c.sock -n $ns task exec -t --exec-id e3 t4 sh -c 'tty; for i in \$(seq 50); do stty size 2>/dev/null | grep -q \"^[1-9]\" && break; sleep 0.1; done; stty size'; sleep 100"
pane_has exec '/dev/pts/1'
pane_has exec '20 70'
tm send-keys -t run 'exit' Enter
i=0
while c task ls | grep -q '^t4 '; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "t4 did not end after its shell exited: $(c task ls)"; sleep 0.1
done
tm kill-server

# A failure to start says why.
set +e
c run --rm --runc-binary "$husk" "$image" t3 /no/such/program >"$work/t3.out" 2>&1
rc=$?
set -e
[ $rc != 0 ] || fail "running a missing program succeeded"
grep -q 'OCI runtime create failed: .*exec: "/no/such/program": No such file or directory' \
  "$work/t3.out" || fail "the failure to start does not say why: $(cat "$work/t3.out")"
c containers delete t3 2>/dev/null || true
[ -e "/run/containerd/runc/$ns/t3" ] && fail "husk's state for the failed t3 is left"
echo PASS
