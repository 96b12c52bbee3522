// husk_bench: micro-benchmarks run as an ordinary program, natively, inside
// `husk do` and inside `runsc do`, so the same binary measures all three.
// bench/run.sh drives it and prints the ratios.
//
//   husk_bench syscall N     N getppid() calls: the cost of one trapped syscall
//   husk_bench clock N       N clock_gettime(CLOCK_MONOTONIC) calls through glibc (the vDSO)
//   husk_bench open PATH N   N open+read(4 KiB)+close of PATH: the file path cost
//   husk_bench read PATH     read PATH whole in 64 KiB chunks: file throughput
//   husk_bench fault N       map N pages, touch each once, unmap: page-fault cost
//   husk_bench fork N MIB    N fork+exit+wait with MIB MiB of touched heap
//   husk_bench forkexec N    N fork+exec(/bin/true)+wait
//   husk_bench thread N      N pthread_create+pthread_join
//   husk_bench futex N       N futex wake-ups each way between two threads (ping-pong)
//   husk_bench stat PATH N   N stat() of PATH: a path lookup the sandbox has seen before
//   husk_bench openclose PATH N   N open+close of PATH
//   husk_bench readdir DIR N N listings of DIR (opendir, readdir to the end, closedir)
//   husk_bench write PATH MIB  write MIB MiB to PATH (created) in 64 KiB chunks, then fsync
//   husk_bench run N CMD...  N runs of CMD (fork, execvp, wait; output to /dev/null)
//   husk_bench unixrtt N     N one-byte round trips over a unix stream socketpair (a child echoes)
//   husk_bench unixbw MIB    MIB MiB through a unix stream socketpair to a child: throughput
//   husk_bench tcprtt N      N one-byte round trips over a TCP connection on 127.0.0.1
//   husk_bench tcpbw MIB     MIB MiB over a TCP connection on 127.0.0.1: throughput
//   husk_bench tcpconn N     N connect+accept+close on 127.0.0.1: the connection rate
//
// Prints one line, "<name> <value> <unit>", where value is ns per operation
// (or MiB/s for read).
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

[[noreturn]] void Fail(const char* what) {
  fprintf(stderr, "husk_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

long Count(const char* s) {
  char* end = nullptr;
  long n = strtol(s, &end, 10);
  if (end == s || *end != '\0' || n <= 0) {
    fprintf(stderr, "husk_bench: bad count '%s'\n", s);
    exit(2);
  }
  return n;
}

int Syscall(long n) {
  double t0 = NowNs();
  for (long i = 0; i < n; i++) syscall(SYS_getppid);
  double t1 = NowNs();
  printf("syscall %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int Clock(long n) {
  timespec ts{};
  // Warm up for 50 ms first: a clock that calibrates itself (husk's) has done so.
  for (double end = NowNs() + 50e6; NowNs() < end;) {
  }
  double t0 = NowNs();
  for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
  double t1 = NowNs();
  printf("clock %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int Open(const char* path, long n) {
  char buf[4096];
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail(path);
    if (read(fd, buf, sizeof(buf)) < 0) Fail("read");
    close(fd);
  }
  double t1 = NowNs();
  printf("open %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int Read(const char* path) {
  std::vector<char> buf(64 * 1024);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path);
  double t0 = NowNs();
  size_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf.data(), buf.size());
    if (r < 0) Fail("read");
    if (r == 0) break;
    total += static_cast<size_t>(r);
  }
  double t1 = NowNs();
  close(fd);
  double mib = static_cast<double>(total) / (1024.0 * 1024.0);
  printf("read %.1f MiB/s\n", mib / ((t1 - t0) / 1e9));
  return 0;
}

int Stat(const char* path, long n) {
  struct stat st {};
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    if (stat(path, &st) != 0) Fail(path);
  }
  double t1 = NowNs();
  printf("stat %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int OpenClose(const char* path, long n) {
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail(path);
    close(fd);
  }
  double t1 = NowNs();
  printf("openclose %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int ReadDir(const char* path, long n) {
  size_t entries = 0;
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    DIR* d = opendir(path);
    if (d == nullptr) Fail(path);
    while (readdir(d) != nullptr) entries++;
    closedir(d);
  }
  double t1 = NowNs();
  if (entries == 0) Fail("readdir: no entries");
  printf("readdir %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int Write(const char* path, long mib) {
  std::vector<char> buf(64 * 1024, 'w');
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Fail(path);
  const size_t total = static_cast<size_t>(mib) << 20;
  double t0 = NowNs();
  for (size_t done = 0; done < total;) {
    ssize_t w = write(fd, buf.data(), buf.size());
    if (w <= 0) Fail("write");
    done += static_cast<size_t>(w);
  }
  if (fsync(fd) != 0) Fail("fsync");
  double t1 = NowNs();
  close(fd);
  printf("write %.1f MiB/s\n", static_cast<double>(mib) / ((t1 - t0) / 1e9));
  return 0;
}

int Run(long n, char** argv) {
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) Fail("fork");
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, 1);
      execvp(argv[0], argv);
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || status != 0) Fail(argv[0]);
  }
  double t1 = NowNs();
  printf("run %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int Fault(long pages) {
  size_t len = static_cast<size_t>(pages) * 4096;
  double t0 = NowNs();
  auto* p = static_cast<volatile char*>(
      mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) Fail("mmap");
  for (size_t off = 0; off < len; off += 4096) p[off] = 1;
  munmap(const_cast<char*>(p), len);
  double t1 = NowNs();
  printf("fault %.1f ns/page\n", (t1 - t0) / static_cast<double>(pages));
  return 0;
}

