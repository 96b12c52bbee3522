#include "sentry/kernel/pidfd.h"

#include <fcntl.h>
#include <poll.h>

#include "sentry/kernel/anon.h"

namespace husk::pidfd {
namespace {

class PidFile : public anon::AnonFile {
 public:
  PidFile(std::shared_ptr<ThreadGroup> group, int flags)
      : AnonFile(O_RDWR | (flags & O_NONBLOCK), "[pidfd]"), group_(std::move(group)) {}

  const std::shared_ptr<ThreadGroup>& group() const { return group_; }

  // The zombie flag is set under the big lock, which every poll holds.
  uint32_t Readiness(uint32_t mask) override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return group_->zombie ? (POLLIN | POLLRDNORM) & mask : 0;
  }
  WaitQueue* EventQueue() override { return &group_->exit_events; }

 private:
  std::shared_ptr<ThreadGroup> group_;
};

}  // namespace

vfs::FileRef New(std::shared_ptr<ThreadGroup> group, int flags) {
  return std::make_shared<PidFile>(std::move(group), flags);
}

std::shared_ptr<ThreadGroup> GroupOf(const vfs::File& file) {
  const auto* p = dynamic_cast<const PidFile*>(&file);
  return p != nullptr ? p->group() : nullptr;
}

}  // namespace husk::pidfd
