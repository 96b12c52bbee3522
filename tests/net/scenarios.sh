#!/bin/sh
# Issue 15's unix socket programs, run in DIR (a fresh directory); the output must not depend on
# where they run (programs.sh runs them natively and inside husk do and compares).
#
#   scenarios.sh DIR
set -eu
d=$1
cd "$d"

echo "== asyncio: a unix-socket echo server, 50 concurrent clients"
cat >echo.py <<'PY'
import asyncio, os
path = os.path.join(os.getcwd(), "echo.sock")
async def handle(r, w):
    while data := await r.readline():
        w.write(data.upper())
        await w.drain()
    w.close()
async def client(i):
    r, w = await asyncio.open_unix_connection(path)
    got = []
    for j in range(20):
        w.write(f"client {i} line {j}\n".encode())
        await w.drain()
        got.append((await r.readline()).decode().strip())
    w.close()
    await w.wait_closed()
    return got
async def main():
    server = await asyncio.start_unix_server(handle, path)
    results = await asyncio.gather(*(client(i) for i in range(50)))
    server.close()
    await server.wait_closed()
    print(len(results), "clients,", sum(map(len, results)), "replies")
    print(results[0][0], "|", results[49][19])
    print("all in order:", all(r == [f"CLIENT {i} LINE {j}" for j in range(20)] for i, r in enumerate(results)))
asyncio.run(main())
PY
python3 echo.py

echo "== multiprocessing: Pipe and Pool"
cat >mp.py <<'PY'
import multiprocessing as mp
def square(x):
    return x * x
def child(conn):
    conn.send(["from the child", conn.recv() * 2])
    conn.close()
if __name__ == "__main__":
    a, b = mp.Pipe()
    p = mp.Process(target=child, args=(b,))
    p.start()
    a.send(21)
    print(a.recv())
    p.join()
    print("exit code", p.exitcode)
    with mp.Pool(4) as pool:
        print(sum(pool.map(square, range(1000))))
PY
python3 mp.py

echo "== socat: a relay between two unix sockets"
socat UNIX-LISTEN:back.sock,fork EXEC:'tr a-z A-Z' &
back=$!
socat UNIX-LISTEN:front.sock,fork UNIX-CONNECT:back.sock &
front=$!
for _ in $(seq 100); do [ -S front.sock ] && [ -S back.sock ] && break; sleep 0.05; done
echo "hello through two sockets" | socat -t 5 - UNIX-CONNECT:front.sock
echo "and again" | socat -t 5 - UNIX-CONNECT:front.sock
kill "$front" "$back"
wait "$front" "$back" 2>/dev/null || true

echo "== SCM_RIGHTS: a file descriptor passed between processes"
cat >passfd.c <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return perror("socketpair"), 1;
  pid_t pid = fork();
  if (pid == 0) {
    // The child opens a pipe, writes into it, and sends its read end.
    int p[2];
    if (pipe(p) != 0) return 2;
    const char msg[] = "bytes that came through a passed descriptor";
    if (write(p[1], msg, sizeof(msg) - 1) != (ssize_t)(sizeof(msg) - 1)) return 3;
    close(p[1]);
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    char control[CMSG_SPACE(sizeof(int))] = {0};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    if (sendmsg(sv[1], &mh, 0) != 1) return 4;
    close(p[0]);
    return 0;
  }
  char byte;
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  if (recvmsg(sv[0], &mh, 0) != 1) return perror("recvmsg"), 1;
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  if (c == NULL || c->cmsg_type != SCM_RIGHTS) return puts("no descriptor came"), 1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  int status;
  waitpid(pid, &status, 0);
  char buf[128] = {0};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  printf("child exit %d; read %zd: %s\n", WEXITSTATUS(status), n, buf);
  return 0;
}
C
gcc -O1 -o passfd passfd.c
./passfd

echo "== loopback: python3 -m http.server fetched with curl, over 127.0.0.1 and ::1"
mkdir www
echo "a page served inside" >www/index.html
python3 -m http.server 8123 --bind :: --directory www >http.log 2>&1 &
web=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8123/ && break; sleep 0.1; done
curl -s http://127.0.0.1:8123/index.html
curl -s -g "http://[::1]:8123/index.html"
curl -s -o /dev/null -w "missing: %{http_code}\n" http://127.0.0.1:8123/missing
kill "$web"
wait "$web" 2>/dev/null || true

echo "== loopback: redis-server with redis-benchmark -q -n 10000"
redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --dir "$d" >redis.log 2>&1 &
redis=$!
for _ in $(seq 100); do redis-cli -p 6390 ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p 6390 set greeting hello
redis-cli -p 6390 get greeting
redis-benchmark -p 6390 -q -n 10000 -t set,get,incr,lpush,lpop 2>&1 | tr '\r' '\n' |
  grep "requests per second" | sed 's/:.*//'
redis-cli -p 6390 dbsize
redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true
wait "$redis" 2>/dev/null || true

echo "== loopback: nginx serving a static file"
mkdir -p ngx/www ngx/logs
echo "a static file from nginx" >ngx/www/index.html
cat >ngx/nginx.conf <<CONF
daemon off;
worker_processes 2;
pid $d/ngx/nginx.pid;
error_log $d/ngx/logs/error.log;
events { worker_connections 64; }
http {
  access_log $d/ngx/logs/access.log;
  client_body_temp_path $d/ngx/body; proxy_temp_path $d/ngx/proxy;
  fastcgi_temp_path $d/ngx/fcgi; uwsgi_temp_path $d/ngx/uwsgi; scgi_temp_path $d/ngx/scgi;
  server { listen 127.0.0.1:8180; listen [::1]:8180; root $d/ngx/www; }
}
CONF
chmod -R a+rX "$d"
nginx -c "$d/ngx/nginx.conf" -p "$d/ngx" &
ngx=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8180/ && break; sleep 0.1; done
for i in 1 2 3; do curl -s http://127.0.0.1:8180/; done
curl -s -g "http://[::1]:8180/index.html"
curl -s -o /dev/null -w "missing: %{http_code}\n" http://127.0.0.1:8180/missing
kill "$ngx"
wait "$ngx" 2>/dev/null || true
wc -l <ngx/logs/access.log
