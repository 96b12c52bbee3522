#!/bin/sh
# Multi-threaded programs give what they give natively (issue 12): Python's threading,
# ThreadPoolExecutor, subprocess and os.fork, and xz and zstd compressing with two threads.
#
#   runtimes.sh HUSK
set -eu
husk=$1
d=$(mktemp -d /tmp/husk-runtimes.XXXXXX)
trap 'rm -rf "$d"' EXIT
fail=0
check() {  # check NAME NATIVE_OUTPUT HUSK_OUTPUT
  if [ "$2" = "$3" ]; then
    echo "$1: same output"
  else
    echo "FAIL: $1 differs: native [$2], husk [$3]"
    fail=1
  fi
}
cat >"$d/threads.py" <<'PY'
import concurrent.futures, os, subprocess, threading
lock = threading.Lock()
total = [0]
def work():
    for _ in range(2000):
        with lock:
            total[0] += 1
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("total", total[0])
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print("squares", sum(ex.map(lambda x: x * x, range(200))))
print("subprocess", subprocess.run(["/bin/echo", "hi"], capture_output=True).stdout)
pid = os.fork()
if pid == 0:
    os._exit(7)
print("child", os.waitpid(pid, 0)[1] >> 8)
PY
if command -v python3 >/dev/null; then
  check python3-threads "$(python3 "$d/threads.py")" "$(cd "$d" && "$husk" do python3 "$d/threads.py")"
else
  echo "FAIL: python3 is missing (tools/setup-debian.sh installs it)"
  fail=1
fi
# Compressible but not trivial input, made the same way each run.
seq 1 400000 | sed 's/$/ husk threads/' >"$d/input"
for tool in "xz -T2" "zstd -T2 -q"; do
  name=${tool%% *}
  if ! command -v "$name" >/dev/null; then
    echo "FAIL: $name is missing (tools/setup-debian.sh installs it)"
    fail=1
    continue
  fi
  # shellcheck disable=SC2086 # the tool's flags split on purpose
  native=$($tool -c <"$d/input" | md5sum)
  # shellcheck disable=SC2086
  inside=$(cd "$d" && "$husk" do /bin/sh -c "$tool -c <'$d/input' | md5sum")
  check "$name" "$native" "$inside"
done
[ "$fail" = 0 ] && echo PASS
exit "$fail"