int Fork(long n, long mib) {
  size_t len = static_cast<size_t>(mib) << 20;
  std::vector<char> heap(len);
  for (size_t off = 0; off < len; off += 4096) heap[off] = 1;
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) Fail("fork");
    if (pid == 0) _exit(0);
    if (waitpid(pid, nullptr, 0) != pid) Fail("waitpid");
    heap[static_cast<size_t>(i) * 4096 % len] = 2;  // the parent writes after each fork
  }
  double t1 = NowNs();
  printf("fork %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int ForkExec(long n) {
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) Fail("fork");
    if (pid == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || status != 0) Fail("waitpid");
  }
  double t1 = NowNs();
  printf("forkexec %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

void* Nothing(void*) { return nullptr; }

int Thread(long n) {
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Nothing, nullptr) != 0) Fail("pthread_create");
    pthread_join(t, nullptr);
  }
  double t1 = NowNs();
  printf("thread %.1f ns/op\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

// Two threads take turns on one word: each waits for its value, then
// stores the other's and wakes it.
struct PingPong {
  uint32_t word = 0;
  long rounds = 0;
};

void WaitFor(uint32_t* word, uint32_t want) {
  for (uint32_t v; (v = __atomic_load_n(word, __ATOMIC_ACQUIRE)) != want;) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, v, nullptr, nullptr, 0);
  }
}

void Hand(uint32_t* word, uint32_t to) {
  __atomic_store_n(word, to, __ATOMIC_RELEASE);
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void* Pong(void* arg) {
  auto* pp = static_cast<PingPong*>(arg);
  for (long i = 0; i < pp->rounds; i++) {
    WaitFor(&pp->word, 1);
    Hand(&pp->word, 0);
  }
  return nullptr;
}

int Futex(long n) {
  PingPong pp;
  pp.rounds = n;
  pthread_t t;
  if (pthread_create(&t, nullptr, Pong, &pp) != 0) Fail("pthread_create");
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    Hand(&pp.word, 1);
    WaitFor(&pp.word, 0);
  }
  double t1 = NowNs();
  pthread_join(t, nullptr);
  // Two wake-ups per round.
  printf("futex %.1f ns/op\n", (t1 - t0) / static_cast<double>(2 * n));
  return 0;
}

}  // namespace

