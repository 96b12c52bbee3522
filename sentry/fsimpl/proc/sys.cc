// /proc/sys: the sysctl files programs read. Values are the sandbox's own
// (its limits, its uname) or Linux's defaults; nothing of the host shows.
// The tunables are 0644 as on Linux, and a write is refused (EPERM): the
// sandbox's kernel does not change them.
#include <errno.h>
#include <stdio.h>

#include <map>
#include <random>
#include <string>

#include "sentry/fsimpl/proc/inodes.h"

namespace husk::procfs {
namespace {

// A random (version 4) UUID, as the kernel's random/uuid gives.
std::string NewUuid() {
  static std::mt19937_64 gen{std::random_device{}()};
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~uint64_t{0xf000}) | 0x4000;                    // version 4
  lo = (lo & ~(uint64_t{0xc} << 60)) | (uint64_t{8} << 60);  // variant 10
  char buf[40];
  snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx\n", static_cast<unsigned>(hi >> 32),
           static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
           static_cast<unsigned>(lo >> 48),
           static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

// A write to a UTS name (proc_dostring with strict writes): the bytes up to
// the first newline or NUL, at most __NEW_UTS_LEN of them; the whole count
// is taken.
ProcWriter UtsWriter(std::function<Status(const std::string&)> set) {
  return [set = std::move(set)](const char* buf, size_t n) -> Result<size_t> {
    std::string name(buf, n);
    name = name.substr(0, name.find_first_of(std::string("\n\0", 2)));
    if (name.size() > 64) name.resize(64);
    TRY(set(name));
    return n;
  };
}

}  // namespace

vfs::InodeRef NewSysDir(const std::shared_ptr<ProcFs>& fs) {
  ProcProvider* p = fs->provider.get();
  auto sys = std::make_shared<FixedDir>(fs);

  auto kernel = std::make_shared<FixedDir>(fs);
  kernel->Value("pid_max", "4194304\n");
  kernel->Value("ngroups_max", "65536\n", false);
  kernel->Value("overflowuid", "65534\n");
  kernel->Value("overflowgid", "65534\n");
  kernel->Value("cap_last_cap", "40\n", false);
  kernel->Value("ostype", "Linux\n", false);
  kernel->File(
      "osrelease", [p]() -> Result<std::string> { return p->Release() + "\n"; }, false);
  kernel->File(
      "version", [p]() -> Result<std::string> { return p->Version() + "\n"; }, false);
  // The caller's UTS namespace's names; writing one sets it there, as
  // sethostname(2) would (proc_do_uts_string; the 0644 mode is the only gate).
  kernel->Writable(
      "hostname", [p]() -> Result<std::string> { return p->Hostname() + "\n"; },
      UtsWriter([p](const std::string& name) { return p->SetHostname(name); }));
  kernel->Writable(
      "domainname", [p]() -> Result<std::string> { return p->Domainname() + "\n"; },
      UtsWriter([p](const std::string& name) { return p->SetDomainname(name); }));
  kernel->Value("threads-max", "126452\n");
  auto random = std::make_shared<FixedDir>(fs);
  random->File(
      "uuid", []() -> Result<std::string> { return NewUuid(); }, false);
  random->Value("boot_id", NewUuid(), false);  // one per sandbox boot
  random->Value("poolsize", "256\n", false);
  random->Value("entropy_avail", "256\n", false);
  kernel->Add("random", random);
  sys->Add("kernel", kernel);

  auto fsdir = std::make_shared<FixedDir>(fs);
  fsdir->Value("file-max", "9223372036854775807\n");
  // Open file descriptions: the sandbox's descriptors, a little high when
  // several share one (Linux counts the descriptions).
  fsdir->File(
      "file-nr",
      [p]() -> Result<std::string> {
        size_t open = 0;
        for (int pid : p->Pids()) {
          if (auto fds = p->Fds(pid); fds.ok()) open += fds->size();
        }
        return std::to_string(open) + "\t0\t9223372036854775807\n";
      },
      false);
  fsdir->Value("nr_open", "1048576\n");
  fsdir->Value("pipe-max-size", "1048576\n");
  fsdir->Value("protected_hardlinks", "1\n");
  fsdir->Value("protected_symlinks", "1\n");
  auto inotify = std::make_shared<FixedDir>(fs);
  inotify->Value("max_user_watches", "8192\n");
  inotify->Value("max_user_instances", "128\n");
  inotify->Value("max_queued_events", "16384\n");
  fsdir->Add("inotify", inotify);
  sys->Add("fs", fsdir);

  auto vm = std::make_shared<FixedDir>(fs);
  vm->Value("overcommit_memory", "0\n");
  vm->Value("max_map_count", "65530\n");
  vm->Value("mmap_min_addr", "65536\n");
  sys->Add("vm", vm);

  auto net = std::make_shared<FixedDir>(fs);
  auto core = std::make_shared<FixedDir>(fs);
  core->Value("somaxconn", "4096\n");
  core->Value("wmem_default", "212992\n");
  core->Value("rmem_default", "212992\n");
  core->Value("wmem_max", "4194304\n");
  core->Value("rmem_max", "4194304\n");
  net->Add("core", core);
  // What the sandbox's sockets use (sentry/net): the ephemeral ports, the
  // TTLs and hop limits, TCP's keepalive and SYN defaults, IPV6_V6ONLY's
  // default, and unix datagram queues.
  auto ipv4 = std::make_shared<FixedDir>(fs);
  ipv4->Value("ip_local_port_range", "32768\t60999\n");
  ipv4->Value("ip_default_ttl", "64\n");
  ipv4->Value("ping_group_range", "0\t2147483647\n");
  ipv4->Value("tcp_keepalive_time", "7200\n");
  ipv4->Value("tcp_keepalive_intvl", "75\n");
  ipv4->Value("tcp_keepalive_probes", "9\n");
  ipv4->Value("tcp_syn_retries", "6\n");
  ipv4->Value("tcp_synack_retries", "5\n");
  ipv4->Value("tcp_fin_timeout", "60\n");
  ipv4->Value("tcp_congestion_control", "cubic\n");
  ipv4->Value("tcp_available_congestion_control", "cubic\n");
  ipv4->Value("tcp_sack", "1\n");
  ipv4->Value("tcp_timestamps", "1\n");
  ipv4->Value("tcp_window_scaling", "1\n");
  ipv4->Value("tcp_rmem", "4096\t131072\t6291456\n");
  ipv4->Value("tcp_wmem", "4096\t16384\t4194304\n");
  net->Add("ipv4", ipv4);
  auto ipv6 = std::make_shared<FixedDir>(fs);
  ipv6->Value("bindv6only", "0\n");
  auto conf = std::make_shared<FixedDir>(fs);
  for (const char* name : {"all", "default", "lo"}) {
    auto c = std::make_shared<FixedDir>(fs);
    c->Value("hop_limit", "64\n");
    c->Value("mtu", name == std::string("lo") ? "65536\n" : "1280\n");
    conf->Add(name, c);
  }
  ipv6->Add("conf", conf);
  net->Add("ipv6", ipv6);
  auto unix_dir = std::make_shared<FixedDir>(fs);
  unix_dir->Value("max_dgram_qlen", "10\n");
  net->Add("unix", unix_dir);
  sys->Add("net", net);
  return sys;
}

}  // namespace husk::procfs
