#!/bin/sh
# The file-heavy programs of issue 13, each printing what a user would look at. programs.sh
# runs this natively and inside husk and compares the two outputs line by line.
#
#   scenarios.sh WORKDIR    (an empty directory, removed by the caller)
set -u
w=$1
cd "$w" || exit 1
py=/usr/bin/python3

echo "== sqlite3 WAL, 10,000 rows"
sqlite3 db.sqlite <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO t(v) SELECT 'row' || i FROM n;
COMMIT;
SELECT count(*), sum(id), max(v) FROM t;
SQL
echo "== python3 sqlite3"
$py - <<'PY'
import sqlite3
c = sqlite3.connect("py.sqlite")
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
c.executemany("INSERT INTO t(v) VALUES (?)", [("r%d" % i,) for i in range(10000)])
c.commit()
print(c.execute("SELECT count(*), sum(id) FROM t").fetchone())
PY
echo "== flock"
flock "$w/l" true && echo "flock ok"
flock -n "$w/l" -c 'flock -n '"$w/l"' true || echo "held while locked"'
echo "== ln"
echo data >a && ln a b && stat -c %h a b
echo "== mkfifo"
mkfifo p
(echo "through the fifo" >p) &
cat p
wait
echo "== cp -a with xattrs"
mkdir -p tree/sub && echo one >tree/f && echo two >tree/sub/g && chmod 640 tree/f
$py -c 'import os; os.setxattr("tree/f", "user.color", b"blue"); os.setxattr("tree/sub", "user.k", b"v")'
cp -a tree copy
$py -c 'import os
for p in ("copy/f", "copy/sub"):
    print(p, sorted((n, os.getxattr(p, n)) for n in os.listxattr(p)))'
stat -c '%n %a %s' copy/f copy/sub/g
echo "== tar"
tar -czf doc.tgz -C /usr/share doc 2>/dev/null
tar -tzf doc.tgz | sort | md5sum
tar -tzf doc.tgz | wc -l
echo "== git"
mkdir repo && cd repo
git init -q && git config user.email t@t && git config user.name t
echo hello >h && mkdir d && echo x >d/x
git add -A && git commit -qm first && echo more >>h && git commit -qam second
git log --format=%s && git ls-files && git status --porcelain
cd "$w"
echo "== gcc"
printf '#include <stdio.h>\nint main(void) { printf("%%d\\n", 6 * 7); return 0; }\n' >m.c
gcc -O2 -o m m.c && ./m
echo "== find"
find /usr -name '*.h' 2>/dev/null | wc -l
echo "== compileall"
cp -r /usr/lib/python3.11/json pkg
$py -m compileall -q pkg >/dev/null && find pkg -name '*.pyc' | wc -l