// Two connected stream sockets: a socketpair, or a TCP connection over
// 127.0.0.1 (the listener closed once accepted).
void StreamPair(bool tcp, int* a, int* b) {
  if (!tcp) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) Fail("socketpair");
    *a = sv[0];
    *b = sv[1];
    return;
  }
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(l, 16) != 0 || getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Fail("listen on 127.0.0.1");
  }
  *a = socket(AF_INET, SOCK_STREAM, 0);
  if (*a < 0 || connect(*a, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Fail("connect to 127.0.0.1");
  }
  *b = accept(l, nullptr, nullptr);
  if (*b < 0) Fail("accept");
  close(l);
}

int RoundTrips(bool tcp, long n) {
  int a, b;
  StreamPair(tcp, &a, &b);
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    close(a);
    char c;
    while (read(b, &c, 1) == 1) {
      if (write(b, &c, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  close(b);
  char c = 'x';
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    if (write(a, &c, 1) != 1 || read(a, &c, 1) != 1) Fail("round trip");
  }
  double t1 = NowNs();
  close(a);
  waitpid(pid, nullptr, 0);
  printf("%s %.1f ns/rtt\n", tcp ? "tcprtt" : "unixrtt", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int Throughput(bool tcp, long mib) {
  int a, b;
  StreamPair(tcp, &a, &b);
  pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    close(a);
    std::vector<char> buf(65536);
    while (read(b, buf.data(), buf.size()) > 0) {
    }
    _exit(0);
  }
  close(b);
  std::vector<char> buf(65536, 'x');
  const long chunks = mib * 16;
  double t0 = NowNs();
  for (long i = 0; i < chunks; i++) {
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t w = write(a, buf.data() + done, buf.size() - done);
      if (w <= 0) Fail("write");
      done += static_cast<size_t>(w);
    }
  }
  close(a);
  waitpid(pid, nullptr, 0);  // the reader has everything
  double t1 = NowNs();
  printf("%s %.1f MiB/s\n", tcp ? "tcpbw" : "unixbw", static_cast<double>(mib) / ((t1 - t0) / 1e9));
  return 0;
}

int Connections(long n) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(l, 128) != 0 || getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Fail("listen on 127.0.0.1");
  }
  double t0 = NowNs();
  for (long i = 0; i < n; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Fail("connect");
    int s = accept(l, nullptr, nullptr);
    if (s < 0) Fail("accept");
    close(s);
    close(c);
  }
  double t1 = NowNs();
  printf("tcpconn %.1f ns/conn\n", (t1 - t0) / static_cast<double>(n));
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "syscall") == 0) return Syscall(Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "clock") == 0) return Clock(Count(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "open") == 0) return Open(argv[2], Count(argv[3]));
  if (argc >= 3 && strcmp(argv[1], "read") == 0) return Read(argv[2]);
  if (argc >= 3 && strcmp(argv[1], "fault") == 0) return Fault(Count(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "fork") == 0) return Fork(Count(argv[2]), Count(argv[3]));
  if (argc >= 3 && strcmp(argv[1], "forkexec") == 0) return ForkExec(Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "thread") == 0) return Thread(Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "futex") == 0) return Futex(Count(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "stat") == 0) return Stat(argv[2], Count(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "openclose") == 0) return OpenClose(argv[2], Count(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "readdir") == 0) return ReadDir(argv[2], Count(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "write") == 0) return Write(argv[2], Count(argv[3]));
  if (argc >= 4 && strcmp(argv[1], "run") == 0) return Run(Count(argv[2]), argv + 3);
  if (argc >= 3 && strcmp(argv[1], "unixrtt") == 0) return RoundTrips(false, Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "unixbw") == 0) return Throughput(false, Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "tcprtt") == 0) return RoundTrips(true, Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "tcpbw") == 0) return Throughput(true, Count(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "tcpconn") == 0) return Connections(Count(argv[2]));
  fprintf(stderr,
          "usage: husk_bench syscall N | clock N | open PATH N | read PATH | fault N | "
          "fork N MIB | forkexec N | thread N | futex N | stat PATH N | openclose PATH N | "
          "readdir DIR N | write PATH MIB | run N CMD...\n");
  return 2;
}
