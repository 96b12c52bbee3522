// The sentry's entry point (`husk boot`): confines the process, builds the
// kernel (memory file, platform, VFS over the gofer) and runs the container's
// first program.
#ifndef HUSK_SENTRY_BOOT_BOOT_H_
#define HUSK_SENTRY_BOOT_BOOT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace husk {

struct BootOptions {
  int gofer_fd = -1;
  std::string platform = "ptrace";
  bool strace = false;
  uint64_t memory_bytes = 0;  // the sandbox's memory limit; 0: none
  std::string cwd = "/";
  // The gofer's root is not the host's "/" (husk do --rootfs).
  bool other_root = false;
  // Volumes: a gofer socket each, mounted at an absolute path; a writable
  // one's gofer serves its tree read-write.
  struct Volume {
    int fd = -1;
    std::string path;
    bool writable = false;
  };
  std::vector<Volume> volumes;
  // Files bind-mounted by the OCI runtime (/etc/hosts, resolv.conf ...):
  // a descriptor of the host file, whose bytes are copied to `path` in the
  // sandbox's root at boot (writes there stay in the sandbox).
  struct File {
    int fd = -1;
    std::string path;
  };
  std::vector<File> files;
  // More tmpfs mounts (the OCI runtime's): path and permission bits.
  struct Tmpfs {
    std::string path;
    unsigned mode = 01777;
    uint64_t size = 0;  // bytes; 0: no limit of its own
  };
  std::vector<Tmpfs> tmpfs;
  // The first program's user (the OCI runtime's process.user): ids,
  // supplementary groups, umask; a user other than root starts without
  // capabilities. And its resource limits (process.rlimits).
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
  int umask = -1;  // -1: the default, 022
  struct Rlimit {
    int resource = 0;
    uint64_t soft = 0, hard = 0;
  };
  std::vector<Rlimit> rlimits;
  // process.capabilities as masks: bounding, effective, permitted,
  // inheritable, ambient (none given: root's full sets).
  bool set_caps = false;
  uint64_t caps[5] = {};
  std::vector<std::string> argv;  // the command; argv[0] is looked up in PATH
  int reexec_count = 0;
  // The OCI runtime's: start_fd (a SOCK_SEQPACKET socket) first gets
  // "ready", or why the first program cannot run (then the sentry exits
  // 127); the program starts once a byte arrives on it (end-of-file:
  // never, and the sentry exits 125). control_fd
  // carries signals for the first program's process, as 4-byte numbers,
  // sent as from outside the sandbox (kill(2) by a host process).
  int start_fd = -1;
  int control_fd = -1;
  // process.terminal: a host pty replica in raw mode that the first
  // program's terminal is bridged to (sentry/boot/console.h); -1: none.
  int console_fd = -1;
  std::string hostname;    // the UTS name; empty: "husk"
  std::string domainname;  // the NIS domain name; empty: "(none)"
  // The OCI runtime's linux.maskedPaths and readonlyPaths (sandbox paths),
  // and root.readonly.
  std::vector<std::string> masked, readonly;
  bool root_readonly = false;
  bool no_new_privs = false;  // process.noNewPrivileges for the first program
  // --network=sandbox: the interfaces (packet sockets with their
  // addresses) and routes the sandbox's stack takes over
  // (sentry/net/netdev.h's --nic and --route texts).
  std::vector<std::string> nics, routes;
  // --network=host: inet sockets are host sockets (sentry/net/host_socket.h);
  // nics and routes then describe the host's interfaces (fd -1).
  bool host_network = false;
};

// Never returns normally: exits with the program's status (128+signal when
// a signal killed it, 126/127 when it could not be executed).
[[noreturn]] void BootMain(const BootOptions& opts, char** argv_for_reexec);

}  // namespace husk

#endif  // HUSK_SENTRY_BOOT_BOOT_H_
