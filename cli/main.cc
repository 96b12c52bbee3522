// husk: one binary for the CLI (`husk do`, `husk syscalls`) and, re-executed
// by it, the sandbox's processes (`husk boot` is the sentry, `husk gofer`
// the file server).
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace {

void Usage() {
  fprintf(stderr,
          "usage: husk do [--platform=ptrace] [--strace] [--] CMD [ARGS...]\n"
          "       husk syscalls       print the syscall table\n"
          "       husk version\n"
          "internal: husk boot ..., husk gofer ... (started by husk itself)\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "do") return husk::cli::DoMain(argc - 2, argv + 2);
  if (cmd == "boot") return husk::cli::BootCommand(argc - 2, argv + 2, argv);
  if (cmd == "gofer") return husk::cli::GoferCommand(argc - 2, argv + 2);
  if (cmd == "syscalls") return husk::cli::SyscallsCommand();
  if (cmd == "version" || cmd == "--version") {
    printf("husk 0.1 (sentry release %s)\n", husk::cli::Release());
    return 0;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    Usage();
    return 0;
  }
  fprintf(stderr, "husk: unknown command '%s'\n", cmd.c_str());
  Usage();
  return 2;
}
