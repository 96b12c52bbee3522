#!/bin/sh
# The sandbox's own clock (issue 12): inside a fresh `husk do`, CLOCK_MONOTONIC, CLOCK_BOOTTIME
# and CLOCK_MONOTONIC_RAW count from the sandbox's start plus husk's base of 100 s, whichever
# way they are read, and so do /proc/uptime, sysinfo and the start time of the first process:
# nothing shows the host's uptime.
#
#   sandbox_clock.sh HUSK CLOCK_PROBE
set -eu
husk=$1
probe=$2
fail() { echo "FAIL: $*"; exit 1; }

echo "host: $(cut -d' ' -f1 /proc/uptime) s of uptime"
out=$("$husk" do -- "$probe")
echo "$out"
echo "$out" | awk '
  { seen[$1] = 1 }
  # The base is 100 s; a sandbox that took a minute to get here is broken anyway.
  $2 < 100 || $2 >= 160 { print "FAIL: " $1 " is " $2 " s, not within [100, 160)"; bad = 1 }
  END {
    n = split("monotonic monotonic_syscall boottime boottime_syscall monotonic_raw " \
              "monotonic_raw_syscall proc_uptime sysinfo_uptime starttime", want, " ")
    for (i = 1; i <= n; i++) if (!(want[i] in seen)) { print "FAIL: no " want[i]; bad = 1 }
    exit bad
  }' || fail "the sandbox's clocks do not start at its own start"
# Each reading is within a second of the others (they were taken one after another).
echo "$out" | awk 'NR == 1 { lo = $2; hi = $2 } { if ($2 < lo) lo = $2; if ($2 > hi) hi = $2 }
  END { exit (hi - lo > 1.5) }' || fail "the readings disagree by more than a second"
echo PASS
