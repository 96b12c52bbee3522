// deep_tree: builds or uses a directory chain DEPTH levels deep, walking it one openat(2) at
// a time (the paths are far longer than PATH_MAX). A helper of deep_copy_up.sh.
//
//   deep_tree mkdir ROOT DEPTH   makes ROOT/d/d/.../d (natively, on the host)
//   deep_tree create ROOT DEPTH  creates a file at the bottom and writes to it (inside husk,
//                                where ROOT is on the read-only lower layer: every level is
//                                copied up first)
//   deep_tree rmtree ROOT DEPTH  removes the chain again, bottom-up
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int Fail(const char* what) {
  fprintf(stderr, "deep_tree: %s: %s\n", what, strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: deep_tree mkdir|create|rmtree ROOT DEPTH\n");
    return 2;
  }
  const std::string mode = argv[1];
  const long depth = strtol(argv[3], nullptr, 10);
  std::vector<int> fds;
  fds.push_back(open(argv[2], O_RDONLY | O_DIRECTORY));
  if (fds.back() < 0) return Fail("open root");
  for (long i = 0; i < depth; i++) {
    if (mode == "mkdir" && mkdirat(fds.back(), "d", 0755) != 0 && errno != EEXIST) {
      return Fail("mkdirat");
    }
    int next = openat(fds.back(), "d", O_RDONLY | O_DIRECTORY);
    if (next < 0) return Fail("openat");
    if (mode != "rmtree") close(fds.back());  // rmtree keeps every level for the way back
    if (mode != "rmtree") fds.pop_back();
    fds.push_back(next);
  }
  if (mode == "create") {
    int f = openat(fds.back(), "file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (f < 0) return Fail("create at the bottom");
    if (write(f, "x", 1) != 1) return Fail("write");
    struct stat st;
    if (fstat(f, &st) != 0 || st.st_size != 1) return Fail("fstat");
    close(f);
    if (unlinkat(fds.back(), "file", 0) != 0) return Fail("unlink");
  }
  if (mode == "rmtree") {
    for (size_t i = fds.size() - 1; i > 0; i--) {
      close(fds[i]);
      if (unlinkat(fds[i - 1], "d", AT_REMOVEDIR) != 0) return Fail("rmdir");
    }
  }
  return 0;
}
