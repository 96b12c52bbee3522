#include "sentry/vfs/external.h"

#include <atomic>
#include <utility>

#include "absl/base/const_init.h"
#include "absl/synchronization/mutex.h"

namespace husk::vfs {
namespace {

std::atomic<void (*)(const std::vector<ExternalEvent>&)> g_event_hook{nullptr};
std::atomic<void (*)()> g_wake_hook{nullptr};

// Sources, never destroyed (they outlive static destructors' order).
ABSL_CONST_INIT absl::Mutex g_mu(absl::kConstInit);
std::atomic<bool> g_have_sources{false};
std::vector<std::function<void()>>& Sources() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* s = new std::vector<std::function<void()>>();
  return *s;
}

}  // namespace

void SetExternalEventHook(void (*hook)(const std::vector<ExternalEvent>&)) {
  g_event_hook.store(hook);
}
void SetExternalWakeHook(void (*hook)()) { g_wake_hook.store(hook); }

void AddExternalEventSource(std::function<void()> drain) {
  absl::MutexLock l(&g_mu);
  Sources().push_back(std::move(drain));
  g_have_sources.store(true, std::memory_order_release);
}

void DeliverExternalEvents(const std::vector<ExternalEvent>& events) {
  if (events.empty()) return;
  if (auto hook = g_event_hook.load()) hook(events);
}

void WakeExternalReaders() {
  if (auto hook = g_wake_hook.load()) hook();
}

void DrainExternalEvents() {
  if (!g_have_sources.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> sources;
  {
    absl::MutexLock l(&g_mu);
    sources = Sources();
  }
  for (const auto& drain : sources) drain();
}

}  // namespace husk::vfs
