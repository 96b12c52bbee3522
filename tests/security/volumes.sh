#!/bin/sh
# husk do --rootfs and --volume HOST:SANDBOX[:ro] (issue 13, roots and volumes): the sandbox
# sees the given root instead of the host's, a volume's files at its path and nothing of the
# host beyond them; writes stay in sandbox memory (a read-only volume refuses them) except in a
# read-write volume, where they reach the host directory and nothing else; symlinks planted in a
# volume resolve inside the sandbox's root, also while a directory of the volume is swapped for
# a symlink over and over during the walks, and writing through them never writes outside.
#
#   volumes.sh HUSK MAP_WRITE
set -eu
husk=$1
map_write=$2
fail() { echo "FAIL: $*"; exit 1; }
busybox=$(command -v busybox) || fail "busybox (busybox-static) is not installed"

work=$(mktemp -d)
swapper=
cleanup() {
  [ -n "$swapper" ] && kill "$swapper" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A small root: busybox, a marker, an /etc without the host's files.
root=$work/root
mkdir -p "$root/bin" "$root/etc"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
echo "the small root" >"$root/etc/marker"
# A volume with a file, planted symlinks, and a directory that will be swapped.
vol=$work/vol
mkdir -p "$vol/d"
echo "volume data" >"$vol/file"
ln -s /etc/marker "$vol/abs"
ln -s ../../../../etc "$vol/up"
ln -s /etc/shadow "$vol/shadow"
# Outside every root the sandbox has: what an escape would read.
echo "host secret" >"$work/secret"
ln -s "$work" "$vol/host-work"

bb() { "$husk" do --rootfs "$root" "$@"; }

out=$(bb -- /bin/busybox cat /etc/marker)
[ "$out" = "the small root" ] || fail "--rootfs: /etc/marker is '$out'"
bb -- /bin/busybox test -e /etc/os-release && fail "--rootfs: the host's /etc/os-release is visible"
out=$(bb -- /bin/busybox pwd)
[ "$out" = / ] || fail "--rootfs starts in /, not '$out'"
out=$(bb --cwd /etc -- /bin/busybox cat marker)
[ "$out" = "the small root" ] || fail "--cwd /etc: got '$out'"
# The sandbox's own mounts are there; writes land in memory, never in the root.
bb -- /bin/sh -c 'test -d /proc/self && test -d /dev && test -d /tmp' || fail "--rootfs: /proc, /dev or /tmp missing"
out=$(bb -- /bin/sh -c 'echo written >/etc/new && cat /etc/new && rm /etc/marker && echo removed')
[ "$out" = "written
removed" ] || fail "--rootfs: writes inside: '$out'"
[ -e "$root/etc/new" ] && fail "--rootfs: a write reached the host"
[ -e "$root/etc/marker" ] || fail "--rootfs: a removal reached the host"

v="--volume=$vol:/data:ro"
out=$(bb "$v" -- /bin/busybox cat /data/file)
[ "$out" = "volume data" ] || fail "--volume: /data/file is '$out'"
out=$("$husk" do "$v" -- /bin/cat /data/file)
[ "$out" = "volume data" ] || fail "--volume over the host's root: /data/file is '$out'"
out=$(bb --volume "$vol:/mnt/deep/inside:ro" -- /bin/busybox cat /mnt/deep/inside/file)
[ "$out" = "volume data" ] || fail "--volume at a path made for it: '$out'"
out=$(bb "$v" -- /bin/sh -c '(echo x >/data/new) 2>&1 || echo refused')
case $out in *"Read-only file system"*refused | *refused) ;; *) fail "--volume :ro took a write: '$out'" ;; esac
[ -e "$vol/new" ] && fail "--volume :ro: a file reached the host"
# Planted symlinks resolve in the sandbox's root.
out=$(bb "$v" -- /bin/busybox cat /data/abs)
[ "$out" = "the small root" ] || fail "absolute symlink in a volume: '$out'"
out=$(bb "$v" -- /bin/busybox cat /data/up/marker)
[ "$out" = "the small root" ] || fail "../../../../etc in a volume: '$out'"
bb "$v" -- /bin/busybox cat /data/shadow 2>/dev/null && fail "a volume's link to /etc/shadow was followed on the host"
bb "$v" -- /bin/busybox cat /data/host-work/secret 2>/dev/null && fail "a volume's link to a host directory was followed"

