// The re-executed halves: `husk boot` (sentry) and `husk gofer`.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "gofer/confine.h"
#include "gofer/server.h"
#include "sentry/boot/boot.h"
#include "sentry/kernel/version.h"
#include "sentry/syscalls/syscalls.h"

namespace husk::cli {
namespace {

bool FlagValue(const std::string& arg, const char* name, std::string* value) {
  std::string prefix = std::string(name) + "=";
  if (arg.rfind(prefix, 0) != 0) return false;
  *value = arg.substr(prefix.size());
  return true;
}

}  // namespace

const char* Release() { return kHuskRelease; }

int SyscallsCommand() {
  syscalls::PrintTable(stdout);
  return 0;
}

int BootCommand(int argc, char** argv, char** full_argv) {
  BootOptions opts;
  int i = 0;
  for (; i < argc; i++) {
    std::string a = argv[i], v;
    if (a == "--") {
      i++;
      break;
    }
    if (FlagValue(a, "--gofer-fd", &v)) {
      if (!absl::SimpleAtoi(v, &opts.gofer_fd)) return 125;
    } else if (FlagValue(a, "--cwd", &v)) {
      opts.cwd = v;
    } else if (FlagValue(a, "--platform", &v)) {
      opts.platform = v;
    } else if (a == "--strace") {
      opts.strace = true;
    } else if (FlagValue(a, "--memory", &v)) {
      if (!absl::SimpleAtoi(v, &opts.memory_bytes)) return 125;
    } else if (a == "--rootfs") {
      opts.other_root = true;
    } else if (FlagValue(a, "--file", &v)) {
      BootOptions::File file;
      size_t colon = v.find(':');
      if (colon == std::string::npos || !absl::SimpleAtoi(v.substr(0, colon), &file.fd) ||
          v.size() == colon + 1 || v[colon + 1] != '/') {
        fprintf(stderr, "husk boot: --file wants FD:/PATH, got %s\n", v.c_str());
        return 125;
      }
      file.path = v.substr(colon + 1);
      opts.files.push_back(std::move(file));
    } else if (FlagValue(a, "--tmpfs", &v)) {
      // MODE:SIZE:/PATH (mode in octal, size in bytes).
      std::vector<std::string> parts = absl::StrSplit(v, absl::MaxSplits(':', 2));
      BootOptions::Tmpfs t;
      if (parts.size() != 3 || !absl::numbers_internal::safe_strtou32_base(parts[0], &t.mode, 8) ||
          !absl::SimpleAtoi(parts[1], &t.size) || parts[2].empty() || parts[2][0] != '/') {
        fprintf(stderr, "husk boot: --tmpfs wants MODE:SIZE:/PATH, got %s\n", v.c_str());
        return 125;
      }
      t.path = parts[2];
      opts.tmpfs.push_back(std::move(t));
    } else if (FlagValue(a, "--user", &v)) {
      // UID:GID[:G1,G2...]
      std::vector<std::string> parts = absl::StrSplit(v, ':');
      if (parts.size() < 2 || parts.size() > 3 || !absl::SimpleAtoi(parts[0], &opts.uid) ||
          !absl::SimpleAtoi(parts[1], &opts.gid)) {
        fprintf(stderr, "husk boot: --user wants UID:GID[:GROUPS], got %s\n", v.c_str());
        return 125;
      }
      if (parts.size() == 3) {
        for (absl::string_view g : absl::StrSplit(parts[2], ',', absl::SkipEmpty())) {
          uint32_t id;
          if (!absl::SimpleAtoi(g, &id)) return 125;
          opts.groups.push_back(id);
        }
      }
    } else if (FlagValue(a, "--caps", &v)) {
      // BOUNDING:EFFECTIVE:PERMITTED:INHERITABLE:AMBIENT, hexadecimal masks.
      std::vector<std::string> parts = absl::StrSplit(v, ':');
      if (parts.size() != 5) return 125;
      for (size_t n = 0; n < 5; n++) {
        if (!absl::SimpleHexAtoi(parts[n], &opts.caps[n])) return 125;
      }
      opts.set_caps = true;
    } else if (FlagValue(a, "--umask", &v)) {
      uint32_t mask;
      if (!absl::numbers_internal::safe_strtou32_base(v, &mask, 8) || mask > 0777) return 125;
      opts.umask = static_cast<int>(mask);
    } else if (FlagValue(a, "--rlimit", &v)) {
      std::vector<std::string> parts = absl::StrSplit(v, ':');
      BootOptions::Rlimit r;
      if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &r.resource) || r.resource < 0 ||
          r.resource >= RLIM_NLIMITS || !absl::SimpleAtoi(parts[1], &r.soft) ||
          !absl::SimpleAtoi(parts[2], &r.hard)) {
        fprintf(stderr, "husk boot: --rlimit wants RESOURCE:SOFT:HARD, got %s\n", v.c_str());
        return 125;
      }
      opts.rlimits.push_back(r);
    } else if (FlagValue(a, "--start-fd", &v)) {
      if (!absl::SimpleAtoi(v, &opts.start_fd)) return 125;
    } else if (FlagValue(a, "--control-fd", &v)) {
      if (!absl::SimpleAtoi(v, &opts.control_fd)) return 125;
    } else if (FlagValue(a, "--console-fd", &v)) {
      if (!absl::SimpleAtoi(v, &opts.console_fd)) return 125;
    } else if (a == "--network-host") {
      opts.host_network = true;
    } else if (FlagValue(a, "--nic", &v)) {
      opts.nics.push_back(v);
    } else if (FlagValue(a, "--route", &v)) {
      opts.routes.push_back(v);
    } else if (FlagValue(a, "--hostname", &v)) {
      opts.hostname = v;
    } else if (FlagValue(a, "--domainname", &v)) {
      opts.domainname = v;
    } else if (FlagValue(a, "--mask", &v)) {
      opts.masked.push_back(v);
    } else if (FlagValue(a, "--readonly", &v)) {
      opts.readonly.push_back(v);
    } else if (a == "--root-readonly") {
      opts.root_readonly = true;
    } else if (a == "--no-new-privs") {
      opts.no_new_privs = true;
    } else if (FlagValue(a, "--volume", &v)) {
      // FD:PATH[:rw] (the path is normalised by husk do: no ':' in it).
      BootOptions::Volume vol;
      size_t colon = v.find(':');
      if (colon == std::string::npos || !absl::SimpleAtoi(v.substr(0, colon), &vol.fd) ||
          v.size() == colon + 1 || v[colon + 1] != '/') {
        fprintf(stderr, "husk boot: --volume wants FD:/PATH[:rw], got %s\n", v.c_str());
        return 125;
      }
      vol.path = v.substr(colon + 1);
      if (absl::EndsWith(vol.path, ":rw")) {
        vol.path.resize(vol.path.size() - 3);
        vol.writable = true;
      }
      opts.volumes.push_back(std::move(vol));
    } else {
      fprintf(stderr, "husk boot: unknown flag %s\n", a.c_str());
      return 125;
    }
  }
  for (; i < argc; i++) opts.argv.emplace_back(argv[i]);
  if (opts.argv.empty() || opts.gofer_fd < 0) {
    fprintf(stderr, "husk boot: needs --gofer-fd and a command\n");
    return 125;
  }
  if (const char* n = getenv("HUSK_REEXEC")) opts.reexec_count = atoi(n);
  BootMain(opts, full_argv);
}

int GoferCommand(int argc, char** argv) {
  int sock = -1;
  std::string root = "/";
  bool read_only = true;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i], v;
    if (FlagValue(a, "--sock-fd", &v)) {
      if (!absl::SimpleAtoi(v, &sock)) return 125;
    } else if (FlagValue(a, "--root", &v)) {
      root = v;
    } else if (a == "--rw") {
      read_only = false;
    } else {
      fprintf(stderr, "husk gofer: unknown flag %s\n", a.c_str());
      return 125;
    }
  }
  if (sock < 0) {
    fprintf(stderr, "husk gofer: needs --sock-fd\n");
    return 125;
  }
  UniqueFd root_dir;
  absl::Status st = gofer::ConfineGofer(root, read_only, &root_dir);
  if (!st.ok()) {
    fprintf(stderr, "husk gofer: %s\n", std::string(st.message()).c_str());
    return 125;
  }
  st = gofer::Serve(UniqueFd(sock), std::move(root_dir), read_only);
  if (!st.ok()) {
    fprintf(stderr, "husk gofer: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace husk::cli
