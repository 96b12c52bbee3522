// Fuzzes the gofer's request loop (gofer::Serve) from the sentry's side of
// its socket. The input is cut into frames at every kSplit marker; each
// goes out as one SOCK_SEQPACKET packet, a valid wire::FrameHeader followed
// by the bytes as the (possibly invalid) protobuf Request, or, when the
// chunk starts with kRaw, as the raw packet (bad headers, short packets).
// Serve runs read-only in a thread over a small fixed tree: files, a
// subdirectory, a fifo, a socket, and symlinks that point outside it.
//
// Checked: Serve returns (any status) and answers only with well-formed
// frames; every descriptor it donates is a regular file of the tree; the
// tree and the directory around it are unchanged (read-only, and nothing
// outside the tree is ever touched).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "base/fd.h"
#include "gofer/server.h"
#include "gofer/wire.h"
#include "proto/gofer.pb.h"

namespace husk::gofer {
namespace {

constexpr std::string_view kSplit = "\xff\xfe";
constexpr char kRaw = '\xfd';
constexpr size_t kMaxFrames = 64;
constexpr int kHangMs = 10000;  // Serve answering nothing for this long is a hang

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "gofer_request_fuzz: %s\n", what);
    abort();
  }
}

// What must never change: mode, size, links, times of modification and
// change (not access: reading is allowed).
struct Snapshot {
  std::vector<struct stat> st;
  bool operator==(const Snapshot& o) const {
    if (st.size() != o.st.size()) return false;
    for (size_t i = 0; i < st.size(); i++) {
      const struct stat &a = st[i], &b = o.st[i];
      if (a.st_ino != b.st_ino || a.st_mode != b.st_mode || a.st_size != b.st_size ||
          a.st_nlink != b.st_nlink || a.st_mtim.tv_sec != b.st_mtim.tv_sec ||
          a.st_mtim.tv_nsec != b.st_mtim.tv_nsec || a.st_ctim.tv_sec != b.st_ctim.tv_sec ||
          a.st_ctim.tv_nsec != b.st_ctim.tv_nsec) {
        return false;
      }
    }
    return true;
  }
};

class World {
 public:
  // <tmp>/husk_gofer_fuzz.XXXXXX/{tree/..., outside/secret}; tree is served.
  World() {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/husk_gofer_fuzz.XXXXXX";
    Check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    base_ = tmpl;
    const std::string tree = base_ + "/tree", outside = base_ + "/outside";
    Check(mkdir(tree.c_str(), 0755) == 0 && mkdir(outside.c_str(), 0755) == 0 &&
              mkdir((tree + "/subdir").c_str(), 0755) == 0,
          "mkdir failed");
    WriteFile(outside + "/secret", "outside the tree");
    WriteFile(tree + "/file", "hello, gofer");
    WriteFile(tree + "/empty", "");
    WriteFile(tree + "/subdir/inner", "inner");
    Check(symlink("../outside/secret", (tree + "/link_out").c_str()) == 0 &&
              symlink((outside + "/secret").c_str(), (tree + "/link_abs").c_str()) == 0 &&
              symlink("../outside", (tree + "/link_dir").c_str()) == 0 &&
              symlink("link_loop", (tree + "/link_loop").c_str()) == 0 &&
              symlink("..", (tree + "/subdir/up").c_str()) == 0 &&
              mkfifo((tree + "/fifo").c_str(), 0644) == 0,
          "cannot build the tree");
    MakeSocketFile(tree + "/sock");
    for (const char* f : {"/file", "/empty", "/subdir/inner"}) {
      struct stat st;
      Check(stat((tree + f).c_str(), &st) == 0, "stat failed");
      files_.emplace(st.st_dev, st.st_ino);
    }
    watched_ = {base_,          outside,          outside + "/secret",   tree,
                tree + "/file", tree + "/subdir", tree + "/subdir/inner"};
    before_ = Take();
  }

  ~World() {
    // At a normal exit; a crash leaves the directory for study.
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }

