#!/bin/sh
# inotify for changes the host makes to a read-write volume (issue 13): host_watch watches a
# directory and a file in it, makes a change of its own, then hears a host process append,
# create, rename, make and remove a directory, change times and remove the watched file. Run
# natively on a host directory and in husk on a --volume of one: the events (and what stat says
# afterwards) must be the same, the sandbox's own change heard once.
#
#   host_watch.sh HUSK HOST_WATCH
set -eu
husk=$1
prog=$2
fail() { echo "FAIL: $*"; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The host's side: what another process does to the directory, once the watcher is ready.
changes() {
  d=$1
  i=0
  until grep -q '^ready' "$2"; do
    i=$((i + 1))
    [ $i -lt 600 ] || fail "the watcher never got ready: $(cat "$2")"
    sleep 0.1
  done
  echo more >>"$d/f"
  echo new >"$d/a"
  mv "$d/a" "$d/b"
  mkdir "$d/sub"
  rmdir "$d/sub"
  touch -d @1000000000 "$d/b"
  rm "$d/f"
  : >"$d/done"
}

run() {  # run NAME CMD...: the watcher's output in $work/NAME.out
  name=$1
  dir=$2
  shift 2
  out=$work/$name.out
  : >"$out"
  "$@" >"$out" 2>&1 &
  pid=$!
  changes "$dir" "$out"
  wait "$pid" || fail "$name: the watcher failed: $(cat "$out")"
  pid=
}

mkdir "$work/native" "$work/vol"
echo f >"$work/native/f"
echo f >"$work/vol/f"
run native "$work/native" "$prog" "$work/native"
run husk "$work/vol" "$husk" do --volume "$work/vol:/data" -- "$prog" /data

if ! diff -u "$work/native.out" "$work/husk.out"; then
  fail "the events in husk differ from native (above)"
fi
# Not vacuous: the host's changes are there, and the sandbox's own write once.
grep -q '^dir CREATE b\|^dir MOVED_TO b' "$work/husk.out" || fail "no rename heard: $(cat "$work/husk.out")"
[ "$(grep -c '^dir CREATE own' "$work/husk.out")" = 1 ] || fail "the sandbox's own create is not heard once"
grep -q '^f DELETE_SELF' "$work/husk.out" || fail "the watched file's removal is not heard"
grep -q '^stat f: No such file' "$work/husk.out" || fail "a removed file is still seen"
cat "$work/husk.out"
echo "PASS: $(wc -l <"$work/husk.out") lines identical natively and in husk"
