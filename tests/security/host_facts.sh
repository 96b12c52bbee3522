#!/bin/sh
# What `husk do` lets through from the host (issue 11, finding 6): the environment is the
# caller's unless --clear-env, --env adds or copies variables, husk's own variables stay
# out; the stdio files show device and inode numbers of the sentry's own, not the host's.
#
#   host_facts.sh HUSK
set -eu
husk=$1
fail() { echo "FAIL: $*"; exit 1; }

env_out=$(HUSK_PROBE=from-host "$husk" do /usr/bin/env)
echo "$env_out" | grep -qx 'HUSK_PROBE=from-host' || fail "the caller's environment is passed in"
echo "$env_out" | grep -q '^HUSK_REEXEC=' && fail "husk's own variable leaked in"

env_out=$(HUSK_PROBE=from-host "$husk" do --clear-env --env A=1 --env=HUSK_PROBE -- /usr/bin/env)
[ "$env_out" = "A=1
HUSK_PROBE=from-host" ] || fail "--clear-env with --env gives exactly those: got '$env_out'"

f=$(mktemp)
trap 'rm -f "$f"' EXIT
echo data >"$f"
host=$(stat -L -c '%d %i' /dev/stdin <"$f")
inside=$("$husk" do /usr/bin/stat -L -c '%d %i' /dev/stdin <"$f")
echo "stdin seen natively: $host; inside husk: $inside"
[ -n "$inside" ] || fail "stat of stdin failed inside husk"
[ "$host" != "$inside" ] || fail "the host's device and inode numbers are visible"
inside_data=$("$husk" do /bin/cat <"$f")
[ "$inside_data" = data ] || fail "stdin is still read through"
echo PASS