  void Run(const uint8_t* data, size_t size) {
    std::vector<std::string> packets =
        Packets(std::string_view(reinterpret_cast<const char*>(data), size));

    int sv[2];
    Check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair failed");
    UniqueFd client(sv[0]);
    UniqueFd root(open((base_ + "/tree").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    Check(root.valid(), "cannot open the tree");
    absl::Status status;
    std::thread server([&status, s = sv[1], r = root.Release()] {
      status = Serve(UniqueFd(s), UniqueFd(r), /*read_only=*/true);
    });
    Check(fcntl(client.get(), F_SETFL, O_NONBLOCK) == 0, "fcntl failed");

    // Send while reading the answers, so neither side's buffer fills up.
    size_t sent = 0, answers = 0;
    bool shut = false;
    for (;;) {
      if (!shut && sent == packets.size()) {
        shutdown(client.get(), SHUT_WR);  // Serve sees the hang-up and returns
        shut = true;
      }
      pollfd p{client.get(), static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
      int n = poll(&p, 1, kHangMs);
      if (n < 0 && errno == EINTR) continue;  // libFuzzer's SIGALRM (-timeout)
      if (n == 0) {
        fprintf(stderr, "gofer_request_fuzz: %zu of %zu packets sent, %zu answers, %s\n", sent,
                packets.size(), answers, shut ? "shut down" : "sending");
        DumpThreads();
      }
      Check(n >= 0, "poll failed");
      Check(n > 0, "the gofer hangs");
      if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        auto frame = wire::Recv(client.get(), wire::Kind::kResponse);
        if (!frame.ok()) {
          // Serve closed with requests unread (it stopped at a framing
          // error): the socket reports ECONNRESET.
          Check(absl::IsUnavailable(frame.status()), "the gofer sent a malformed frame");
          break;
        }
        if (!frame->has_value()) break;  // Serve returned
        answers++;
        CheckAnswer(**frame);
        continue;
      }
      if (!shut && (p.revents & POLLOUT)) {
        const std::string& pkt = packets[sent];
        ssize_t w = send(client.get(), pkt.data(), pkt.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w >= 0) {
          sent++;
        } else if (errno != EAGAIN && errno != EINTR) {
          sent = packets.size();  // Serve is gone; read what it left
        }
      }
    }
    server.join();
    if (verbose_) fprintf(stderr, "gofer_request_fuzz: Serve: %s\n", status.ToString().c_str());
    Check(answers <= sent, "more answers than requests");
    Check(Take() == before_, "the tree or the directory around it changed");
  }

 private:
  static void WriteFile(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
    Check(out.good(), "cannot write a file");
  }

  static void MakeSocketFile(const std::string& path) {
    UniqueFd s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    Check(s.valid() && path.size() < sizeof(addr.sun_path), "cannot make a socket");
    memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    Check(bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, "bind failed");
  }

  // Where each thread of this process waits (for a hang's report).
  static void DumpThreads() {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::string line;
      for (const char* f : {"comm", "wchan", "syscall"}) {
        std::ifstream in(task.path() / f);
        std::string v;
        std::getline(in, v);
        line += std::string(" ") + f + "=" + v;
      }
      fprintf(stderr, "gofer_request_fuzz: thread %s:%s\n", task.path().filename().c_str(),
              line.c_str());
    }
  }

  static std::vector<std::string> Packets(std::string_view in) {
    std::vector<std::string> out;
    while (out.size() < kMaxFrames) {
      size_t cut = in.find(kSplit);
      std::string_view chunk = in.substr(0, cut);
      if (!chunk.empty() && chunk[0] == kRaw) {
        out.emplace_back(chunk.substr(1));
      } else {
        wire::FrameHeader h{wire::kMagic, wire::kVersion,
                            static_cast<uint16_t>(wire::Kind::kRequest),
                            static_cast<uint32_t>(chunk.size())};
        std::string pkt(reinterpret_cast<const char*>(&h), sizeof(h));
        pkt.append(chunk);
        out.push_back(std::move(pkt));
      }
      if (cut == std::string_view::npos) break;
      in.remove_prefix(cut + kSplit.size());
    }
    return out;
  }

  void CheckAnswer(const wire::Frame& frame) const {
    proto::Response resp;
    Check(resp.ParseFromString(frame.payload), "an answer that is not a Response");
    Check(resp.err() >= 0 && resp.err() < 4096, "an answer with a bad errno");
    if (verbose_) {
      fprintf(stderr, "gofer_request_fuzz: answer %s%s\n", resp.ShortDebugString().c_str(),
              frame.fd.valid() ? " + fd" : "");
    }
    if (frame.fd.valid()) {
      Check(resp.has_open() && resp.err() == 0, "a descriptor with an answer not to Open");
      struct stat st;
      Check(fstat(frame.fd.get(), &st) == 0, "fstat failed");
      Check(S_ISREG(st.st_mode) && files_.count({st.st_dev, st.st_ino}) == 1,
            "a donated descriptor that is not a regular file of the tree");
      int fl = fcntl(frame.fd.get(), F_GETFL);
      Check(fl >= 0 && (fl & O_ACCMODE) == O_RDONLY,
            "a writable descriptor from a read-only gofer");
    }
  }

  Snapshot Take() const {
    Snapshot s;
    for (const auto& path : watched_) {
      struct stat st;
      Check(lstat(path.c_str(), &st) == 0, "a watched file is gone");
      s.st.push_back(st);
    }
    return s;
  }

  std::string base_;
  std::set<std::pair<dev_t, ino_t>> files_;  // the tree's regular files
  std::vector<std::string> watched_;
  Snapshot before_;
  const bool verbose_ = getenv("HUSK_FUZZ_VERBOSE") != nullptr;  // the outcome of each input
};

}  // namespace
}  // namespace husk::gofer

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static husk::gofer::World world;  // removed at exit
  world.Run(data, size);
  return 0;
}
