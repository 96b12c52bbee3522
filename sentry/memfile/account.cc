#include "sentry/memfile/account.h"

#include <algorithm>
#include <new>

namespace husk {

MemoryAccount& MemoryAccount::Sandbox() {
  static auto* account = new MemoryAccount();  // never destroyed: pages outlive statics
  return *account;
}

bool MemoryAccount::TryCharge(uint64_t bytes) {
  if (TryChargeOnce(bytes)) return true;
  Reclaimer reclaim = reclaimer_.load();
  // Caches first give back what they alone hold (at least 1 MiB at a time,
  // so that a run of small charges does not reclaim page by page).
  if (reclaim != nullptr) reclaim(std::max<size_t>(bytes / 4096 + 1, 256));
  // Freed memory the host has not taken back yet (a cache's reclaimed pages
  // among it) counts until it has: wait for it rather than fail.
  for (;;) {
    if (TryChargeOnce(bytes)) return true;
    absl::MutexLock l(&release_mu_);
    if (releasing_.load() == 0) return TryChargeOnce(bytes);
    released_.Wait(&release_mu_);
  }
}

void MemoryAccount::ReleaseDone(uint64_t bytes) {
  Uncharge(bytes);
  absl::MutexLock l(&release_mu_);
  releasing_.fetch_sub(bytes);
  released_.SignalAll();
}

bool MemoryAccount::TryChargeOnce(uint64_t bytes) {
  uint64_t cur = used_.load();
  do {
    if (bytes > limit_.load() || cur > limit_.load() - bytes) return false;
  } while (!used_.compare_exchange_weak(cur, cur + bytes));
  return true;
}

void AccountedPageDeleter::operator()(char* p) const {
  delete[] p;
  MemoryAccount::Sandbox().Uncharge(kAccountedPageSize);
}

AccountedPage NewAccountedPage() {
  if (!MemoryAccount::Sandbox().TryCharge(kAccountedPageSize)) return nullptr;
  char* p = new (std::nothrow) char[kAccountedPageSize]();
  if (p == nullptr) {
    MemoryAccount::Sandbox().Uncharge(kAccountedPageSize);
    return nullptr;
  }
  return AccountedPage(p);
}

}  // namespace husk
