#include "sentry/memfile/memfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace husk {

Result<std::unique_ptr<MemoryFile>> MemoryFile::Create(size_t max_bytes) {
  max_bytes = PageUp(max_bytes);
  // Not close-on-exec is irrelevant (the sentry never execs); stubs reach it
  // through their shared fd table.
  UniqueFd fd(memfd_create("husk-memory", MFD_CLOEXEC));
  if (!fd) return Errno{errno};
  if (ftruncate(fd.get(), static_cast<off_t>(max_bytes)) != 0) return Errno{errno};
  void* base = mmap(nullptr, max_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                    fd.get(), 0);
  if (base == MAP_FAILED) return Errno{errno};
  return std::unique_ptr<MemoryFile>(
      new MemoryFile(std::move(fd), static_cast<char*>(base), max_bytes));
}

MemoryFile::~MemoryFile() { munmap(base_, size_); }

Result<uint64_t> MemoryFile::Allocate(size_t pages) {
  if (pages == 0) return Errno{EINVAL};
  absl::MutexLock l(&mu_);
  if (pages == 1 && !free_pages_.empty()) {
    uint64_t off = free_pages_.back();
    free_pages_.pop_back();
    used_ += kPageSize;
    return off;
  }
  // Divides rather than multiplies: pages * kPageSize can wrap.
  if (pages > (size_ - next_) / kPageSize) return Errno{ENOMEM};
  uint64_t off = next_;
  next_ += pages * kPageSize;
  used_ += pages * kPageSize;
  return off;
}

void MemoryFile::Free(uint64_t offset, size_t pages) {
  // Punching the hole both releases the memory and makes the pages read as
  // zeros when they are handed out again.
  fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
            static_cast<off_t>(pages * kPageSize));
  absl::MutexLock l(&mu_);
  for (size_t i = 0; i < pages; i++) free_pages_.push_back(offset + i * kPageSize);
  used_ -= pages * kPageSize;
}

size_t MemoryFile::used_bytes() const {
  absl::MutexLock l(&mu_);
  return used_;
}

}  // namespace husk
