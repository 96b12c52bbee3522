// A thread storm and a fork/exec/wait storm, for storm.sh to measure what
// they leave behind on the host. Prints "ready <used>" (sandbox memory in
// use, from sysinfo), waits for a line on stdin, runs the storms, prints
// "done <used>", and waits for another line before exiting.
//
//   storm THREADS ALIVE CHILDREN
#include <pthread.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

unsigned long UsedBytes() {
  struct sysinfo si {};
  sysinfo(&si);
  return (si.totalram - si.freeram) * si.mem_unit;
}

void* Work(void* arg) {
  auto* counter = static_cast<long*>(arg);
  __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: storm THREADS ALIVE CHILDREN\n");
    return 2;
  }
  const long threads = std::atol(argv[1]), alive = std::atol(argv[2]),
             children = std::atol(argv[3]);
  std::string line;
  std::printf("ready %lu\n", UsedBytes());
  std::fflush(stdout);
  std::getline(std::cin, line);

  long ran = 0;
  std::vector<pthread_t> batch(static_cast<size_t>(alive));
  for (long done = 0; done < threads; done += alive) {
    for (long i = 0; i < alive; i++) {
      if (pthread_create(&batch[i], nullptr, Work, &ran) != 0) {
        std::printf("FAIL pthread_create at %ld\n", done + i);
        return 1;
      }
    }
    for (long i = 0; i < alive; i++) pthread_join(batch[i], nullptr);
  }
  for (long i = 0; i < children; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      std::printf("FAIL fork at %ld\n", i);
      return 1;
    }
    if (pid == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::printf("FAIL child %ld status %d\n", i, status);
      return 1;
    }
  }
  std::printf("done %lu threads=%ld\n", UsedBytes(), ran);
  std::fflush(stdout);
  std::getline(std::cin, line);
  return 0;
}
