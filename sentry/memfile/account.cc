#include "sentry/memfile/account.h"

#include <new>

namespace husk {

MemoryAccount& MemoryAccount::Sandbox() {
  static auto* account = new MemoryAccount();  // never destroyed: pages outlive statics
  return *account;
}

bool MemoryAccount::TryCharge(uint64_t bytes) {
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
