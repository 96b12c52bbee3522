#include "sentry/kernel/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/time/sandbox_clock.h"

namespace husk::tty {
namespace {

// The kernel's struct termios2 (asm-generic/termbits.h): TCGETS copies the
// first 36 bytes (struct termios, NCCS 19), TCGETS2 all 44. The flag bits
// and c_cc indices are glibc's (<termios.h>), which are the kernel's on
// x86_64.
struct KernelTermios {
  uint32_t iflag, oflag, cflag, lflag;
  uint8_t line;
  uint8_t cc[19];
  uint32_t ispeed, ospeed;
};
static_assert(sizeof(KernelTermios) == 44);
constexpr size_t kTermiosSize = 36;

// The termios2 requests (asm-generic/ioctls.h), spelt out: the header's
// macros need the kernel's struct termios2, which clashes with glibc's.
constexpr unsigned long kTcGets2 = 0x802c542a;
constexpr unsigned long kTcSets2 = 0x402c542b;
constexpr unsigned long kTcSetsW2 = 0x402c542c;
constexpr unsigned long kTcSetsF2 = 0x402c542d;

constexpr int kPtyReplicaMajor = 136;  // UNIX98_PTY_SLAVE_MAJOR
constexpr int kMaxPtys = 4096;         // /proc/sys/kernel/pty/max
// n_tty's read buffer holds N_TTY_BUF_SIZE bytes, one of them kept free.
constexpr size_t kInputCapacity = 4095;
// Bytes a master wrote that the discipline has not taken yet (the tty
// layer's flip buffers), and bytes the master has not read.
constexpr size_t kPendingCapacity = 65536;
constexpr size_t kOutputCapacity = 65536;
// A pty replica's nodes: mode 620, group tty (5), as Docker and Debian
// mount devpts ("gid=5,mode=620,ptmxmode=666").
constexpr mode_t kReplicaMode = 0620;
constexpr gid_t kTtyGroup = 5;

KernelTermios DefaultTermios() {
  // pts_driver->init_termios: tty_std_termios with c_cflag B38400|CS8|CREAD.
  KernelTermios t{};
  t.iflag = ICRNL | IXON;
  t.oflag = OPOST | ONLCR;
  t.cflag = B38400 | CS8 | CREAD;
  t.lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN;
  // INIT_C_CC.
  t.cc[VINTR] = 003;
  t.cc[VQUIT] = 034;
  t.cc[VERASE] = 0177;
  t.cc[VKILL] = 025;
  t.cc[VEOF] = 004;
  t.cc[VTIME] = 0;
  t.cc[VMIN] = 1;
  t.cc[VSTART] = 021;
  t.cc[VSTOP] = 023;
  t.cc[VSUSP] = 032;
  t.cc[VREPRINT] = 022;
  t.cc[VDISCARD] = 017;
  t.cc[VWERASE] = 027;
  t.cc[VLNEXT] = 026;
  t.ispeed = t.ospeed = 38400;
  return t;
}

bool IsControl(uint8_t c) { return c < 0x20 || c == 0x7f; }

// A signal the discipline raises, sent once the terminal's lock is gone:
// to a process group (kill_pgrp), or to one process.
struct Raise {
  int pgrp = 0;
  int pid = 0;
  int sig = 0;
};
using Raises = std::vector<Raise>;

// Sends what the discipline raised, with SI_KERNEL as the kernel's own
// signals carry (SEND_SIG_PRIV).
void SendRaises(Kernel& k, const Raises& raises) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  for (const Raise& r : raises) {
    const siginfo_t info = MakeSigInfo(r.sig, SI_KERNEL, 0, 0);
    if (r.pid != 0) {
      if (std::shared_ptr<Task> t = k.FindTask(r.pid)) {
        t->kernel().mu.AssertHeld();  // one kernel, one lock
        if (!t->tg().zombie) t->SendProcessSignal(info);
      }
      continue;
    }
    for (int pid : k.Pids()) {
      std::shared_ptr<Task> t = k.FindTask(pid);
      if (t == nullptr) continue;
      t->kernel().mu.AssertHeld();
      if (t->tg().pgid == r.pgrp && !t->tg().zombie) t->SendProcessSignal(info);
    }
  }
}

// The session of the processes in group pgrp; 0 if there is none.
int SessionOfGroup(Kernel& k, int pgrp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> t = k.FindTask(pid);
    if (t == nullptr) continue;
    t->kernel().mu.AssertHeld();
    if (t->tg().pgid == pgrp && !t->tg().zombie) return t->tg().sid;
  }
  return 0;
}

// is_current_pgrp_orphaned: no process of the group has a parent in
// another group of the same session.
bool GroupOrphaned(Kernel& k, int pgrp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> t = k.FindTask(pid);
    if (t == nullptr) continue;
    t->kernel().mu.AssertHeld();
    const ThreadGroup& g = t->tg();
    if (g.pgid != pgrp || g.zombie) continue;
    std::shared_ptr<Task> parent = k.FindTask(g.ppid);
    if (parent == nullptr) continue;
    parent->kernel().mu.AssertHeld();
    if (parent->tg().pgid != pgrp && parent->tg().sid == g.sid) return false;
  }
  return true;
}

class DevptsRoot;

}  // namespace

// One pseudo-terminal pair: the line discipline's state and the session
// side. The pair lives while a master is open; replicas opened later, and
// the replica node, refer to it.
class Terminal {
 public:
  Terminal(int index, uid_t uid, std::shared_ptr<DevptsRoot> fs)
      : index_(index), uid_(uid), fs_(std::move(fs)) {
    time_ = SandboxTimespec(CLOCK_REALTIME);
  }
  ~Terminal();

  int index() const { return index_; }
  uid_t uid() const { return uid_; }
  // Unix98 replicas take majors 136 to 143, 256 minors each.
  dev_t rdev() const { return makedev(kPtyReplicaMajor + index_ / 256, index_ % 256); }
  timespec time() const { return time_; }
  DevptsRoot& fs() { return *fs_; }

  absl::Mutex mu;
  WaitQueue queue;  // readers, writers and pollers of both sides

  // ---- under mu ----
  KernelTermios termios ABSL_GUARDED_BY(mu) = DefaultTermios();
  WindowSize winsize ABSL_GUARDED_BY(mu);
  bool locked ABSL_GUARDED_BY(mu) = true;  // TIOCSPTLCK: replicas cannot open
  bool exclusive ABSL_GUARDED_BY(mu) = false;
  int masters ABSL_GUARDED_BY(mu) = 0;
  int replicas ABSL_GUARDED_BY(mu) = 0;
  // Every replica that was opened has closed (TTY_OTHER_CLOSED on the
  // master): not so before the first open.
  bool replica_closed ABSL_GUARDED_BY(mu) = false;
  bool hung_up ABSL_GUARDED_BY(mu) = false;  // every master closed
  bool stopped ABSL_GUARDED_BY(mu) = false;  // output stopped (VSTOP)