# The swap race: the host turns /data/d into a symlink to the directory holding the secret and
# back, as fast as it can, while the sandbox reads /data/d/secret again and again.
(
  set +e
  while :; do
    mv -T "$vol/d" "$vol/d.away"
    ln -s "$work" "$vol/d"
    rm -f "$vol/d"
    mv -T "$vol/d.away" "$vol/d"
  done
) 2>/dev/null &
swapper=$!
out=$(bb "$v" -- /bin/sh -c 'i=0; while [ $i -lt 3000 ]; do cat /data/d/secret 2>/dev/null; i=$((i+1)); done; echo done')
kill "$swapper" || fail "the swapper stopped before the end"
wait "$swapper" 2>/dev/null || true
swapper=
case $out in *secret*) fail "the swap race read the host's secret" ;; esac
[ "$(echo "$out" | tail -n 1)" = done ] || fail "the swap-race loop did not finish: '$out'"

# A read-write volume: the sandbox's changes reach the host directory, and only it.
rw=$work/rw
mkdir -p "$rw/sub"
echo "old" >"$rw/sub/f"
ln -s /etc "$rw/etc-link"
ln -s "$work" "$rw/host-work"
bb --volume "$rw:/data" -- /bin/sh -c '
  set -e
  echo new >/data/created
  echo more >>/data/sub/f
  mkdir /data/dir
  mv /data/created /data/dir/moved
  ln /data/dir/moved /data/hard
  ln -s moved /data/dir/sym
  chmod 600 /data/dir/moved
  rm /data/hard
  echo over >/data/etc-link/marker-via-link 2>/dev/null || true
  echo over >/data/host-work/secret 2>/dev/null || true
  echo over >/data/host-work/planted 2>/dev/null || true
  echo sandboxed >/etc/marker
' || fail "--volume rw: the writes inside failed"
[ "$(cat "$rw/dir/moved")" = new ] || fail "--volume rw: a created and renamed file did not reach the host"
[ "$(cat "$rw/sub/f")" = "old
more" ] || fail "--volume rw: an append did not reach the host: '$(cat "$rw/sub/f")'"
[ "$(stat -c %a "$rw/dir/moved")" = 600 ] || fail "--volume rw: chmod did not reach the host"
[ "$(readlink "$rw/dir/sym")" = moved ] || fail "--volume rw: the symlink did not reach the host"
[ -e "$rw/hard" ] && fail "--volume rw: an unlink did not reach the host"
[ "$(cat "$work/secret")" = "host secret" ] || fail "--volume rw: a write through a planted link reached the host"
[ -e "$work/planted" ] && fail "--volume rw: a planted link let a new file reach the host"
[ -e /etc/marker-via-link ] && fail "--volume rw: a link to /etc let a write reach the host's /etc"
[ "$(cat "$root/etc/marker")" = "the small root" ] || fail "--volume rw: a write outside the volume reached the host"
# write(2) and a MAP_SHARED mapping see each other's bytes, and msync puts them in the host file.
"$husk" do --volume "$rw:/data" -- "$map_write" /data/mapped >"$work/mapw.out" 2>&1 ||
  fail "--volume rw: write/mmap coherence: $(cat "$work/mapw.out")"
[ "$(head -c 7 "$rw/mapped")" = written ] || fail "--volume rw: the host file lacks the write(2) bytes"
[ "$(dd if="$rw/mapped" bs=4096 skip=1 count=1 2>/dev/null | head -c 6)" = mapped ] ||
  fail "--volume rw: the host file lacks what the mapping stored"

# Bad flags are refused with a reason, before any sandbox starts.
err=$("$husk" do --volume "$vol:/data:rx" -- /bin/true 2>&1) && fail "a bad volume mode was accepted"
echo "$err" | grep -q "ro or rw" || fail "no reason for refusing a bad volume mode: '$err'"
err=$("$husk" do --volume "$work/missing:/data:ro" -- /bin/true 2>&1) && fail "a missing volume was accepted"
echo "$err" | grep -q "No such file" || fail "no reason for a missing volume: '$err'"
err=$("$husk" do --volume "$vol:data:ro" -- /bin/true 2>&1) && fail "a relative sandbox path was accepted"
err=$("$husk" do --rootfs "$work/secret" -- /bin/true 2>&1) && fail "a file as --rootfs was accepted"
echo "$err" | grep -q "not a directory" || fail "no reason for a file as --rootfs: '$err'"
echo PASS
