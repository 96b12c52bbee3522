// `husk do`: runs a command in a fresh sandbox over the host's root (or the
// --rootfs directory), seen read-only through the gofer, with a writable
// layer in sandbox memory; each --volume is a host directory served by a
// gofer of its own and mounted at its sandbox path.
//
//   husk do (this process)  -- waits, forwards signals, returns the status
//    ├── husk gofer         -- own mount/net/ipc/uts namespaces, chroot, seccomp
//    └── husk boot          -- the sentry: new user, mount, pid, ipc, uts and
//                              net namespaces; pivots to an empty root
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/network.h"
#include "cli/sandbox.h"

namespace husk::cli {
namespace {

pid_t g_sentry = -1;

void Forward(int sig) {
  if (g_sentry > 0) kill(g_sentry, SIGKILL);
  (void)sig;
}

// Parses HOST:SANDBOX[:ro|:rw].
bool ParseVolume(const std::string& spec, Volume* v) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    fprintf(stderr, "husk do: --volume wants HOST:SANDBOX[:ro|:rw], got '%s'\n", spec.c_str());
    return false;
  }
  if (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw") {
    fprintf(stderr, "husk do: --volume %s: the mode is ro or rw, not '%s'\n", spec.c_str(),
            parts[2].c_str());
    return false;
  }
  // As docker -v: read-write unless :ro.
  v->writable = parts.size() == 2 || parts[2] == "rw";
  if (!HostDirectory("husk do: --volume", parts[0], &v->host)) return false;
  if (!SandboxPath(parts[1], &v->sandbox) || v->sandbox == "/") {
    fprintf(stderr,
            "husk do: --volume %s: the sandbox path must be absolute, without '..', and not "
            "'/'\n",
            spec.c_str());
    return false;
  }
  return true;
}

// Parses a size with an optional K, M, G or T suffix (powers of 1024).
bool ParseSize(const std::string& text, uint64_t* out) {
  size_t end = 0;
  while (end < text.size() && isdigit(static_cast<unsigned char>(text[end]))) end++;
  if (end == 0 || end + 1 < text.size()) return false;
  uint64_t n;
  if (!absl::SimpleAtoi(text.substr(0, end), &n)) return false;
  int shift = 0;
  if (end < text.size()) {
    switch (toupper(static_cast<unsigned char>(text[end]))) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        return false;
    }
  }
  if (n == 0 || n > (UINT64_MAX >> shift)) return false;
  *out = n << shift;
  return true;
}

}  // namespace