  // Takes bytes a master writes: into the discipline while it has room,
  // the rest held (up to kPendingCapacity). Returns how many it took.
  size_t Input(const char* p, size_t n, Raises* raises) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Feeds held bytes to the discipline once a read made room.
  void FeedPending(Raises* raises) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A replica's read: bytes ready for it (a line in canonical mode).
  bool InputReady(bool for_poll) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  size_t TakeInput(char* p, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // FIONREAD on the replica.
  size_t InputQueued() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A replica's write through output processing: returns how many of the
  // bytes it took (fewer when the master's buffer fills).
  size_t Output(const char* p, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool OutputRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return output_.size() < kOutputCapacity && !stopped;
  }
  size_t TakeOutput(char* p, size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  size_t OutputQueued() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return output_.size(); }
  bool PendingRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return pending_.size() < kPendingCapacity;
  }
  void FlushInput() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    lines_.clear();
    edit_.clear();
    raw_.clear();
    pending_.clear();
    lnext_ = false;
  }
  void FlushOutput() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { output_.clear(); }
  // New settings: switching canonical mode moves what is queued as
  // n_tty_set_termios does.
  void SetTermios(const KernelTermios& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // ---- under the kernel lock ----
  int session = 0;  // the session it is the controlling terminal of, or 0
  int pgrp = 0;     // its foreground process group, or 0

 private:
  size_t InputBytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    size_t n = edit_.size() + raw_.size();
    for (const std::string& l : lines_) n += l.size() + 1;
    return n;
  }
  // One byte through the discipline; false: no room, it stays held.
  bool Receive(uint8_t c, Raises* raises) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void EndLine(const std::string& tail) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Erase(uint8_t c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Echo: a character as typed (^X for control characters under ECHOCTL),
  // or as it is, through output processing.
  void EchoChar(uint8_t c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void EchoRaw(uint8_t c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { PutProcessed(c); }
  // One byte through OPOST processing (do_output_char).
  void PutProcessed(uint8_t c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Appends a byte for the master to read. Writes stop at kOutputCapacity
  // (OutputRoom); echoes, which a master's own writes cause, are dropped
  // once the buffer is that full and a little more, as n_tty drops echoes
  // it has no room for.
  void Emit(char c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (output_.size() < kOutputCapacity + 64) output_.push_back(c);
  }
  // The column a line's echo reaches after `text`, from canon_column_.
  int ColumnAfter(const std::string& text) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  const int index_;
  const uid_t uid_;
  timespec time_{};
  std::shared_ptr<DevptsRoot> fs_;

  std::deque<std::string> lines_ ABSL_GUARDED_BY(mu);  // complete lines (canonical)
  std::string edit_ ABSL_GUARDED_BY(mu);               // the line being edited
  std::deque<char> raw_ ABSL_GUARDED_BY(mu);           // non-canonical input
  std::deque<char> pending_ ABSL_GUARDED_BY(mu);
  std::deque<char> output_ ABSL_GUARDED_BY(mu);
  int column_ ABSL_GUARDED_BY(mu) = 0;
  int canon_column_ ABSL_GUARDED_BY(mu) = 0;
  bool lnext_ ABSL_GUARDED_BY(mu) = false;
};

namespace {

// The devpts instance: the pairs by index.
class DevptsRoot : public vfs::Inode {
 public:
  DevptsRoot() : dev_(vfs::NewAnonDevice()) { time_ = SandboxTimespec(CLOCK_REALTIME); }

  void Init(vfs::InodeRef ptmx) { ptmx_ = std::move(ptmx); }
  dev_t dev() const { return dev_; }
  const vfs::InodeRef& ptmx() const { return ptmx_; }

  mode_t Type() override { return S_IFDIR; }
  Result<struct stat> Stat() override {
    struct stat st {};
    st.st_dev = dev_;
    st.st_ino = 1;
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
    st.st_blksize = 1024;
    st.st_atim = st.st_mtim = st.st_ctim = time_;
    return st;
  }
  Result<struct statfs> Statfs() override {
    struct statfs s {};
    s.f_type = 0x1cd1;  // DEVPTS_SUPER_MAGIC
    s.f_bsize = s.f_frsize = 4096;
    s.f_namelen = 255;
    s.f_flags = 0x20;
    return s;
  }
  Result<vfs::InodeRef> Lookup(const std::string& name) override;
  Result<std::vector<vfs::Dirent>> ReadDir() override {
    std::vector<vfs::Dirent> out;
    out.push_back({"ptmx", 2, DT_CHR});
    absl::MutexLock l(&mu_);
    for (const auto& [index, node] : nodes_) {
      if (!node.expired()) out.push_back({std::to_string(index), uint64_t(index) + 3, DT_CHR});
    }
    return out;
  }

  // A new pair's index (the lowest free one), or ENOSPC.
  Result<int> AllocateIndex() {
    absl::MutexLock l(&mu_);
    for (int i = 0; i < kMaxPtys; i++) {
      auto it = used_.find(i);
      if (it == used_.end()) {
        used_.insert(i);
        return i;
      }
    }
    return Errno{ENOSPC};
  }
  void Release(int index) {
    absl::MutexLock l(&mu_);
    used_.erase(index);
    nodes_.erase(index);
  }
  // The name goes when the last master closes (devpts_pty_kill); the index
  // stays taken until the pair is gone (Release).
  std::shared_ptr<vfs::Inode> Node(int index) {
    absl::MutexLock l(&mu_);
    auto it = nodes_.find(index);
    return it == nodes_.end() ? nullptr : it->second.lock();
  }
  void Unname(int index) {
    absl::MutexLock l(&mu_);
    nodes_.erase(index);
  }
  void SetNode(int index, const vfs::InodeRef& node) {
    absl::MutexLock l(&mu_);
    nodes_[index] = node;
  }

 private:
  const dev_t dev_;
  timespec time_{};
  vfs::InodeRef ptmx_;
  absl::Mutex mu_;
  std::set<int> used_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::weak_ptr<vfs::Inode>> nodes_ ABSL_GUARDED_BY(mu_);
};

// A character device node of the terminals (the pty replica, ptmx,
// /dev/tty): fixed attributes but for the mode, owner and times.
class TtyNode : public vfs::Inode {
 public:
  TtyNode(dev_t fs_dev, uint64_t ino, dev_t rdev, mode_t mode, uid_t uid, gid_t gid)
      : fs_dev_(fs_dev), ino_(ino), rdev_(rdev), mode_(mode), uid_(uid), gid_(gid) {
    time_ = SandboxTimespec(CLOCK_REALTIME);
  }
  mode_t Type() override { return S_IFCHR; }
  bool Stream() override { return true; }
  Result<struct stat> Stat() override {
    struct stat st {};
    absl::MutexLock l(&mu_);
    st.st_dev = fs_dev_;
    st.st_ino = ino_;
    st.st_mode = S_IFCHR | mode_;
    st.st_nlink = 1;
    st.st_uid = uid_;
    st.st_gid = gid_;
    st.st_rdev = rdev_;
    st.st_blksize = 1024;
    st.st_atim = atime_.tv_sec != 0 ? atime_ : time_;
    st.st_mtim = mtime_.tv_sec != 0 ? mtime_ : time_;
    st.st_ctim = time_;
    return st;
  }
  Status SetAttributes(const vfs::SetAttr& a) override {
    absl::MutexLock l(&mu_);
    if (a.set_mode) mode_ = a.mode & 07777;
    if (a.set_uid) uid_ = a.uid;
    if (a.set_gid) gid_ = a.gid;
    if (a.set_atime) atime_ = a.atime;
    if (a.set_mtime) mtime_ = a.mtime;
    time_ = SandboxTimespec(CLOCK_REALTIME);
    return Ok();
  }
  // Reads and writes of a terminal touch its node's times, as tty_read and
  // tty_write do (who(1) and w(1) read them as idle times).
  void Touch(bool write) {
    absl::MutexLock l(&mu_);
    (write ? mtime_ : atime_) = SandboxTimespec(CLOCK_REALTIME);
  }

 protected:
  const dev_t fs_dev_;
  const uint64_t ino_;
  const dev_t rdev_;

 private:
  absl::Mutex mu_;
  mode_t mode_ ABSL_GUARDED_BY(mu_);
  uid_t uid_ ABSL_GUARDED_BY(mu_);
  gid_t gid_ ABSL_GUARDED_BY(mu_);
  timespec time_{}, atime_{}, mtime_{};
};

class ReplicaNode : public TtyNode {
 public:
  // The node does not keep the pair: its index is free again once the
  // last file of the pair closes, whatever dentries remain.
  ReplicaNode(dev_t fs_dev, const std::shared_ptr<Terminal>& t, gid_t gid)
      : TtyNode(fs_dev, uint64_t(t->index()) + 3, t->rdev(), kReplicaMode, t->uid(), gid),
        terminal_(t) {}
  Result<vfs::FileRef> Open(int flags) override;
  bool Revalidate() override {
    std::shared_ptr<Terminal> t = terminal_.lock();
    if (t == nullptr) return false;
    absl::MutexLock l(&t->mu);
    return !t->hung_up;
  }

 private:
  std::weak_ptr<Terminal> terminal_;
};

class PtmxNode : public TtyNode {
 public:
  // ino: 2 in the devpts instance; /dev/ptmx has one of its filesystem's.
  PtmxNode(dev_t fs_dev, uint64_t ino, std::weak_ptr<DevptsRoot> fs)
      : TtyNode(fs_dev, ino, makedev(5, 2), 0666, 0, 0), fs_(std::move(fs)) {}
  Result<vfs::FileRef> Open(int flags) override;
  // A new pair with its master open; uid owns the replica node.
  Result<vfs::FileRef> NewMaster(int flags, uid_t uid, gid_t gid);

 private:
  std::weak_ptr<DevptsRoot> fs_;
};

class DevTtyNode : public TtyNode {
 public:
  explicit DevTtyNode(dev_t fs_dev)
      : TtyNode(fs_dev, vfs::NextInodeNumber(), makedev(5, 0), 0666, 0, kTtyGroup) {}
  Result<vfs::FileRef> Open(int flags) override;
};

Result<vfs::InodeRef> DevptsRoot::Lookup(const std::string& name) {
  if (name == "ptmx") return ptmx_;
  int index = -1;
  if (name.empty() || name.size() > 5 || !std::all_of(name.begin(), name.end(), ::isdigit) ||
      (name.size() > 1 && name[0] == '0')) {
    return Errno{ENOENT};
  }
  index = std::stoi(name);
  absl::MutexLock l(&mu_);
  auto it = nodes_.find(index);
  if (it == nodes_.end()) return Errno{ENOENT};
  vfs::InodeRef node = it->second.lock();
  if (node == nullptr) return Errno{ENOENT};
  return node;
}

}  // namespace

Terminal::~Terminal() {
  if (fs_ != nullptr) fs_->Release(index_);
}

void Terminal::SetTermios(const KernelTermios& t) {
  const bool was_canon = termios.lflag & ICANON;
  termios = t;
  const bool canon = t.lflag & ICANON;
  if (was_canon && !canon) {
    // Lines and the partial line become plain input.
    for (const std::string& l : lines_) {
      raw_.insert(raw_.end(), l.begin(), l.end());
    }
    raw_.insert(raw_.end(), edit_.begin(), edit_.end());
    lines_.clear();
    edit_.clear();
  } else if (!was_canon && canon) {
    // What was typed becomes the start of the line being edited.
    edit_.append(raw_.begin(), raw_.end());
    raw_.clear();
  }
  if (!(t.iflag & IXON)) stopped = false;
  queue.Notify(~0U);
}

size_t Terminal::Input(const char* p, size_t n, Raises* raises) {
  size_t taken = 0;
  // Held bytes go first, in order.
  if (!pending_.empty()) FeedPending(raises);
  while (taken < n) {
    if (!pending_.empty() || !Receive(static_cast<uint8_t>(p[taken]), raises)) {
      if (pending_.size() >= kPendingCapacity) break;
      pending_.push_back(p[taken]);
    }
    taken++;
  }
  queue.Notify(~0U);
  return taken;
}

void Terminal::FeedPending(Raises* raises) {
  while (!pending_.empty() && Receive(static_cast<uint8_t>(pending_.front()), raises)) {
    pending_.pop_front();
  }
}

bool Terminal::Receive(uint8_t c, Raises* raises) {
  const KernelTermios t = termios;
  const bool canon = t.lflag & ICANON;
  bool full = false;
  if (InputBytes() >= kInputCapacity) {
    // Raw input waits for a reader; a canonical line that fills the buffer
    // still takes its end and edits, and drops other characters.
    if (!canon || !lines_.empty()) return false;
    full = true;
  }
  if (t.iflag & ISTRIP) c &= 0x7f;
  auto is = [&](int idx) { return t.cc[idx] != 0 && c == t.cc[idx]; };
  if (lnext_) {
    lnext_ = false;
  } else {
    if (t.iflag & IXON) {
      if (is(VSTART)) {
        stopped = false;
        return true;
      }
      if (is(VSTOP)) {
        stopped = true;
        return true;
      }
    }
    if (t.lflag & ISIG) {
      int sig = is(VINTR) ? SIGINT : is(VQUIT) ? SIGQUIT : is(VSUSP) ? SIGTSTP : 0;
      if (sig != 0) {
        if (pgrp != 0) raises->push_back({pgrp, 0, sig});
        if (!(t.lflag & NOFLSH)) {
          lines_.clear();
          edit_.clear();
          raw_.clear();
          output_.clear();
        }
        if (t.iflag & IXON) stopped = false;
        if (t.lflag & ECHO) EchoChar(c);
        return true;
      }
    }
    if (stopped && (t.iflag & IXON) && (t.iflag & IXANY)) stopped = false;
    if (c == '\r') {
      if (t.iflag & IGNCR) return true;
      if (t.iflag & ICRNL) c = '\n';
    } else if (c == '\n' && (t.iflag & INLCR)) {
      c = '\r';
    }
    if (canon) {
      if (is(VERASE) || is(VKILL) || (is(VWERASE) && (t.lflag & IEXTEN))) {
        Erase(c);
        return true;
      }
      if (is(VLNEXT) && (t.lflag & IEXTEN)) {
        lnext_ = true;
        if ((t.lflag & ECHO) && (t.lflag & ECHOCTL)) {
          Emit('^');
          Emit('\b');
        }
        return true;
      }
      if (is(VREPRINT) && (t.lflag & ECHO) && (t.lflag & IEXTEN)) {
        EchoChar(c);
        EchoRaw('\n');
        canon_column_ = column_;
        for (char e : edit_) EchoChar(static_cast<uint8_t>(e));
        return true;
      }
      if (c == '\n') {
        if (t.lflag & (ECHO | ECHONL)) EchoRaw('\n');
        EndLine("\n");
        return true;
      }
      if (is(VEOF)) {
        EndLine("");
        return true;
      }
      if (is(VEOL) || (is(VEOL2) && (t.lflag & IEXTEN))) {
        if (t.lflag & ECHO) {
          if (edit_.empty()) canon_column_ = column_;
          EchoChar(c);
        }
        EndLine(std::string(1, static_cast<char>(c)));
        return true;
      }
    }
  }
  if (full) return true;
  if (t.lflag & ECHO) {
    if (c == '\n') {
      EchoRaw('\n');
    } else {
      if (canon && edit_.empty()) canon_column_ = column_;
      EchoChar(c);
    }
  }
  if (canon) {
    edit_.push_back(static_cast<char>(c));
  } else {
    raw_.push_back(static_cast<char>(c));
  }
  return true;
}

void Terminal::EndLine(const std::string& tail) {
  lines_.push_back(edit_ + tail);
  edit_.clear();
}

int Terminal::ColumnAfter(const std::string& text) const {
  int col = canon_column_;
  for (char ch : text) {
    const auto c = static_cast<uint8_t>(ch);
    if (c == '\t') {
      col = (col | 7) + 1;
    } else if (IsControl(c)) {
      if (termios.lflag & ECHOCTL) col += 2;
    } else {
      col++;
    }
  }
  return col;
}

void Terminal::Erase(uint8_t c) {
  const KernelTermios t = termios;
  auto is = [&](int idx) { return t.cc[idx] != 0 && c == t.cc[idx]; };
  enum { kErase, kWordErase, kKill } kind = is(VERASE) ? kErase : is(VWERASE) ? kWordErase : kKill;
  if (edit_.empty()) return;
  if (kind == kKill) {
    if (!(t.lflag & ECHO)) {
      edit_.clear();
      return;
    }
    if (!(t.lflag & ECHOK) || !(t.lflag & ECHOKE) || !(t.lflag & ECHOE)) {
      edit_.clear();
      EchoChar(c);
      if (t.lflag & ECHOK) EchoRaw('\n');
      return;
    }
  }
  int seen_alnums = 0;
  while (!edit_.empty()) {
    const auto prev = static_cast<uint8_t>(edit_.back());
    if (kind == kWordErase) {
      // n_tty's word erase: BSD's ALTWERASE.
      if (isalnum(prev) || prev == '_') {
        seen_alnums++;
      } else if (seen_alnums > 0) {
        break;
      }
    }
    const int before = ColumnAfter(edit_);
    edit_.pop_back();
    if (t.lflag & ECHO) {
      if (kind == kErase && !(t.lflag & ECHOE)) {
        EchoChar(t.cc[VERASE]);
      } else if (prev == '\t') {
        for (int i = ColumnAfter(edit_); i < before; i++) Emit('\b');
        column_ = std::max(0, column_ - (before - ColumnAfter(edit_)));
      } else {
        const int times = IsControl(prev) ? ((t.lflag & ECHOCTL) ? 2 : 0) : 1;
        for (int i = 0; i < times; i++) {
          Emit('\b');
          Emit(' ');
          Emit('\b');
          if (column_ > 0) column_--;
        }
      }
    }
    if (kind == kErase) break;
  }
}

void Terminal::EchoChar(uint8_t c) {
  if ((termios.lflag & ECHOCTL) && IsControl(c) && c != '\t') {
    Emit('^');
    Emit(static_cast<char>(c ^ 0100));
    column_ += 2;
    return;
  }
  PutProcessed(c);
}

void Terminal::PutProcessed(uint8_t c) {
  const KernelTermios& t = termios;
  if (!(t.oflag & OPOST)) {
    Emit(static_cast<char>(c));
    return;
  }
  switch (c) {
    case '\n':
      if (t.oflag & ONLRET) column_ = 0;
      if (t.oflag & ONLCR) {
        canon_column_ = column_ = 0;
        Emit('\r');
        Emit('\n');
        return;
      }
      canon_column_ = column_;
      break;
    case '\r':
      if ((t.oflag & ONOCR) && column_ == 0) return;
      if (t.oflag & OCRNL) {
        c = '\n';
        if (t.oflag & ONLRET) canon_column_ = column_ = 0;
        break;
      }
      canon_column_ = column_ = 0;
      break;
    case '\t': {
      const int spaces = 8 - (column_ & 7);
      column_ += spaces;
      if ((t.oflag & TABDLY) == XTABS) {
        for (int i = 0; i < spaces; i++) Emit(' ');
        return;
      }
      break;
    }
    case '\b':
      if (column_ > 0) column_--;
      break;
    default:
      if (!IsControl(c)) {
        if (t.oflag & OLCUC) c = static_cast<uint8_t>(toupper(c));
        // A UTF-8 continuation byte takes no column under IUTF8.
        if (!((t.iflag & IUTF8) && (c & 0xc0) == 0x80)) column_++;
      }
      break;
  }
  Emit(static_cast<char>(c));
}

size_t Terminal::Output(const char* p, size_t n) {
  size_t done = 0;
  while (done < n && OutputRoom()) {
    PutProcessed(static_cast<uint8_t>(p[done]));
    done++;
  }
  if (done > 0) queue.Notify(POLLIN | POLLRDNORM);
  return done;
}

size_t Terminal::TakeOutput(char* p, size_t n) {
  const bool was_full = !OutputRoom();
  const size_t k = std::min(n, output_.size());
  std::copy_n(output_.begin(), k, p);
  output_.erase(output_.begin(), output_.begin() + static_cast<long>(k));
  if (k > 0 && was_full) queue.Notify(POLLOUT | POLLWRNORM);
  return k;
}

bool Terminal::InputReady(bool for_poll) const {
  if (termios.lflag & ICANON) return !lines_.empty();
  // input_available_p: poll waits for VMIN bytes when VTIME is 0.
  const size_t want =
      for_poll && termios.cc[VTIME] == 0 && termios.cc[VMIN] != 0 ? termios.cc[VMIN] : 1;
  return raw_.size() >= want;
}

size_t Terminal::TakeInput(char* p, size_t n) {
  size_t k = 0;
  if (termios.lflag & ICANON) {
    if (lines_.empty()) return 0;
    std::string& line = lines_.front();
    k = std::min(n, line.size());
    memcpy(p, line.data(), k);
    line.erase(0, k);
    if (line.empty() || k == 0) lines_.pop_front();
  } else {
    k = std::min(n, raw_.size());
    std::copy_n(raw_.begin(), k, p);
    raw_.erase(raw_.begin(), raw_.begin() + static_cast<long>(k));
  }
  return k;
}

size_t Terminal::InputQueued() const {
  if (!(termios.lflag & ICANON)) return raw_.size();
  size_t n = 0;
  for (const std::string& l : lines_) n += l.size();
  return n;
}

namespace {

void Hangup(Kernel& k, Terminal& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu);
Result<vfs::FileRef> OpenReplica(const std::shared_ptr<Terminal>& t, vfs::InodeRef node, int flags,
                                 bool noctty);

// What both ends share: no seeking, no positioned I/O.
class TtyFile : public vfs::File {
 public:
  TtyFile(vfs::InodeRef inode, int flags, std::shared_ptr<Terminal> t)
      : vfs::File(std::move(inode), flags), t_(std::move(t)) {}
  Result<size_t> PRead(char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<size_t> PWrite(const char*, size_t, uint64_t) override { return Errno{ESPIPE}; }
  Result<off_t> Seek(off_t, int) override { return Errno{ESPIPE}; }
  WaitQueue* EventQueue() override { return &t_->queue; }
  const std::shared_ptr<Terminal>& terminal() const { return t_; }

 protected:
  // Waits for the terminal to change (a task's blocking read or write):
  // false when a signal came (ERESTARTSYS) or the deadline passed.
  bool WaitForChange(Task* task, absl::Time deadline, bool* timed_out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(task->kernel().mu) {
    Status s = task->Block(deadline);
    if (timed_out != nullptr) *timed_out = !s.ok() && s.error() == ETIMEDOUT;
    return s.ok();
  }
  void TouchNode(bool write) {
    if (auto* node = dynamic_cast<TtyNode*>(inode_.get())) node->Touch(write);
  }

  std::shared_ptr<Terminal> t_;
};

Result<long> TerminalIoctl(TtyFile& f, Terminal& t, bool master, MemoryManager& mm,
                           unsigned long cmd, uintptr_t arg);

class MasterFile : public TtyFile {
 public:
  // node: the replica's node, which keeps the pts name while a master lives.
  MasterFile(vfs::InodeRef inode, int flags, std::shared_ptr<Terminal> t, vfs::InodeRef node)
      : TtyFile(std::move(inode), flags, std::move(t)), node_(std::move(node)) {
    absl::MutexLock l(&t_->mu);
    t_->masters++;
  }
  ~MasterFile() override {
    bool last;
    {
      absl::MutexLock l(&t_->mu);
      last = --t_->masters == 0;
      if (last) {
        t_->hung_up = true;
        t_->queue.Notify(~0U);
      }
    }
    if (!last) return;
    // pty_close: the replica side hangs up and its name goes. Files close
    // under the kernel lock: in a task's syscall or exit, or in the
    // console's owner.
    t_->fs().Unname(t_->index());
    Task* task = Kernel::Current();
    Kernel* k = task != nullptr ? &task->kernel() : console_kernel_;
    if (k != nullptr) {
      k->mu.AssertHeld();
      Hangup(*k, *t_);
    }
  }

  Result<size_t> Read(char* buf, size_t n) override {
    Task* task = Kernel::Current();
    for (;;) {
      {
        absl::MutexLock l(&t_->mu);
        size_t k = t_->TakeOutput(buf, n);
        if (k > 0 || n == 0) return k;
        // pty master: EIO once the replicas have closed (TTY_OTHER_CLOSED).
        if (t_->replica_closed) return Errno{EIO};
        if ((flags() & O_NONBLOCK) || task == nullptr) return Errno{EAGAIN};
        t_->queue.Add(&task->waiter, POLLIN | POLLHUP);
      }
      task->kernel().mu.AssertHeld();
      bool ok = WaitForChange(task, absl::InfiniteFuture(), nullptr);
      t_->queue.Remove(&task->waiter);
      if (!ok) return Errno{kERestartSys};
    }
  }

  Result<size_t> Write(const char* buf, size_t n) override {
    Task* task = Kernel::Current();
    size_t done = 0;
    for (;;) {
      Raises raises;
      {
        absl::MutexLock l(&t_->mu);
        done += t_->Input(buf + done, n - done, &raises);
        if (done < n && !((flags() & O_NONBLOCK) || task == nullptr)) {
          t_->queue.Add(&task->waiter, POLLOUT | POLLHUP);
        }
      }
      if (!raises.empty()) {
        Kernel& k = task != nullptr ? task->kernel() : *console_kernel_;
        k.mu.AssertHeld();
        SendRaises(k, raises);
      }
      if (done == n || n == 0) return done;
      if ((flags() & O_NONBLOCK) || task == nullptr) {
        return done > 0 ? Result<size_t>(done) : Errno{EAGAIN};
      }
      task->kernel().mu.AssertHeld();
      bool ok = WaitForChange(task, absl::InfiniteFuture(), nullptr);
      t_->queue.Remove(&task->waiter);
      if (!ok) return done > 0 ? Result<size_t>(done) : Errno{kERestartSys};
    }
  }

  uint32_t Readiness(uint32_t mask) override {
    absl::MutexLock l(&t_->mu);
    uint32_t ready = 0;
    if (t_->OutputQueued() > 0) ready |= POLLIN | POLLRDNORM;
    if (t_->PendingRoom()) ready |= POLLOUT | POLLWRNORM;
    if (t_->replica_closed) ready |= POLLHUP;
    return ready & (mask | POLLHUP | POLLERR);
  }

  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    return TerminalIoctl(*this, *t_, true, mm, cmd, arg);
  }

  // The kernel whose lock a master written outside any task (the console
  // bridge) holds.
  void set_console_kernel(Kernel* k) { console_kernel_ = k; }

 private:
  vfs::InodeRef node_;
  Kernel* console_kernel_ = nullptr;
};

// __tty_check_change: a background process of the terminal's session
// touching it. 0 to go on; EIO or ERESTARTSYS (after signalling its group)
// to stop.
int CheckChange(Task& task, Terminal& t, int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.kernel().mu) {
  ThreadGroup& g = task.tg();
  if (g.ctty.get() != &t) return 0;
  if (t.pgrp == 0 || g.pgid == t.pgrp) return 0;
  const bool ignored = (task.sigmask & SignalBit(sig)) ||
                       task.sigactions()[sig].handler == reinterpret_cast<uint64_t>(SIG_IGN);
  if (ignored) return sig == SIGTTIN ? EIO : 0;
  if (GroupOrphaned(task.kernel(), g.pgid)) return EIO;
  SendRaises(task.kernel(), {{g.pgid, 0, sig}});
  return kERestartSys;
}

class ReplicaFile : public TtyFile {
 public:
  ReplicaFile(vfs::InodeRef inode, int flags, std::shared_ptr<Terminal> t)
      : TtyFile(std::move(inode), flags, std::move(t)) {
    absl::MutexLock l(&t_->mu);
    t_->replicas++;
    t_->replica_closed = false;
    t_->queue.Notify(~0U);
  }
  ~ReplicaFile() override {
    absl::MutexLock l(&t_->mu);
    if (--t_->replicas == 0) t_->replica_closed = true;
    t_->queue.Notify(~0U);
  }

  Result<size_t> Read(char* buf, size_t n) override {
    Task* task = Kernel::Current();
    if (task != nullptr) {
      task->kernel().mu.AssertHeld();
      if (int e = CheckChange(*task, *t_, SIGTTIN); e != 0) return Errno{e};
    }
    TouchNode(false);
    ReadState st;
    for (;;) {
      Raises raises;
      std::optional<Result<size_t>> result;
      {
        absl::MutexLock l(&t_->mu);
        result = ReadStep(buf, n, task, &st, &raises);
        if (!result.has_value()) t_->queue.Add(&task->waiter, POLLIN | POLLHUP);
      }
      if (task != nullptr && !raises.empty()) {
        task->kernel().mu.AssertHeld();
        SendRaises(task->kernel(), raises);
      }
      if (result.has_value()) return *result;
      task->kernel().mu.AssertHeld();
      bool timed_out = false;
      bool ok = WaitForChange(task, st.deadline, &timed_out);
      t_->queue.Remove(&task->waiter);
      if (timed_out) return st.done;
      if (!ok) return st.done > 0 ? Result<size_t>(st.done) : Errno{kERestartSys};
    }
  }

  Result<size_t> Write(const char* buf, size_t n) override {
    Task* task = Kernel::Current();
    bool tostop;
    {
      absl::MutexLock l(&t_->mu);
      if (t_->hung_up) return Errno{EIO};  // hung_up_tty_write
      tostop = t_->termios.lflag & TOSTOP;
    }
    if (task != nullptr && tostop) {
      task->kernel().mu.AssertHeld();
      if (int e = CheckChange(*task, *t_, SIGTTOU); e != 0) return Errno{e};
    }
    TouchNode(true);
    size_t done = 0;
    for (;;) {
      {
        absl::MutexLock l(&t_->mu);
        if (t_->hung_up) return done > 0 ? Result<size_t>(done) : Errno{EIO};
        done += t_->Output(buf + done, n - done);
        if (done == n) return done;
        if ((flags() & O_NONBLOCK) || task == nullptr) {
          return done > 0 ? Result<size_t>(done) : Errno{EAGAIN};
        }
        t_->queue.Add(&task->waiter, POLLOUT | POLLHUP);
      }
      task->kernel().mu.AssertHeld();
      bool ok = WaitForChange(task, absl::InfiniteFuture(), nullptr);
      t_->queue.Remove(&task->waiter);
      if (!ok) return done > 0 ? Result<size_t>(done) : Errno{kERestartSys};
    }
  }

  uint32_t Readiness(uint32_t mask) override {
    absl::MutexLock l(&t_->mu);
    if (t_->hung_up) {
      // hung_up_tty_poll.
      return (POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM) &
             (mask | POLLHUP | POLLERR);
    }
    uint32_t ready = 0;
    if (t_->InputReady(true)) ready |= POLLIN | POLLRDNORM;
    if (t_->OutputRoom()) ready |= POLLOUT | POLLWRNORM;
    return ready & (mask | POLLHUP | POLLERR);
  }

  Result<long> Ioctl(MemoryManager& mm, unsigned long cmd, uintptr_t arg) override {
    {
      absl::MutexLock l(&t_->mu);
      // hung_up_tty_ioctl.
      if (t_->hung_up) return Errno{cmd == TIOCSPGRP ? ENOTTY : EIO};
    }
    return TerminalIoctl(*this, *t_, false, mm, cmd, arg);
  }

 private:
  struct ReadState {
    size_t done = 0;
    bool first = true;
    absl::Time deadline = absl::InfiniteFuture();
  };
  // One pass of n_tty_read: the result, or nothing to wait for more. In
  // canonical mode a read returns one line (a line ended by VEOF without
  // text reads as end of file). Otherwise VMIN and VTIME rule: MIN 0 makes
  // TIME an overall timeout for one byte (MIN and TIME 0: return at once);
  // MIN > 0 waits for MIN bytes, TIME then timing the gap after each batch.
  std::optional<Result<size_t>> ReadStep(char* buf, size_t n, Task* task, ReadState* st,
                                         Raises* raises) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t_->mu) {
    if (t_->hung_up) return Result<size_t>(st->done);  // hung_up_tty_read
    const KernelTermios tio = t_->termios;
    const bool canon = tio.lflag & ICANON;
    const size_t vmin = tio.cc[VMIN];
    const int vtime = tio.cc[VTIME];
    auto take = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(t_->mu) {
      st->done += t_->TakeInput(buf + st->done, n - st->done);
      t_->FeedPending(raises);
      t_->queue.Notify(POLLOUT | POLLWRNORM);
    };
    if (!canon && st->first) {
      st->first = false;
      if (vmin == 0) {
        if (vtime == 0) {
          take();
          return Result<size_t>(st->done);
        }
        st->deadline = MonotonicNow() + absl::Milliseconds(100 * vtime);
      }
    }
    if (n == 0) return Result<size_t>(size_t{0});
    if (t_->InputReady(false)) {
      take();
      if (canon || st->done >= std::min(std::max<size_t>(vmin, 1), n)) {
        return Result<size_t>(st->done);
      }
      if (vtime != 0) st->deadline = MonotonicNow() + absl::Milliseconds(100 * vtime);
    }
    if ((flags() & O_NONBLOCK) || task == nullptr) {
      return st->done > 0 ? Result<size_t>(st->done) : Result<size_t>(Errno{EAGAIN});
    }
    return std::nullopt;
  }
};

// __proc_set_tty: g's controlling terminal becomes t, with g's group in
// the foreground.
void ProcSetTty(ThreadGroup& g, const std::shared_ptr<Terminal>& t) {
  t->session = g.sid;
  t->pgrp = g.pgid;
  g.ctty = t;
}

// session_clear_tty: no process of session sid keeps t as its terminal.
void SessionClearTty(Kernel& k, int sid, const Terminal* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> p = k.FindTask(pid);
    if (p == nullptr) continue;
    p->kernel().mu.AssertHeld();
    ThreadGroup& g = p->tg();
    if (g.sid == sid && g.ctty.get() == t) g.ctty = nullptr;
  }
}

// disassociate_ctty for the caller's session: SIGHUP to the foreground
// group (with SIGCONT unless the leader is exiting), then the terminal
// belongs to no session.
void Disassociate(Kernel& k, ThreadGroup& g, bool on_exit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(k.mu) {
  std::shared_ptr<Terminal> t = g.ctty;
  if (t == nullptr) return;
  if (t->pgrp != 0) {
    Raises r{{t->pgrp, 0, SIGHUP}};
    if (!on_exit) r.push_back({t->pgrp, 0, SIGCONT});
    SendRaises(k, r);
  }
  SessionClearTty(k, g.sid, t.get());
  t->session = 0;
  t->pgrp = 0;
}

// __tty_hangup's tty_signal_session_leader: every process of the session
// loses the terminal, and its leader hears SIGHUP and SIGCONT.
void Hangup(Kernel& k, Terminal& t) {
  if (t.session == 0) return;
  Raises r;
  for (int pid : k.Pids()) {
    std::shared_ptr<Task> p = k.FindTask(pid);
    if (p == nullptr) continue;
    p->kernel().mu.AssertHeld();
    ThreadGroup& g = p->tg();
    if (g.sid != t.session || g.zombie) continue;
    if (g.ctty.get() == &t) g.ctty = nullptr;
    if (g.sid == g.tgid) {
      r.push_back({0, g.tgid, SIGHUP});
      r.push_back({0, g.tgid, SIGCONT});
    }
  }
  t.session = 0;
  t.pgrp = 0;
  SendRaises(k, r);
}

Result<long> SetTermiosIoctl(TtyFile& f, Terminal& t, MemoryManager& mm, unsigned long cmd,
                             uintptr_t arg) {
  Task* task = Kernel::Current();
  if (task != nullptr) {
    task->kernel().mu.AssertHeld();
    if (int e = CheckChange(*task, t, SIGTTOU); e != 0) return Errno{e};
  }
  const bool two = cmd == kTcSets2 || cmd == kTcSetsW2 || cmd == kTcSetsF2;
  KernelTermios in{};
  TRY(mm.CopyIn(arg, &in, two ? sizeof(in) : kTermiosSize));
  absl::MutexLock l(&t.mu);
  KernelTermios next = in;
  if (!two) {
    // The speeds follow the CBAUD bits of c_cflag (38400 is all a pty has).
    next.ispeed = t.termios.ispeed;
    next.ospeed = t.termios.ospeed;
  }
  if (cmd == TCSETSF || cmd == kTcSetsF2) t.FlushInput();
  t.SetTermios(next);
  return 0L;
}

Result<long> TerminalIoctl(TtyFile& f, Terminal& t, bool master, MemoryManager& mm,
                           unsigned long cmd, uintptr_t arg) {
  Task* task = Kernel::Current();
  auto is_ctty = [&] { return task != nullptr && task->tg().ctty.get() == &t; };
  switch (cmd) {
    case TCGETS:
    case kTcGets2: {
      KernelTermios out;
      {
        absl::MutexLock l(&t.mu);
        out = t.termios;
      }
      TRY(mm.CopyOut(arg, &out, cmd == TCGETS ? kTermiosSize : sizeof(out)));
      return 0L;
    }
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
    case kTcSets2:
    case kTcSetsW2:
    case kTcSetsF2:
      return SetTermiosIoctl(f, t, mm, cmd, arg);
    case TIOCGWINSZ: {
      WindowSize ws;
      {
        absl::MutexLock l(&t.mu);
        ws = t.winsize;
      }
      TRY(mm.CopyOut(arg, &ws, sizeof(ws)));
      return 0L;
    }
    case TIOCSWINSZ: {
      WindowSize ws;
      TRY(mm.CopyIn(arg, &ws, sizeof(ws)));
      if (task == nullptr) return Errno{EINVAL};
      task->kernel().mu.AssertHeld();
      bool changed;
      {
        absl::MutexLock l(&t.mu);
        changed = memcmp(&ws, &t.winsize, sizeof(ws)) != 0;
        t.winsize = ws;
      }
      if (changed && t.pgrp != 0) SendRaises(task->kernel(), {{t.pgrp, 0, SIGWINCH}});
      return 0L;
    }
    case FIONREAD: {
      int n;
      {
        absl::MutexLock l(&t.mu);
        n = static_cast<int>(master ? t.OutputQueued() : t.InputQueued());
      }
      TRY(mm.CopyOut(arg, &n, sizeof(n)));
      return 0L;
    }
    case TIOCOUTQ: {
      // A pty holds no output of its own: what is written is the other
      // side's input at once (pty_write).
      int n = 0;
      TRY(mm.CopyOut(arg, &n, sizeof(n)));
      return 0L;
    }
    case TCFLSH: {
      if (task != nullptr && !master) {
        task->kernel().mu.AssertHeld();
        if (int e = CheckChange(*task, t, SIGTTOU); e != 0) return Errno{e};
      }
      absl::MutexLock l(&t.mu);
      // The master's input is the replica's output and the other way round.
      const bool in = arg == TCIFLUSH || arg == TCIOFLUSH;
      const bool out = arg == TCOFLUSH || arg == TCIOFLUSH;
      if (!in && !out) return Errno{EINVAL};
      if (master ? out : in) t.FlushInput();
      if (master ? in : out) t.FlushOutput();
      t.queue.Notify(~0U);
      return 0L;
    }
    case TCXONC: {
      if (task != nullptr && !master) {
        task->kernel().mu.AssertHeld();
        if (int e = CheckChange(*task, t, SIGTTOU); e != 0) return Errno{e};
      }
      absl::MutexLock l(&t.mu);
      switch (arg) {
        case TCOOFF:
          t.stopped = true;
          break;
        case TCOON:
          t.stopped = false;
          break;
        case TCIOFF:
        case TCION:
          break;
        default:
          return Errno{EINVAL};
      }
      t.queue.Notify(~0U);
      return 0L;
    }
    case TCSBRK:
    case TCSBRKP:
    case TIOCSBRK:
    case TIOCCBRK:
      // Output is never held (see TIOCOUTQ), so draining is instant, and a
      // pty has no line to send a break on.
      return 0L;
    case TIOCGPGRP: {
      if (!master && !is_ctty()) return Errno{ENOTTY};
      int pgrp = t.pgrp;
      TRY(mm.CopyOut(arg, &pgrp, sizeof(pgrp)));
      return 0L;
    }
    case TIOCSPGRP: {
      if (task == nullptr) return Errno{ENOTTY};
      task->kernel().mu.AssertHeld();
      if (!master) {
        int e = CheckChange(*task, t, SIGTTOU);
        if (e == EIO) return Errno{ENOTTY};
        if (e != 0) return Errno{e};
      }
      ThreadGroup& g = task->tg();
      if (g.ctty.get() != &t || t.session != g.sid) return Errno{ENOTTY};
      int pgrp;
      TRY(mm.CopyIn(arg, &pgrp, sizeof(pgrp)));
      if (pgrp < 0) return Errno{EINVAL};
      int sid = SessionOfGroup(task->kernel(), pgrp);
      if (sid == 0) return Errno{ESRCH};
      if (sid != g.sid) return Errno{EPERM};
      t.pgrp = pgrp;
      return 0L;
    }
    case TIOCGSID: {
      if (!master && !is_ctty()) return Errno{ENOTTY};
      if (t.session == 0) return Errno{ENOTTY};
      int sid = t.session;
      TRY(mm.CopyOut(arg, &sid, sizeof(sid)));
      return 0L;
    }
    case TIOCSCTTY: {
      if (task == nullptr) return Errno{EPERM};
      task->kernel().mu.AssertHeld();
      ThreadGroup& g = task->tg();
      const bool leader = g.sid == g.tgid;
      if (leader && t.session == g.sid) return 0L;
      if (!leader || g.ctty != nullptr) return Errno{EPERM};
      if (t.session != 0) {
        // Stealing another session's terminal (arg 1) needs CAP_SYS_ADMIN.
        if (arg != 1 || !task->Capable(CAP_SYS_ADMIN)) return Errno{EPERM};
        SessionClearTty(task->kernel(), t.session, &t);
      }
      if (!f.readable() && !task->Capable(CAP_SYS_ADMIN)) return Errno{EPERM};
      ProcSetTty(g, f.terminal());
      return 0L;
    }
    case TIOCNOTTY: {
      if (master || !is_ctty()) return Errno{ENOTTY};
      task->kernel().mu.AssertHeld();
      ThreadGroup& g = task->tg();
      if (g.sid == g.tgid) {
        Disassociate(task->kernel(), g, false);
      } else {
        g.ctty = nullptr;
      }
      return 0L;
    }
    case TIOCEXCL:
    case TIOCNXCL: {
      absl::MutexLock l(&t.mu);
      t.exclusive = cmd == TIOCEXCL;
      return 0L;
    }
    case TIOCGEXCL: {
      int v;
      {
        absl::MutexLock l(&t.mu);
        v = t.exclusive ? 1 : 0;
      }
      TRY(mm.CopyOut(arg, &v, sizeof(v)));
      return 0L;
    }
    case TIOCGETD: {
      int ldisc = 0;  // N_TTY
      TRY(mm.CopyOut(arg, &ldisc, sizeof(ldisc)));
      return 0L;
    }
    case TIOCSETD: {
      int ldisc;
      TRY(mm.CopyIn(arg, &ldisc, sizeof(ldisc)));
      return ldisc == 0 ? Result<long>(0L) : Errno{EINVAL};
    }
    case TIOCSTI: {
      // Typing into a terminal: its own controlling process's, or an
      // administrator's.
      if (task == nullptr) return Errno{EPERM};
      if (!is_ctty() && !task->Capable(CAP_SYS_ADMIN)) return Errno{EPERM};
      char c;
      TRY(mm.CopyIn(arg, &c, 1));
      Raises raises;
      {
        absl::MutexLock l(&t.mu);
        t.Input(&c, 1, &raises);
      }
      task->kernel().mu.AssertHeld();
      SendRaises(task->kernel(), raises);
      return 0L;
    }
    default:
      break;
  }
  if (!master) return Errno{ENOTTY};
  switch (cmd) {
    case TIOCGPTN: {
      unsigned index = static_cast<unsigned>(t.index());
      TRY(mm.CopyOut(arg, &index, sizeof(index)));
      return 0L;
    }
    case TIOCSPTLCK: {
      int lock;
      TRY(mm.CopyIn(arg, &lock, sizeof(lock)));
      absl::MutexLock l(&t.mu);
      t.locked = lock != 0;
      return 0L;
    }
    case TIOCGPTLCK: {
      int lock;
      {
        absl::MutexLock l(&t.mu);
        lock = t.locked ? 1 : 0;
      }
      TRY(mm.CopyOut(arg, &lock, sizeof(lock)));
      return 0L;
    }
    case TIOCGPTPEER: {
      // The replica, opened without a path walk (the caller's devpts may
      // be out of reach): its name is found from the master's.
      if (task == nullptr) return Errno{EINVAL};
      task->kernel().mu.AssertHeld();
      const int oflags = static_cast<int>(arg);
      if (oflags & ~(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) return Errno{EINVAL};
      std::shared_ptr<vfs::Inode> node = t.fs().Node(t.index());
      if (node == nullptr) return Errno{EIO};
      ASSIGN_OR_RETURN(vfs::FileRef peer,
                       OpenReplica(f.terminal(), node, oflags & ~O_CLOEXEC, false));
      if (f.dentry() != nullptr && f.dentry()->parent() != nullptr) {
        vfs::DentryRef dir = f.dentry()->parent();
        if (dir->inode().get() != &t.fs()) {
          // /dev/ptmx, a link to pts/ptmx: the replica is under pts/.
          Result<vfs::DentryRef> pts = vfs::Resolve(task->fs(), dir, "pts", true);
          dir = pts.ok() ? *pts : nullptr;
        }
        if (dir != nullptr) {
          Result<vfs::DentryRef> d =
              vfs::Resolve(task->fs(), dir, std::to_string(t.index()), false);
          if (d.ok() && (*d)->inode() == node) peer->set_dentry(*d);
        }
      }
      ASSIGN_OR_RETURN(int fd, task->fds().Add(std::move(peer), (oflags & O_CLOEXEC) != 0));
      return static_cast<long>(fd);
    }
    case TIOCPKT: {
      // Packet mode is not kept; turning it off is what every caller that
      // does not use it asks.
      int on;
      TRY(mm.CopyIn(arg, &on, sizeof(on)));
      return on == 0 ? Result<long>(0L) : Errno{EINVAL};
    }
    case TIOCGPKT: {
      int on = 0;
      TRY(mm.CopyOut(arg, &on, sizeof(on)));
      return 0L;
    }
    default:
      return Errno{ENOTTY};
  }
}

// Opens the replica of t through `node` (the pts node or /dev/tty); a
// session leader without a terminal acquires it unless noctty
// (tty_open_proc_set_tty).
Result<vfs::FileRef> OpenReplica(const std::shared_ptr<Terminal>& t, vfs::InodeRef node, int flags,
                                 bool noctty) {
  Task* task = Kernel::Current();
  {
    absl::MutexLock l(&t->mu);
    if (t->hung_up) return Errno{EIO};
    if (t->locked) return Errno{EIO};
    if (t->exclusive && (task == nullptr || !task->Capable(CAP_SYS_ADMIN))) return Errno{EBUSY};
  }
  auto f = std::make_shared<ReplicaFile>(std::move(node), flags, t);
  if (task != nullptr && !noctty && !(flags & O_NOCTTY)) {
    task->kernel().mu.AssertHeld();
    ThreadGroup& g = task->tg();
    if (g.sid == g.tgid && g.ctty == nullptr && t->session == 0 && f->readable()) {
      ProcSetTty(g, t);
    }
  }
  return vfs::FileRef(f);
}

Result<vfs::FileRef> ReplicaNode::Open(int flags) {
  std::shared_ptr<Terminal> t = terminal_.lock();
  if (t == nullptr) return Errno{EIO};
  return OpenReplica(t, shared_from_this(), flags, false);
}

Result<vfs::FileRef> PtmxNode::NewMaster(int flags, uid_t uid, gid_t gid) {
  std::shared_ptr<DevptsRoot> fs = fs_.lock();
  if (fs == nullptr) return Errno{ENODEV};
  ASSIGN_OR_RETURN(int index, fs->AllocateIndex());
  auto t = std::make_shared<Terminal>(index, uid, fs);
  auto node = std::make_shared<ReplicaNode>(fs->dev(), t, gid);
  fs->SetNode(index, node);
  return vfs::FileRef(std::make_shared<MasterFile>(shared_from_this(), flags, t, node));
}

Result<vfs::FileRef> PtmxNode::Open(int flags) {
  Task* task = Kernel::Current();
  const uid_t uid = task != nullptr ? task->fsuid : 0;
  return NewMaster(flags, uid, kTtyGroup);
}

Result<vfs::FileRef> DevTtyNode::Open(int flags) {
  Task* task = Kernel::Current();
  if (task == nullptr) return Errno{ENXIO};
  task->kernel().mu.AssertHeld();
  ThreadGroup& g = task->tg();
  std::shared_ptr<Terminal> t = g.ctty;
  if (t == nullptr || t->session != g.sid) return Errno{ENXIO};
  return OpenReplica(t, shared_from_this(), flags, true);
}

}  // namespace

vfs::InodeRef NewDevpts() {
  auto root = std::make_shared<DevptsRoot>();
  root->Init(std::make_shared<PtmxNode>(root->dev(), 2, root));
  return root;
}

vfs::InodeRef NewTtyDevice(dev_t fs_dev) { return std::make_shared<DevTtyNode>(fs_dev); }

vfs::InodeRef NewPtmxDevice(dev_t fs_dev, const vfs::InodeRef& devpts) {
  auto root = std::dynamic_pointer_cast<DevptsRoot>(devpts);
  return std::make_shared<PtmxNode>(fs_dev, vfs::NextInodeNumber(), root);
}

Result<Pair> OpenPair(Kernel& k, const vfs::DentryRef& devpts) {
  auto* root = dynamic_cast<DevptsRoot*>(devpts->inode().get());
  if (root == nullptr) return Errno{EINVAL};
  auto* ptmx = dynamic_cast<PtmxNode*>(root->ptmx().get());
  ASSIGN_OR_RETURN(vfs::FileRef master, ptmx->NewMaster(O_RDWR, 0, kTtyGroup));
  auto& m = static_cast<MasterFile&>(*master);
  m.set_console_kernel(&k);
  const std::shared_ptr<Terminal>& t = m.terminal();
  {
    absl::MutexLock l(&t->mu);
    t->locked = false;
  }
  std::shared_ptr<vfs::Inode> node = root->Node(t->index());
  ASSIGN_OR_RETURN(vfs::FileRef replica, OpenReplica(t, node, O_RDWR, true));
  if (Result<vfs::DentryRef> d = devpts->Child("ptmx"); d.ok()) master->set_dentry(*d);
  if (Result<vfs::DentryRef> d = devpts->Child(std::to_string(t->index())); d.ok()) {
    replica->set_dentry(*d);
  }
  return Pair{std::move(master), std::move(replica)};
}

void SetControllingTerminal(ThreadGroup& g, vfs::File& replica) {
  if (auto* f = dynamic_cast<TtyFile*>(&replica)) ProcSetTty(g, f->terminal());
}

void SetWindowSize(Kernel& k, vfs::File& master, const WindowSize& ws) {
  auto* f = dynamic_cast<TtyFile*>(&master);
  if (f == nullptr) return;
  Terminal& t = *f->terminal();
  bool changed;
  {
    absl::MutexLock l(&t.mu);
    changed = memcmp(&ws, &t.winsize, sizeof(ws)) != 0;
    t.winsize = ws;
  }
  if (changed && t.pgrp != 0) SendRaises(k, {{t.pgrp, 0, SIGWINCH}});
}

bool IsMaster(const vfs::File& f) { return dynamic_cast<const MasterFile*>(&f) != nullptr; }

void DropControllingTerminal(ThreadGroup& g) { g.ctty = nullptr; }

void SessionLeaderExit(Kernel& k, ThreadGroup& g) {
  if (g.sid != g.tgid || g.ctty == nullptr) return;
  Disassociate(k, g, true);
}

StatFields ProcStatFields(const ThreadGroup& g) {
  StatFields out;
  const Terminal* t = g.ctty.get();
  if (t == nullptr) return out;
  // new_encode_dev.
  const unsigned major = kPtyReplicaMajor, minor = static_cast<unsigned>(t->index());
  out.tty_nr = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
  out.tpgid = t->pgrp;
  return out;
}

}  // namespace husk::tty
