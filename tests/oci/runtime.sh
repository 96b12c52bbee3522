#!/bin/sh
# The OCI runtime's command line (issue 14), without an engine: a busybox bundle made with
# `husk spec`, then run (foreground, exit status and output), create/start/state/kill/delete
# with a pid file, list, exec, signals to the container's init, hooks, a tmpfs mount, malformed
# bundles refused with one line naming the field and leaving nothing behind, and 100
# create/start/kill/delete cycles that leave no process, mount or state behind.
#
#   runtime.sh HUSK
set -eu
husk=$1
fail() { echo "FAIL: $*"; exit 1; }
busybox=$(command -v busybox) || fail "busybox (busybox-static) is not installed"
work=$(mktemp -d)
root=$work/state
cleanup() {
  for d in "$root"/*/; do
    [ -d "$d" ] && "$husk" --root "$root" delete --force "$(basename "$d")" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

b=$work/bundle
mkdir -p "$b/rootfs/bin" "$b/rootfs/etc" "$b/rootfs/tmp"
cp "$busybox" "$b/rootfs/bin/busybox"
for app in sh echo cat sleep ls ps true false hostname id pwd stat grep cut; do ln -s busybox "$b/rootfs/bin/$app"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$b/rootfs/etc/passwd"
h() { "$husk" --root "$root" "$@"; }

h spec --bundle "$b"
[ -s "$b/config.json" ] || fail "husk spec wrote no config.json"
h spec --bundle "$b" 2>/dev/null && fail "husk spec overwrote an existing config.json"
# set_args JSON-ARRAY [EXTRA-PYTHON]: the bundle's command, no terminal.
set_args() {
  python3 - "$b/config.json" "$1" "${2:-}" <<'PY'
import json, sys
path, args, extra = sys.argv[1], sys.argv[2], sys.argv[3]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(args)
if extra:
    exec(extra)
json.dump(c, open(path, "w"))
PY
}
cp "$b/config.json" "$work/config.orig"

# run: output, exit status, hostname and environment from the bundle.
set_args '["sh", "-c", "echo hi; hostname; echo $GREETING; exit 7"]' \
  'c["hostname"] = "boxname"; c["process"]["env"].append("GREETING=hello")'
set +e
out=$(h run --bundle "$b" t0 2>&1)
rc=$?
set -e
[ "$rc" = 7 ] || fail "run: exit status $rc, want 7 ($out)"
[ "$out" = "hi
boxname
hello" ] || fail "run: output '$out'"
[ -e "$root/t0" ] && fail "run left its state behind"
# The same on the systrap platform (a global flag, as a runtime's runtimeArgs give it); an
# unknown platform is refused before anything runs.
set +e
out=$("$husk" --root "$root" --platform=systrap run --bundle "$b" ts 2>&1)
rc=$?
set -e
[ "$rc" = 7 ] || fail "run --platform=systrap: exit status $rc, want 7 ($out)"
[ "$out" = "hi
boxname
hello" ] || fail "run --platform=systrap: output '$out'"
if "$husk" --root "$root" --platform=nosuch run --bundle "$b" tx >/dev/null 2>&1; then
  fail "an unknown --platform ran"
fi
[ -e "$root/tx" ] && fail "an unknown --platform left state behind"

# process.user (ids, groups, umask) and process.rlimits reach the first program.
set_args '["sh", "-c", "id -u; id -g; id -G; umask; ulimit -n; ulimit -Hn; grep ^NoNewPrivs /proc/self/status"]' \
  "c['process']['user'] = {'uid': 1000, 'gid': 100, 'additionalGids': [5, 7], 'umask': 63}
c['process']['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'soft': 321, 'hard': 654}]"
out=$(h run --bundle "$b" tu 2>&1 | tr '\n' ' ')
[ "$out" = "1000 100 100 5 7 0077 321 654 NoNewPrivs:	1 " ] || fail "process.user/rlimits: '$out'"
cp "$work/config.orig" "$b/config.json"

# A tmpfs mount where the bundle asks for one (mode and size honoured).
set_args '["sh", "-c", "echo data > /scratch/f && cat /scratch/f && stat -c %a /scratch && grep \" /scratch \" /proc/mounts | cut -d\" \" -f3"]' \
  "c['mounts'].append({'destination': '/scratch', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['mode=750', 'size=1m']})"
out=$(h run --bundle "$b" tt 2>&1)
[ "$out" = "data
750
tmpfs" ] || fail "tmpfs mount: '$out'"
cp "$work/config.orig" "$b/config.json"

# linux.maskedPaths (a file shows /dev/null, a directory an empty tmpfs; a missing path is
# skipped), readonlyPaths, root.readonly (the default spec's: true) and sysctl.
mkdir -p "$b/rootfs/secret"
echo hidden >"$b/rootfs/secret/f"
echo hidden >"$b/rootfs/etc/shadow"
set_args '["sh", "-c", "cat /etc/shadow; ls /secret; (echo x >/proc/sys/kernel/hostname) 2>/dev/null || echo ro-sys; (echo x >/newfile) 2>/dev/null || echo ro-root; echo w >/tmp/w && cat /tmp/w; cat /proc/sys/kernel/domainname"]' \
  "c['linux']['maskedPaths'] = ['/etc/shadow', '/secret', '/no/such/path']
c['linux']['readonlyPaths'] = ['/proc/sys']
c['linux']['sysctl'] = {'kernel.domainname': 'example.org', 'net.ipv4.ip_unprivileged_port_start': '0'}"
out=$(h run --bundle "$b" tm 2>&1)
[ "$out" = "ro-sys
ro-root
w
example.org" ] || fail "masked and read-only paths, sysctl: '$out'"
set_args '["sh", "-c", "(echo x >/newfile) && cat /newfile"]' "c['root']['readonly'] = False"
out=$(h run --bundle "$b" tw 2>&1)
[ "$out" = x ] || fail "a writable root: '$out'"
cp "$work/config.orig" "$b/config.json"

# create, state, start, kill, delete.
set_args '["sleep", "100"]'
h create --bundle "$b" --pid-file "$work/pid" t1
pid=$(cat "$work/pid")
kill -0 "$pid" || fail "the pid file names no process"
h state t1 | grep -q '"status": "created"' || fail "state after create: $(h state t1)"
h state t1 | grep -q "\"pid\": $pid" || fail "state does not give the pid file's pid"
h state t1 | grep -q "\"bundle\": \"$b\"" || fail "state does not give the bundle"
h create --bundle "$b" t1 2>"$work/err" && fail "a second create of t1 worked"
grep -q "already exists" "$work/err" || fail "duplicate id: $(cat "$work/err")"
h start t1
h state t1 | grep -q '"status": "running"' || fail "state after start: $(h state t1)"
h start t1 2>/dev/null && fail "a second start worked"
h list | grep -q '^t1 .* running' || fail "list: $(h list)"
h list --format json | grep -q '"id":"t1"' || fail "list --format json: $(h list --format json)"
h delete t1 2>"$work/err" && fail "delete of a running container worked without --force"
grep -q "not stopped" "$work/err" || fail "delete running: $(cat "$work/err")"
# exec: output, status, the sandbox's processes, cwd/env/user flags, a process.json, a missing
# program, detached with a pid file.
out=$(h exec t1 echo exec-out)
[ "$out" = exec-out ] || fail "exec echo printed '$out'"
set +e
h exec t1 sh -c 'exit 4'
rc=$?
set -e
[ "$rc" = 4 ] || fail "exec exit status $rc, want 4"
h exec t1 ps -o pid,comm,args | grep -q '^ *1 sleep *sleep 100' || fail "exec ps: $(h exec t1 ps)"
out=$(h exec --cwd /tmp --env HELLO=there --user 1000:1000 t1 sh -c 'echo $(pwd) $HELLO $(id -u):$(id -g)')
[ "$out" = "/tmp there 1000:1000" ] || fail "exec --cwd --env --user printed '$out'"
cat >"$work/process.json" <<'JSON'
{"args": ["sh", "-c", "echo $X from $(pwd)"], "env": ["X=process.json", "PATH=/bin"],
 "cwd": "/etc", "user": {"uid": 0, "gid": 0}}
JSON
out=$(h exec --process "$work/process.json" t1)
[ "$out" = "process.json from /etc" ] || fail "exec --process printed '$out'"
h exec t1 /no/such 2>"$work/err" && fail "exec of a missing program worked"
grep -q 'exec: "/no/such": No such file or directory' "$work/err" || fail "exec missing: $(cat "$work/err")"
h exec --detach --pid-file "$work/epid" t1 sh -c 'echo detached >/tmp/mark; sleep 0.5'
epid=$(cat "$work/epid")
[ -n "$epid" ] || fail "exec --detach wrote no pid file"
i=0
while kill -0 "$epid" 2>/dev/null; do i=$((i + 1)); [ $i -lt 100 ] || fail "exec'd process $epid never ended"; sleep 0.1; done
[ "$(h exec t1 cat /tmp/mark)" = detached ] || fail "the detached exec did not run"

# ps: the sandbox's processes (its own pids), as a table and as runc's JSON list.
h ps t1 | grep -q '^1 .* sleep$' || fail "ps: $(h ps t1)"
[ "$(h ps --format json t1)" = "[1]" ] || fail "ps --format json: $(h ps --format json t1)"

# The container's init ignores what it has no handler for, as a PID namespace's init does
# (runc's containers too): SIGTERM leaves sleep running; SIGKILL from outside does not.
h kill t1 TERM
sleep 0.3
h state t1 | grep -q '"status": "running"' || fail "SIGTERM stopped an init without a handler"
h kill t1 KILL
i=0
until h state t1 | grep -q '"status": "stopped"'; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "t1 never stopped after kill KILL"; sleep 0.1
done
h delete t1
[ -e "$root/t1" ] && fail "delete left the state directory"
# Gone, or a zombie its reaper (the fence's init here, the shim under containerd) collects.
if kill -0 "$pid" 2>/dev/null && ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null; then
  fail "the monitor $pid outlived delete"
fi
h state t1 2>/dev/null && fail "state of a deleted container worked"

# An init with a handler gets the signal: SIGTERM ends it with the status it chose.
set_args '["sh", "-c", "trap \"exit 5\" TERM; echo up; while :; do sleep 0.1; done"]'
h create --bundle "$b" --pid-file "$work/pid5" t5 >"$work/t5.out"
h start t5
i=0
until grep -q up "$work/t5.out"; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "t5 did not start"; sleep 0.1
done
h kill t5 TERM
i=0
until h state t5 | grep -q '"status": "stopped"'; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "t5 ignored SIGTERM despite its handler"; sleep 0.1
done
h delete t5

# kill --all reaches every process: the children die, and the shell waiting for them (which,
# as init, ignores SIGTERM without a handler) ends with them.
set_args '["sh", "-c", "sleep 100 & sleep 100 & echo up; wait; echo reaped"]'
h create --bundle "$b" ta >"$work/ta.out"
h start ta
i=0
until grep -q up "$work/ta.out"; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "ta did not start"; sleep 0.1
done
h kill --all ta TERM
i=0
until h state ta | grep -q '"status": "stopped"'; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "kill --all TERM left ta running"; sleep 0.1
done
grep -q reaped "$work/ta.out" || fail "kill --all killed the init: $(cat "$work/ta.out")"
h delete ta
set_args '["sleep", "100"]'

# Cgroups: linux.resources.memory.limit reaches the host cgroup of the sandbox's processes
# (above the sandbox's own limit: the sentry's OOM killer acts first); pause freezes the
# sandbox (a counting loop stops), resume thaws it; delete removes the cgroups.
mkdir -p "$work/count"
set_args '["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /count/n; done"]' \
  "c['linux']['resources'] = {'memory': {'limit': 67108864}}
c['mounts'].append({'destination': '/count', 'type': 'bind', 'source': '$work/count', 'options': ['rbind']})"
h create --bundle "$b" t6
h start t6
rel=$(grep -o '"cgroup": "[^"]*"' "$root/t6/state.json" | cut -d'"' -f4)
if [ -d /sys/fs/cgroup/freezer ]; then
  cg=/sys/fs/cgroup/memory$(grep ':memory:' /proc/self/cgroup | cut -d: -f3)$rel
  [ "$(cat "$cg/memory.limit_in_bytes")" = $((67108864 + 67108864 / 16 + 67108864)) ] ||
    fail "the memory cgroup's limit: $(cat "$cg/memory.limit_in_bytes" 2>&1)"
else
  cg=/sys/fs/cgroup$(grep '^0::' /proc/self/cgroup | cut -d: -f3)$rel
fi
[ -d "$cg" ] || fail "no cgroup at $cg"
count() {  # the counter, read again while the loop has it truncated
  v=
  while [ -z "$v" ]; do v=$(cat "$work/count/n" 2>/dev/null); done
  echo "$v"
}
sleep 0.5
# events --stats: the cgroup's figures (the limit as written, some memory and tasks in use).
h events --stats t6 >"$work/ev"
grep -q '"type":"stats","id":"t6"' "$work/ev" || fail "events --stats: $(cat "$work/ev")"
grep -q "\"limit\":$((67108864 + 67108864 / 16 + 67108864))" "$work/ev" ||
  [ ! -d /sys/fs/cgroup/freezer ] || fail "events --stats memory limit: $(cat "$work/ev")"
grep -q '"current":[1-9]' "$work/ev" || fail "events --stats pids: $(cat "$work/ev")"
h pause t6
h state t6 | grep -q '"status": "paused"' || fail "state after pause: $(h state t6)"
n1=$(cat "$work/count/n"); sleep 0.5; n2=$(cat "$work/count/n")
[ "$n1" = "$n2" ] || fail "the paused container went on counting ($n1, then $n2)"
h pause t6 2>/dev/null && fail "a second pause worked"
h resume t6
h state t6 | grep -q '"status": "running"' || fail "state after resume: $(h state t6)"
sleep 0.5
n3=$(count)
[ "$n3" -gt "${n2:-0}" ] || fail "the resumed container did not count on ($n2, then $n3)"
h pause t6
h delete --force t6
[ -e "$cg" ] && fail "delete left the cgroup $cg"
set_args '["sleep", "100"]'

# A created container can be killed and deleted without --force (and cannot exec yet).
h create --bundle "$b" t2
h exec t2 true 2>/dev/null && fail "exec in a created container worked"
h kill t2 KILL
h delete t2
[ -e "$root/t2" ] && fail "delete of a killed created container left state"

# Malformed bundles: one line naming the field, nothing left behind.
bad() {  # bad WHAT EXPECTED-TEXT
  h create --bundle "$b" tbad 2>"$work/err" && fail "$1: create worked"
  grep -q "$2" "$work/err" || fail "$1: error '$(cat "$work/err")' lacks '$2'"
  [ -e "$root/tbad" ] && fail "$1: the state directory was left"
  [ -z "$(find /sys/fs/cgroup -name tbad -type d 2>/dev/null)" ] || fail "$1: a cgroup was left"
  cp "$work/config.orig" "$b/config.json"
}
echo '{"ociVersion": ' >"$b/config.json"
bad "bad JSON" "config.json: not valid JSON"
set_args '[]'
bad "empty args" "process.args: must not be empty"
set_args '["true"]' 'c["root"]["path"] = "nowhere"'
bad "missing root" "root.path .*nowhere: not a directory"
set_args '["true"]' 'c["mounts"].append({"destination": "/m", "type": "nfs", "source": "x"})'
bad "unknown mount type" "unsupported mount type 'nfs'"
set_args '["true"]' 'del c["root"]'
bad "no root" "root: is missing"
set_args '["/no/such/program"]'
bad "missing program" 'exec: "/no/such/program": No such file or directory'
set_args '["true"]' "c['linux']['sysctl'] = {'kernel.shmmax': '1'}"
bad "unknown sysctl" "linux.sysctl: kernel.shmmax is not a sysctl"
set_args '["nosuchprogram"]'
bad "program not in PATH" 'exec: "nosuchprogram": executable file not found in \$PATH'

# Hooks run on the host with the state on stdin: createRuntime at create, startContainer and
# poststart at start, poststop at delete. One that fails (or outlives its timeout) at create
# undoes the create, with one line naming it.
set_args '["sleep", "100"]' "c['hooks'] = {
  'createRuntime': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $work/h.create']}],
  'startContainer': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $work/h.start']}],
  'poststart': [{'path': '/bin/sh', 'args': ['sh', '-c', 'echo \$HOOKVAR > $work/h.poststart'],
                 'env': ['HOOKVAR=from-env']}],
  'poststop': [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $work/h.poststop']}]}"
h create --bundle "$b" th
grep -q '"id":"th"' "$work/h.create" && grep -q '"status":"created"' "$work/h.create" ||
  fail "createRuntime hook's stdin: $(cat "$work/h.create" 2>&1)"
[ -e "$work/h.start" ] && fail "startContainer ran at create"
h start th
grep -q '"status":"created"' "$work/h.start" || fail "startContainer's stdin: $(cat "$work/h.start" 2>&1)"
[ "$(cat "$work/h.poststart")" = from-env ] || fail "poststart hook (env): $(cat "$work/h.poststart" 2>&1)"
h delete --force th
grep -q '"status":"stopped"' "$work/h.poststop" || fail "poststop's stdin: $(cat "$work/h.poststop" 2>&1)"
cp "$work/config.orig" "$b/config.json"
set_args '["true"]' "c['hooks'] = {'createContainer': [{'path': '/bin/false'}]}"
bad "failing hook" "createContainer hook /bin/false failed: exit status 1"
set_args '["true"]' "c['hooks'] = {'createRuntime': [{'path': '/bin/sleep', 'args': ['sleep', '5'], 'timeout': 1}]}"
bad "slow hook" "createRuntime hook /bin/sleep timed out after 1 s"

# 100 cycles: nothing left (processes in this fence, mounts, state directories).
before=$(ps -e --no-headers | wc -l)
mounts_before=$(wc -l </proc/mounts)
set_args '["sleep", "100"]'
n=0
while [ $n -lt 100 ]; do
  h create --bundle "$b" "c$n"
  h start "c$n"
  h kill "c$n" KILL
  h delete --force "c$n"
  n=$((n + 1))
done
sleep 0.5
after=$(ps -e --no-headers | wc -l)
[ "$after" -le "$before" ] || fail "processes: $before before 100 cycles, $after after: $(ps -ef)"
[ "$(wc -l </proc/mounts)" = "$mounts_before" ] || fail "mounts changed over 100 cycles"
[ -z "$(ls "$root")" ] || fail "state left after 100 cycles: $(ls "$root")"
[ -z "$(find /sys/fs/cgroup -path '*/husk/*' -type d 2>/dev/null)" ] ||
  fail "cgroups left after 100 cycles: $(find /sys/fs/cgroup -path '*/husk/*' -type d)"
echo PASS