int DoMain(int argc, char** argv) {
  bool strace = false;
  std::string platform = "ptrace";
  uint64_t memory = 0;
  bool clear_env = false;
  std::vector<std::string> env;
  std::string rootfs = "/";
  std::string cwd_flag;
  std::vector<Volume> volumes;
  std::string network = "none";
  int i = 0;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    // Flags with a value take it as --flag=VALUE or as the next argument.
    std::string value;
    auto takes = [&](const std::string& flag) {
      if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
        return true;
      }
      if (a == flag && i + 1 < argc) {
        value = argv[++i];
        return true;
      }
      return false;
    };
    if (a == "--strace") {
      strace = true;
    } else if (takes("--platform")) {
      platform = value;
    } else if (takes("--network")) {
      network = value;
      if (network != "none" && network != "sandbox" && network != "host") {
        fprintf(stderr, "husk do: --network is none, sandbox or host, not '%s'\n", value.c_str());
        return 125;
      }
    } else if (takes("--memory")) {
      if (!ParseSize(value, &memory)) {
        fprintf(stderr, "husk do: --memory wants a size like 512M or 2G, got '%s'\n",
                value.c_str());
        return 125;
      }
    } else if (takes("--env")) {
      env.push_back(value);
    } else if (a == "--clear-env") {
      clear_env = true;
    } else if (takes("--rootfs")) {
      if (!HostDirectory("husk do: --rootfs", value, &rootfs)) return 125;
    } else if (takes("--volume")) {
      Volume v;
      if (!ParseVolume(value, &v)) return 125;
      volumes.push_back(std::move(v));
    } else if (takes("--cwd")) {
      if (!SandboxPath(value, &cwd_flag)) {
        fprintf(stderr, "husk do: --cwd wants an absolute path without '..', got '%s'\n",
                value.c_str());
        return 125;
      }
    } else if (a.rfind("--", 0) == 0) {
      fprintf(stderr, "husk do: unknown flag %s\n", a.c_str());
      return 125;
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr,
            "usage: husk do [--platform=ptrace|systrap] [--network=none|sandbox|host] [--strace]\n"
            "               [--memory=SIZE] [--clear-env]\n"
            "               [--env=NAME=VALUE | --env=NAME]... [--rootfs=DIR] [--cwd=DIR]\n"
            "               [--volume=HOST:SANDBOX[:ro|:rw]]... [--] CMD [ARGS...]\n");
    return 125;
  }
  if (platform == "kvm") {
    fprintf(stderr, access("/dev/kvm", R_OK | W_OK) == 0
                        ? "husk do: the kvm platform is not built yet; use --platform=ptrace\n"
                        : "husk do: --platform=kvm needs /dev/kvm, which is not available here\n");
    return 125;
  }
  if (platform != "ptrace" && platform != "systrap") {
    fprintf(stderr, "husk do: unknown platform '%s' (available: ptrace, systrap)\n",
            platform.c_str());
    return 125;
  }

  SandboxConfig cfg;
  cfg.rootfs = rootfs;
  cfg.volumes = std::move(volumes);
  cfg.platform = platform;
  cfg.strace = strace;
  cfg.memory = memory;
  // The working directory: --cwd, else husk's own over the host's root,
  // else the root of another one.
  cfg.cwd = cwd_flag;
  if (cfg.cwd.empty()) {
    char here[4096];
    cfg.cwd = rootfs == "/" && getcwd(here, sizeof(here)) != nullptr ? here : "/";
  }
  // The sandbox's environment is husk's own, or none with --clear-env;
  // then each --env NAME=VALUE sets one, and --env NAME copies husk's.
  std::vector<std::pair<std::string, std::string>> set;
  for (const std::string& e : env) {
    size_t eq = e.find('=');
    if (eq != std::string::npos) {
      set.emplace_back(e.substr(0, eq), e.substr(eq + 1));
    } else if (const char* v = getenv(e.c_str())) {
      set.emplace_back(e, v);
    }
  }
  if (!clear_env) {
    for (char** e = environ; *e != nullptr; e++) {
      std::string entry = *e;
      std::string name = entry.substr(0, entry.find('='));
      bool replaced =
          std::any_of(set.begin(), set.end(), [&](const auto& s) { return s.first == name; });
      if (!replaced) cfg.env.push_back(entry);
    }
  }
  for (const auto& [name, value] : set) cfg.env.push_back(absl::StrCat(name, "=", value));
  for (; i < argc; i++) cfg.argv.emplace_back(argv[i]);

  TakenNetwork taken;
  if (network == "host") {
    std::string why;
    if (!DescribeNetwork(&taken, &why)) {
      fprintf(stderr, "husk do: --network=host: %s\n", why.c_str());
      return 125;
    }
    cfg.host_network = true;
    cfg.nics = taken.nics;
    cfg.routes = taken.routes;
  }
  if (network == "sandbox") {
    std::string why;
    if (!TakeNetwork(&taken, /*required=*/true, &why)) {
      fprintf(stderr, "husk do: --network=sandbox: %s\n", why.c_str());
      return 125;
    }
    cfg.nics = taken.nics;
    cfg.routes = taken.routes;
  }
  Launched l;
  if (!Launch("husk do", cfg, &l)) {
    RestoreNetwork(&taken);
    return 125;
  }
  g_sentry = l.sentry;
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  // The interfaces' addresses go back to the host once the sandbox is over.
  int status = WaitSandbox("husk do", cfg, l);
  RestoreNetwork(&taken);
  return status;
}

}  // namespace husk::cli
