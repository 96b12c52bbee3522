#ifndef HUSK_CLI_COMMANDS_H_
#define HUSK_CLI_COMMANDS_H_

#include <string>

namespace husk::cli {

// The OCI runtime's global flags (runc's): --root, --log, --log-format,
// --debug; --systemd-cgroup and --rootless are accepted. husk's own:
// --network=host serves the inet sockets of a container whose spec has no
// network namespace (docker run --network=host) with host sockets, as
// `husk do --network=host` does; without it such a container has its
// loopback alone (as runsc's default).
struct GlobalOptions {
  std::string root = "/run/husk";
  std::string log;
  bool log_json = false;
  bool debug = false;
  bool host_network = false;
  // --platform: how the sandbox's application runs (ptrace or systrap).
  std::string platform = "ptrace";
};
bool IsOciCommand(const std::string& cmd);
int OciCommand(const GlobalOptions& global, const std::string& cmd, int argc, char** argv);

int DoMain(int argc, char** argv);
int BootCommand(int argc, char** argv, char** full_argv);
int GoferCommand(int argc, char** argv);
int SyscallsCommand();
const char* Release();

}  // namespace husk::cli

#endif  // HUSK_CLI_COMMANDS_H_
