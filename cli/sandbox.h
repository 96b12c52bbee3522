// Starting a sandbox: the gofers (one for the root, one per volume) and the
// sentry (`husk boot`) in its new namespaces, with its user ids mapped.
// Shared by `husk do` and the OCI runtime's monitor.
#ifndef HUSK_CLI_SANDBOX_H_
#define HUSK_CLI_SANDBOX_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sentry/net/netdev.h"

namespace husk::cli {

// A host directory given to the sandbox.
struct Volume {
  std::string host;     // absolute, symlinks resolved
  std::string sandbox;  // absolute, normalised
  bool writable = true;
  int sock = -1;  // the sentry's end of its gofer's socket (Launch's)
  pid_t gofer = -1;
};

struct SandboxConfig {
  std::string rootfs = "/";  // the host directory served as the root
  std::vector<Volume> volumes;
  std::string cwd = "/";
  std::string platform = "ptrace";
  bool strace = false;
  uint64_t memory = 0;            // the sandbox's memory limit, bytes
  std::vector<std::string> env;   // the whole environment, NAME=VALUE
  std::vector<std::string> argv;  // the first program
  std::string hostname;           // empty: the sentry's default
  // Bind-mounted host files (fd, sandbox path): copied in at boot.
  std::vector<std::pair<int, std::string>> files;
  // More tmpfs mounts: "MODE:SIZE:/PATH" each (BootOptions::Tmpfs).
  std::vector<std::string> tmpfs;
  // More flags for the sentry (--user=, --umask=, --rlimit=: BootOptions).
  std::vector<std::string> boot_flags;
  int start_fd = -1;    // see BootOptions::start_fd (ours; the sentry gets a copy)
  int control_fd = -1;  // see BootOptions::control_fd
  int console_fd = -1;  // see BootOptions::console_fd
  // --network=sandbox: the interfaces (their packet sockets are ours; the
  // sentry gets copies) and routes for the sandbox's stack.
  std::vector<net::NicSpec> nics;
  std::vector<net::RouteSpec> routes;
  // --network=host: the sentry stays in the caller's network namespace and
  // serves inet sockets with host sockets; nics and routes describe the
  // host's (fd -1).
  bool host_network = false;
  // The sentry and gofers die with the process that launched them.
  bool die_with_parent = true;
  // Called with each gofer's pid as it starts, and the sentry's before it
  // runs anything (the OCI runtime puts them in the container's cgroups).
  std::function<void(pid_t)> on_child;
};

struct Launched {
  pid_t sentry = -1;
  pid_t gofer = -1;  // the root's; the volumes' are in the config
};

// Starts it all; on failure says why on stderr (prefixed with `who`),
// kills what it started and returns false.
bool Launch(const char* who, SandboxConfig& cfg, Launched* out);

// Waits for the sentry and then every gofer; returns the sandbox's exit
// status as a shell reports it (128+N for a sentry killed by signal N).
int WaitSandbox(const char* who, const SandboxConfig& cfg, const Launched& l);

// Resolves a host directory given on the command line; says why it cannot.
bool HostDirectory(const std::string& who, const std::string& path, std::string* out);
// Normalises an absolute sandbox path ("//a/./b/" -> "/a/b"); ".." is refused.
bool SandboxPath(const std::string& path, std::string* out);
// mkdir -p: every missing directory of absolute `path` made with `mode`.
bool MkdirAll(const std::string& path, mode_t mode);
// The default memory limit of a sandbox (see do.cc's help).
uint64_t DefaultMemoryLimit();

}  // namespace husk::cli

#endif  // HUSK_CLI_SANDBOX_H_
