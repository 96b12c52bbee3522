#include "sentry/boot/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/fd_passing.h"
#include "platform/ptrace/ptrace.h"
#include "platform/systrap/systrap.h"
#include "sentry/boot/console.h"
#include "sentry/boot/control.h"
#include "sentry/boot/proc_provider.h"
#include "sentry/boot/seccomp_policy.h"
#include "sentry/fsimpl/dev/dev.h"
#include "sentry/fsimpl/gofer/gofer_fs.h"
#include "sentry/fsimpl/host/host_file.h"
#include "sentry/fsimpl/overlay/overlay.h"
#include "sentry/fsimpl/proc/proc.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/kernel/clocks.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/tty.h"
#include "sentry/memfile/account.h"
#include "sentry/memfile/file_cache.h"
#include "sentry/net/host_socket.h"
#include "sentry/net/netdev.h"
#include "sentry/syscalls/syscalls.h"
#include "sentry/time/sandbox_clock.h"
#include "sentry/vdso/vdso.h"

extern char** environ;

namespace husk {
namespace {

constexpr size_t kMemoryFileBytes = size_t{64} << 30;  // sparse; bounded by the host's cgroup

[[noreturn]] void Die(const std::string& what, int err) {
  std::string msg = absl::StrFormat("husk: sentry: %s: %s\n", what, strerror(err));
  (void)!write(2, msg.data(), msg.size());
  _exit(125);
}

std::string ReadHostFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Leaves the host filesystem behind: an empty, read-only tmpfs becomes "/".
void PivotToEmptyRoot() {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Die("make / private", errno);
  if (mount("none", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k,mode=0500") != 0)
    Die("mount empty root", errno);
  if (chdir("/tmp") != 0) Die("chdir new root", errno);
  if (syscall(SYS_pivot_root, ".", ".") != 0) Die("pivot_root", errno);
  if (umount2(".", MNT_DETACH) != 0) Die("detach host root", errno);
  if (chdir("/") != 0) Die("chdir /", errno);
  if (mount(nullptr, "/", nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    Die("remount root read-only", errno);
}

// Gives up every capability: the sentry only traces its own children.
void DropCapabilities() {
  for (int cap = 0; cap <= CAP_LAST_CAP; cap++) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &hdr, data) != 0) Die("drop capabilities", errno);
}

// A minimal sysfs: what libraries read to size themselves (the CPUs online,
// the kernel's page size via /sys/kernel/mm...), from the sentry's own view.
// The host's /sys is never shown (the gofer refuses pseudo-filesystems).
vfs::InodeRef NewSysRoot(int cpus) {
  vfs::InodeRef root = tmpfs::NewTmpfsRoot(0555);
  std::string range = cpus > 1 ? "0-" + std::to_string(cpus - 1) + "\n" : "0\n";
  auto mkdirs = [](vfs::InodeRef dir, std::initializer_list<const char*> names) {
    for (const char* n : names) {
      auto next = dir->Mkdir(n, 0755);
      if (!next.ok()) return vfs::InodeRef();
      dir = *next;
    }
    return dir;
  };
  vfs::InodeRef cpu = mkdirs(root, {"devices", "system", "cpu"});
  if (cpu != nullptr) {
    for (const char* name : {"online", "possible", "present"}) {
      auto f = cpu->Create(name, 0444);
      if (f.ok()) (void)(*f)->WriteAt(range.data(), range.size(), 0);
    }
    for (int i = 0; i < cpus; i++) (void)cpu->Mkdir("cpu" + std::to_string(i), 0755);
  }
  (void)mkdirs(root, {"fs", "cgroup"});
  (void)root->Mkdir("kernel", 0755);
  (void)root->Mkdir("class", 0755);
  (void)root->Mkdir("bus", 0755);
  return root;
}

int CountCpus(const std::string& cpuinfo) {
  int n = 0;
  for (size_t pos = 0; (pos = cpuinfo.find("\nprocessor", pos)) != std::string::npos; pos++) n++;
  if (cpuinfo.rfind("processor", 0) == 0) n++;
  return std::max(n, 1);
}

// The dentry at an absolute sandbox path, with the directories that are
// missing made on the way (in the overlay's memory, or whatever filesystem
// holds them): a volume's mountpoint.
Result<vfs::DentryRef> MakeMountpoint(const vfs::DentryRef& root, const std::string& path) {
  vfs::FsContext fs{root, root, 022};
  vfs::DentryRef cur = root;
  std::string sofar;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    sofar = absl::StrCat(sofar, "/", part);
    auto next = vfs::Resolve(fs, root, sofar, true);
    if (!next.ok() && next.error() == ENOENT) {
      auto made = cur->inode()->Mkdir(std::string(part), 0755);
      if (!made.ok() && made.error() != EEXIST) return Errno{made.error()};
      next = vfs::Resolve(fs, root, sofar, true);
    }
    if (!next.ok()) return next;
    if (!(*next)->inode()->IsDir()) return Errno{ENOTDIR};
    cur = *next;
  }
  return cur;
}

// A bind-mounted host file, copied into the root (at most 1 MiB: these are
// the small files engines write for a container, such as /etc/hosts).
Status CopyInFile(const vfs::DentryRef& root, const BootOptions::File& f) {
  constexpr size_t kMaxBytes = 1 << 20;
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(f.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno{errno};
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxBytes) return Errno{EFBIG};
  }
  close(f.fd);
  size_t slash = f.path.rfind('/');
  const std::string dir = slash == 0 ? "/" : f.path.substr(0, slash);
  const std::string name = f.path.substr(slash + 1);
  if (name.empty()) return Errno{EINVAL};
  ASSIGN_OR_RETURN(vfs::DentryRef parent, MakeMountpoint(root, dir));
  // What the image has under the name is replaced.
  if (parent->inode()->Lookup(name).ok()) {
    TRY(parent->inode()->Unlink(name));
    parent->ForgetChild(name);
  }
  ASSIGN_OR_RETURN(vfs::InodeRef file, parent->inode()->Create(name, 0644));
  if (!data.empty()) TRY(file->WriteAt(data.data(), data.size(), 0));
  return Ok();
}

Result<vfs::DentryRef> BuildVfs(Kernel& k, std::shared_ptr<gofer::Client> client,
                                const BootOptions& opts) {
  const std::string& cwd = opts.cwd;
  ASSIGN_OR_RETURN(vfs::InodeRef lower, goferfs::NewGoferRoot(std::move(client)));
  vfs::InodeRef upper = tmpfs::NewTmpfsRoot(0755);
  vfs::InodeRef root_inode = overlay::NewOverlayRoot(upper, lower);
  auto root = std::make_shared<vfs::Dentry>("/", nullptr, root_inode);
  vfs::SetRootMount(root, {"overlay", "none", "rw,relatime"});
  struct StandardMount {
    const char* name;
    vfs::InodeRef fs;
    vfs::MountSpec spec;
  };
  std::shared_ptr<procfs::ProcProvider> provider = NewKernelProcProvider(k);
  vfs::InodeRef dev = devfs::NewDevRoot();
  StandardMount mounts[] = {
      {"tmp", tmpfs::NewTmpfsRoot(01777), {"tmpfs", "tmpfs", "rw,nosuid,nodev"}},
      {"dev", dev, {"tmpfs", "tmpfs", "rw,nosuid,mode=755"}},
      {"proc", procfs::NewProcRoot(provider), {"proc", "proc", "rw,nosuid,nodev,noexec,relatime"}},
      {"sys", NewSysRoot(k.cpus), {"sysfs", "sysfs", "ro,nosuid,nodev,noexec,relatime"}},
  };
  // Started from inside the host's /tmp (a build tree there, say), the
  // sandbox keeps /tmp as part of the overlay so the working directory
  // exists; writes still land in sandbox memory only.
  bool keep_host_tmp = !opts.other_root && (cwd == "/tmp" || cwd.rfind("/tmp/", 0) == 0);
  for (auto& m : mounts) {
    if (keep_host_tmp && std::string(m.name) == "tmp") continue;
    auto point = root->Child(m.name);
    if (!point.ok()) {
      // The host's directory is missing or unreadable to the gofer (a host
      // /proc, say): the mount covers it anyway, on a sentry-made mountpoint.
      root->AddChild(m.name, tmpfs::NewTmpfsRoot(0555));
      ASSIGN_OR_RETURN(point, root->Child(m.name));
    }
    (*point)->Mount(m.fs, m.spec);
  }
  // Terminals: the sandbox's devpts on /dev/pts, with /dev/ptmx and
  // /dev/tty beside it.
  ASSIGN_OR_RETURN(vfs::DentryRef pts, MakeMountpoint(root, "/dev/pts"));
  vfs::InodeRef devpts = tty::NewDevpts();
  pts->Mount(devpts, {"devpts", "devpts", "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666"});
  const dev_t dev_fs = dev->Stat().value().st_dev;
  TRY(tmpfs::AddChild(*dev, "ptmx", tty::NewPtmxDevice(dev_fs, devpts)));
  TRY(tmpfs::AddChild(*dev, "tty", tty::NewTtyDevice(dev_fs)));
  // The sandbox's cgroup, on the sysfs directory made for it: cgroup v2
  // only, read-only, as a container with its own cgroup namespace sees it.
  ASSIGN_OR_RETURN(vfs::DentryRef cgroup, MakeMountpoint(root, "/sys/fs/cgroup"));
  cgroup->Mount(procfs::NewCgroupRoot(provider),
                {"cgroup2", "cgroup2", "ro,nosuid,nodev,noexec,relatime"});
  return root;
}

// A volume's gofer root mounted at its path; after the mounts above, so that
// a volume may sit on one of them (/tmp/x).
Status MountVolume(const vfs::DentryRef& root, const BootOptions::Volume& v) {
  auto client = std::make_shared<gofer::Client>(UniqueFd(v.fd));
  ASSIGN_OR_RETURN(vfs::InodeRef vroot, goferfs::NewGoferRoot(std::move(client), v.writable));
  ASSIGN_OR_RETURN(vfs::DentryRef point, MakeMountpoint(root, v.path));
  // A host directory served by a gofer of its own (gVisor shows its gofer
  // mounts as 9p; the host path stays out).
  point->Mount(
      vroot, {"9p", "none", v.writable ? "rw,nosuid,nodev,relatime" : "ro,nosuid,nodev,relatime"});
  return Ok();
}

// The OCI runtime's linux.maskedPaths, readonlyPaths and root.readonly, as
// runc applies them: a masked file shows /dev/null, a masked directory an
// empty read-only tmpfs; a read-only path is a read-only bind of itself.
// Paths the sandbox does not have are skipped.
Status ApplyPathRules(const vfs::DentryRef& root, const BootOptions& opts) {
  vfs::MountNamespace& ns = vfs::MountNamespace::Initial();
  vfs::FsContext fs{root, root, 022};
  auto find = [&](const std::string& path) -> Result<vfs::DentryRef> {
    Result<vfs::DentryRef> d = vfs::Resolve(fs, root, path, true);
    if (!d.ok() && (d.error() == ENOENT || d.error() == ENOTDIR)) return vfs::DentryRef();
    return d;
  };
  for (const std::string& path : opts.masked) {
    ASSIGN_OR_RETURN(vfs::DentryRef d, find(path));
    if (d == nullptr) continue;
    if (d->inode()->IsDir()) {
      ns.AddMount(d, tmpfs::NewTmpfsRoot(0755), {"tmpfs", "tmpfs", "ro,relatime"},
                  vfs::MountNamespace::kReadOnly);
    } else {
      ASSIGN_OR_RETURN(vfs::DentryRef null, vfs::Resolve(fs, root, "/dev/null", true));
      TRY(ns.AddBind(d, null, false));
    }
  }
  for (const std::string& path : opts.readonly) {
    ASSIGN_OR_RETURN(vfs::DentryRef d, find(path));
    if (d == nullptr) continue;
    const unsigned long flags = ns.FlagsOf(*d);
    ASSIGN_OR_RETURN(vfs::DentryRef bound, ns.AddBind(d, d, true));
    TRY(ns.Remount(*bound, flags | vfs::MountNamespace::kReadOnly));
  }
  if (opts.root_readonly) TRY(ns.Remount(*root, vfs::MountNamespace::kReadOnly));
  return Ok();
}

void InstallStdio(Kernel& k, Task& t) {
  for (int fd = 0; fd < 3; fd++) InstallHostFd(k, t, fd, fd);
}

}  // namespace

void BootMain(const BootOptions& opts, char** argv_for_reexec) {
  // Keep the stub's fixed page out of the sentry's own layout; ASLR may have
  // put something there, in which case a fresh exec rolls the dice again.
  if (!platform::PtracePlatform::ReserveStubRange()) {
    if (opts.reexec_count < 8) {
      setenv("HUSK_REEXEC", std::to_string(opts.reexec_count + 1).c_str(), 1);
      execv("/proc/self/exe", argv_for_reexec);
    }
    Die("reserve the stub address range", EEXIST);
  }
  if (opts.platform != "ptrace" && opts.platform != "systrap") {
    Die("platform " + opts.platform + " is not available", EINVAL);
  }
  // The sandbox's clocks start now (CLOCK_MONOTONIC at SandboxClock::kBaseNs).
  SandboxClock::Get();

  std::string cpuinfo = ReadHostFile("/proc/cpuinfo");
  PivotToEmptyRoot();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Die("no_new_privs", errno);
  DropCapabilities();

  if (opts.memory_bytes != 0) MemoryAccount::Sandbox().SetLimit(opts.memory_bytes);
  auto mf = MemoryFile::Create(kMemoryFileBytes);
  if (!mf.ok()) Die("create the memory file", mf.error());
  MemoryFile::SetSandbox(mf->get());
  (*mf)->StartReleaser();
  // Cached pages of the gofer's files: an eighth of the memory limit, at
  // most 256 MiB (and reclaimed sooner whenever the limit is near).
  FileCache::SetBudget(
      std::min<uint64_t>(MemoryAccount::Sandbox().limit() / 8, uint64_t{256} << 20) / kPageSize);
  std::unique_ptr<platform::Platform> platform;
  if (opts.platform == "systrap") {
    auto p = platform::SystrapPlatform::Create((*mf)->fd());
    if (!p.ok()) Die("create the systrap platform", p.error());
    platform = std::move(*p);
  } else {
    auto p = platform::PtracePlatform::Create((*mf)->fd());
    if (!p.ok()) Die("create the ptrace platform", p.error());
    platform = std::move(*p);
  }

  Kernel k(*platform, **mf);
  k.cpus = CountCpus(cpuinfo);
  k.cpuinfo = std::move(cpuinfo);
  k.strace = opts.strace;
  // The OCI runtime's container: task 1 is a container's init.
  k.container_init = opts.start_fd >= 0;
  k.dispatch = &syscalls::Dispatch;
  auto vdso = vdso::Create(**mf, k.cpus);
  if (!vdso.ok()) Die("set up the vDSO", vdso.error());
  k.vdso = *vdso;
  if (Status ticks = StartClockTicks(); !ticks.ok()) Die("start the clock's ticks", ticks.error());
  auto client = std::make_shared<gofer::Client>(UniqueFd(opts.gofer_fd));
  auto root = BuildVfs(k, client, opts);
  if (!root.ok()) Die("attach the root filesystem through the gofer", root.error());
  for (const BootOptions::Volume& v : opts.volumes) {
    Status mounted = MountVolume(*root, v);
    if (!mounted.ok()) Die("mount the volume at " + v.path, mounted.error());
  }
  for (const BootOptions::Tmpfs& t : opts.tmpfs) {
    auto point = MakeMountpoint(*root, t.path);
    if (!point.ok()) Die("make the tmpfs mountpoint " + t.path, point.error());
    (*point)->Mount(tmpfs::NewTmpfsRoot(t.mode & 07777, tmpfs::Limits{t.size, 0}),
                    {"tmpfs", "tmpfs", absl::StrFormat("rw,nosuid,nodev,mode=%o", t.mode & 07777)});
  }
  for (const BootOptions::File& f : opts.files) {
    Status copied = CopyInFile(*root, f);
    if (!copied.ok()) Die("copy the bind-mounted file to " + f.path, copied.error());
  }
  if (Status rules = ApplyPathRules(*root, opts); !rules.ok()) {
    Die("apply the masked and read-only paths", rules.error());
  }
  k.root = *root;
  {
    // --network=sandbox: the stack takes over the interfaces.
    std::vector<net::NicSpec> nics;
    std::vector<net::RouteSpec> routes;
    for (const std::string& text : opts.nics) {
      net::NicSpec n;
      if (!net::ParseNicSpec(text, &n)) Die("read the interface " + text, EINVAL);
      nics.push_back(std::move(n));
    }
    for (const std::string& text : opts.routes) {
      net::RouteSpec r;
      if (!net::ParseRouteSpec(text, &r)) Die("read the route " + text, EINVAL);
      routes.push_back(std::move(r));
    }
    net::SetUpHostDescriptors();
    if (opts.host_network) {
      net::EnableHostNetwork();
      net::DescribeHostNetwork(std::move(nics), std::move(routes));
    } else if (Status s = net::StartNetwork(std::move(nics), routes); !s.ok()) {
      Die("start the network", s.error());
    }
  }

  auto st = InstallSentrySeccomp((*mf)->fd(), opts.host_network);
  if (!st.ok()) Die("install the seccomp filter", st.error());

  std::vector<std::string> envp;
  for (char** e = environ; *e != nullptr; e++) {
    // husk's own re-exec counter is not the application's.
    if (strncmp(*e, "HUSK_REEXEC=", 12) != 0) envp.emplace_back(*e);
  }
  const char* path_env = getenv("PATH");
  std::string program =
      FindProgram(k, opts.argv[0], path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  auto init = k.CreateInitTask(program, opts.argv, envp, opts.cwd);
  if (!init.ok()) Die("create the first task", init.error());
  InstallStdio(k, **init);
  std::shared_ptr<Console> console;
  if (opts.console_fd >= 0) {
    // process.terminal: the first program runs on a terminal of the
    // sandbox's own, bridged to the engine's.
    absl::MutexLock l(&k.mu);
    Result<std::shared_ptr<Console>> c = AttachConsole(k, **init, UniqueFd(opts.console_fd));
    if (!c.ok()) Die("attach the console", c.error());
    console = *c;
  }
  if (!opts.hostname.empty()) k.init_uts->hostname = opts.hostname;
  if (!opts.domainname.empty()) k.init_uts->domainname = opts.domainname;
  {
    // The OCI runtime's process.user and process.rlimits.
    absl::MutexLock l(&k.mu);
    Task& t = **init;
    t.kernel().mu.AssertHeld();  // k's
    t.uid = t.euid = t.suid = t.fsuid = opts.uid;
    t.gid = t.egid = t.sgid = t.fsgid = opts.gid;
    t.groups = opts.groups;
    std::sort(t.groups.begin(), t.groups.end());
    if (opts.set_caps) {
      // What exec then makes of them is Linux's (Capabilities::OnExec).
      t.caps.bounding = opts.caps[0] & kAllCapabilities;
      t.caps.effective = opts.caps[1] & kAllCapabilities;
      t.caps.permitted = opts.caps[2] & kAllCapabilities;
      t.caps.inheritable = opts.caps[3] & kAllCapabilities;
      t.caps.ambient = opts.caps[4] & kAllCapabilities;
    } else if (opts.uid != 0) {
      t.caps.permitted = t.caps.effective = t.caps.ambient = 0;
    }
    if (opts.umask >= 0) t.fs().umask = static_cast<mode_t>(opts.umask);
    t.no_new_privs = opts.no_new_privs;
    for (const BootOptions::Rlimit& r : opts.rlimits) {
      t.tg().rlimits[r.resource] = {static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
    }
  }
  if (opts.start_fd >= 0) {
    // The OCI runtime's create: a program that cannot run fails it now,
    // with runc's words, rather than at start.
    vfs::FsContext fs{k.root, k.root, 022};
    Result<vfs::DentryRef> exe = vfs::Resolve(fs, k.root, program, true);
    std::string verdict = "ready";
    if (!exe.ok() || !(*exe)->inode()->IsRegular()) {
      verdict = program.find('/') == std::string::npos
                    ? absl::StrFormat("exec: \"%s\": executable file not found in $PATH", program)
                    : absl::StrFormat("exec: \"%s\": %s", program,
                                      strerror(exe.ok() ? EACCES : exe.error()));
    }
    (void)!write(opts.start_fd, verdict.data(), verdict.size());
    if (verdict != "ready") _exit(127);
    // `husk start`: until then the sandbox is made but runs nothing. The
    // container's network may come first, once the engine's hooks made it.
    std::vector<char> buf(65536);
    for (;;) {
      std::vector<UniqueFd> fds;
      bool cut = false;
      ssize_t n;
      do {
        n = RecvWithFds(opts.start_fd, buf, 4, &fds, &cut);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) _exit(125);
      if (buf[0] == 'N' && !cut) {
        TakeNetworkMessage(std::string(buf.data() + 1, static_cast<size_t>(n) - 1), fds);
        continue;
      }
      if (n == 1 && fds.empty()) break;
    }
    close(opts.start_fd);
  }
  k.StartInit(*init, program, opts.argv, envp);
  if (opts.control_fd >= 0) StartControl(k, opts.control_fd);
  int status = k.WaitForInit();
  if (console != nullptr) FinishConsole(*console, absl::Seconds(2));

  auto unimpl = k.Unimplemented();
  if (opts.strace && !unimpl.empty()) {
    std::string msg = "husk: unimplemented syscalls (returned ENOSYS):";
    for (auto& [nr, count] : unimpl) {
      const syscalls::SyscallInfo* info = syscalls::Lookup(nr);
      msg += absl::StrFormat(" %s(%d)x%d", info ? info->name : "?", nr, count);
    }
    msg += "\n";
    (void)!write(2, msg.data(), msg.size());
  }
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  _exit(128 + WTERMSIG(status));
}

}  // namespace husk
