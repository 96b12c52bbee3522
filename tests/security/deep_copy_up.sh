#!/bin/sh
# Creating a file at the bottom of a lower-layer (host) directory chain thousands of levels
# deep copies every level up first; that must not recurse on the sentry's stack (issue 11,
# finding 1: it overflowed at about 10,000 levels).
#
#   deep_copy_up.sh HUSK DEEP_TREE DEPTH
set -eu
husk=$1 tool=$2 depth=$3
# On the host (not under /tmp, which the sandbox replaces), next to the test binaries.
root=$(mktemp -d "$(dirname "$tool")/deep.XXXXXX")
trap '"$tool" rmtree "$root" "$depth" 2>/dev/null; rm -rf "$root"' EXIT
"$tool" mkdir "$root" "$depth"
"$husk" do "$tool" create "$root" "$depth"
echo "created and removed a file $depth levels down through the overlay"
[ -z "$(find "$root" -name file)" ] || { echo "FAIL: the host tree was written"; exit 1; }
echo PASS
