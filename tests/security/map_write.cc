// Writes a file through write(2) and through a MAP_SHARED mapping, checks that
// each path sees the other's bytes, and msyncs (volumes.sh then reads the host
// file). Usage: map_write PATH. Prints "ok" and exits 0, or says what differed.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: map_write PATH\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ftruncate(fd, 8192) != 0) {
    perror(argv[1]);
    return 1;
  }
  void* addr = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  char* m = static_cast<char*>(addr);
  // write(2), then the mapping reads it.
  if (pwrite(fd, "written", 7, 0) != 7) {
    perror("pwrite");
    return 1;
  }
  if (memcmp(m, "written", 7) != 0) {
    fprintf(stderr, "the mapping does not see what write(2) wrote\n");
    return 1;
  }
  // A store through the mapping, then read(2) sees it.
  memcpy(m + 4096, "mapped", 6);
  char buf[7] = {};
  if (pread(fd, buf, 6, 4096) != 6 || memcmp(buf, "mapped", 6) != 0) {
    fprintf(stderr, "read(2) does not see the mapping's store: '%s'\n", buf);
    return 1;
  }
  if (msync(m, 8192, MS_SYNC) != 0) {
    perror("msync");
    return 1;
  }
  puts("ok");
  return 0;
}
