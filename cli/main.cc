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
          "usage: husk do [--platform=ptrace|systrap] [--strace] [--] CMD [ARGS...]\n"
          "       husk [--root DIR] [--log FILE] [--log-format text|json] [--debug]\n"
          "            [--network=sandbox|host] [--platform=ptrace|systrap]\n"
          "            spec|create|start|run|state|kill|delete|list|features ...\n"
          "                           the OCI runtime, as runc\n"
          "       husk syscalls       print the syscall table\n"
          "       husk version\n"
          "internal: husk boot ..., husk gofer ... (started by husk itself)\n");
}

}  // namespace

int main(int argc, char** argv) {
  // runc's global flags come before the command.
  husk::cli::GlobalOptions global;
  int first = 1;
  for (; first < argc && argv[first][0] == '-' && argv[first][1] == '-'; first++) {
    std::string a = argv[first];
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto take = [&]() {
      if (inline_value) return true;
      if (first + 1 >= argc) return false;
      value = argv[++first];
      return true;
    };
    if (name == "root" || name == "log" || name == "log-format" || name == "rootless" ||
        name == "criu" || name == "network" || name == "platform") {
      if (!take()) {
        fprintf(stderr, "husk: flag --%s needs a value\n", name.c_str());
        return 2;
      }
      if (name == "root") global.root = value;
      if (name == "log") global.log = value;
      if (name == "log-format") {
        if (value != "json" && value != "text") {
          fprintf(stderr, "husk: --log-format is text or json, not '%s'\n", value.c_str());
          return 2;
        }
        global.log_json = value == "json";
      }
      if (name == "network") {
        if (value != "host" && value != "sandbox") {
          fprintf(stderr, "husk: --network is sandbox or host, not '%s'\n", value.c_str());
          return 2;
        }
        global.host_network = value == "host";
      }
      if (name == "platform") {
        if (value != "ptrace" && value != "systrap") {
          fprintf(stderr, "husk: --platform is ptrace or systrap, not '%s'\n", value.c_str());
          return 2;
        }
        global.platform = value;
      }
    } else if (name == "debug") {
      global.debug = true;
    } else if (name == "systemd-cgroup") {
      // Accepted: husk's cgroups are its own.
    } else {
      break;  // --help, --version, or a command's flag
    }
  }
  if (first >= argc) {
    Usage();
    return 2;
  }
  argc -= first - 1;
  argv += first - 1;
  std::string cmd = argv[1];
  if (husk::cli::IsOciCommand(cmd)) return husk::cli::OciCommand(global, cmd, argc - 2, argv + 2);
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
