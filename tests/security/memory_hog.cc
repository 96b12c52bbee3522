// memory_hog: touches MIB mebibytes of anonymous memory, a page at a time, then exits 0 (with
// "hold" after it: prints "held" and waits for a signal instead); or, with "sysinfo", prints the
// total RAM sysinfo(2) reports, in MiB. A helper of
// memory_limit.sh, which runs it inside `husk do --memory`.
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  const bool hold = argc == 3 && strcmp(argv[2], "hold") == 0;
  if (argc != 2 && !hold) {
    fprintf(stderr, "usage: memory_hog MIB [hold] | sysinfo\n");
    return 2;
  }
  if (strcmp(argv[1], "sysinfo") == 0) {
    struct sysinfo si {};
    if (sysinfo(&si) != 0) return 1;
    printf("%llu\n", static_cast<unsigned long long>(si.totalram) * si.mem_unit >> 20);
    return 0;
  }
  size_t bytes = strtoull(argv[1], nullptr, 10) << 20;
  auto* p = static_cast<char*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return 1;
  for (size_t off = 0; off < bytes; off += 4096) p[off] = 1;
  if (hold) {
    printf("held\n");
    fflush(stdout);
    pause();
  }
  return 0;
}
