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
  if (reclaim == nullptr) return false;
  // Caches first give back what they alone hold (at least 1 MiB at a time,
  // so that a run of small charges does not reclaim page by page).
  reclaim(std::max<size_t>(bytes / 4096 + 1, 256));
  return TryChargeOnce(bytes);
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
