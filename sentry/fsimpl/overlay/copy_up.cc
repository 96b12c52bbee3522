// Copy-up: giving a lower object an upper copy before it changes.
#include <errno.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "base/deferred_release.h"
#include "sentry/fsimpl/overlay/inode.h"

namespace husk::overlay {
namespace {

constexpr size_t kCopyChunk = 64 * 1024;

// Copies a regular file's data. Zero chunks are skipped so that holes (and
// zero runs) stay sparse in the upper; the size is set at the end.
Status CopyData(const vfs::InodeRef& lower, const vfs::InodeRef& upper) {
  // Through an open file rather than ReadAt: a gofer file reads from its
  // donated host fd.
  ASSIGN_OR_RETURN(vfs::FileRef in, lower->Open(O_RDONLY));
  std::vector<char> buf(kCopyChunk);
  uint64_t offset = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, in->PRead(buf.data(), buf.size(), offset));
    if (n == 0) break;
    bool zeros = std::all_of(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n),
                             [](char c) { return c == 0; });
    for (size_t done = 0; !zeros && done < n;) {
      ASSIGN_OR_RETURN(size_t w, upper->WriteAt(buf.data() + done, n - done, offset + done));
      if (w == 0) return Errno{EIO};
      done += w;
    }
    offset += n;
  }
  if (offset == 0) return Ok();
  vfs::SetAttr size;
  size.set_size = true;
  size.size = offset;
  return upper->SetAttributes(size);
}

vfs::SetAttr TimesOf(const struct stat& st) {
  vfs::SetAttr a;
  a.set_atime = a.set_mtime = true;
  a.atime = st.st_atim;
  a.mtime = st.st_mtim;
  return a;
}

}  // namespace

// Every inode of one overlay shares fs_->mu, which the caller holds; the
// analysis cannot see that parent->fs_ is the same object.
Status OverlayInode::CopyUpLocked(bool copy_data) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (upper_ != nullptr) return Ok();
  // The ancestors without an upper copy, nearest first, each with its
  // parent: copied from the top down in a loop, since the depth is the
  // application's to choose.
  std::vector<std::pair<OverlayRef, OverlayRef>> chain;
  for (auto cur = std::static_pointer_cast<OverlayInode>(shared_from_this());
       cur->upper_ == nullptr;) {
    OverlayRef parent = cur->parent_.lock();
    // An unlinked lower object has nowhere to go (Linux copies it up into
    // the work directory; husk has none): changing it through an fd fails.
    if (parent == nullptr || cur->unlinked_) return Errno{ENOENT};
    chain.emplace_back(cur, parent);
    cur = std::move(parent);
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    TRY(it->first->CopyUpOneLocked(it->second, it->first.get() == this ? copy_data : true));
  }
  return Ok();
}

Status OverlayInode::CopyUpOneLocked(const OverlayRef& parent,
                                     bool copy_data) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ASSIGN_OR_RETURN(struct stat st, lower_->Stat());
  InoLocked();  // the number stays the lower's after copy-up

  const vfs::InodeRef& dir = parent->upper_;
  // Like Linux overlayfs, copy-up leaves the parent's times as they were.
  ASSIGN_OR_RETURN(struct stat dir_st, dir->Stat());
  vfs::InodeRef up;
  switch (type_) {
    case S_IFDIR: {
      ASSIGN_OR_RETURN(up, dir->Mkdir(name_, st.st_mode & 07777));
      break;
    }
    case S_IFREG: {
      ASSIGN_OR_RETURN(up, dir->Create(name_, st.st_mode & 07777));
      break;
    }
    case S_IFLNK: {
      ASSIGN_OR_RETURN(std::string target, lower_->Readlink());
      ASSIGN_OR_RETURN(up, dir->Symlink(name_, target));
      break;
    }
    case S_IFIFO:
    case S_IFSOCK: {
      ASSIGN_OR_RETURN(up, dir->Mknod(name_, type_ | (st.st_mode & 07777)));
      break;
    }
    default:
      // Device nodes of the lower: the sandbox may not make devices.
      return Errno{EPERM};
  }

  Status done = Ok();
  if (type_ == S_IFREG && copy_data) done = CopyData(lower_, up);
  if (done.ok()) {
    vfs::SetAttr a = TimesOf(st);
    a.set_mode = a.set_uid = a.set_gid = true;
    a.mode = st.st_mode & 07777;
    a.uid = st.st_uid;
    a.gid = st.st_gid;
    done = up->SetAttributes(a);
  }
  if (!done.ok()) {
    (void)(type_ == S_IFDIR ? dir->Rmdir(name_) : dir->Unlink(name_));
  }
  (void)dir->SetAttributes(TimesOf(dir_st));
  if (!done.ok()) return done;
  upper_ = std::move(up);
  // From now on the parent's cache keeps this object for as long as the
  // path exists (its upper copy and number must not be forgotten).
  if (auto it = parent->children_.find(name_);
      it != parent->children_.end() && it->second.weak.lock().get() == this) {
    it->second.pinned = std::static_pointer_cast<OverlayInode>(shared_from_this());
  }
  DeferRelease(std::move(parent_hold_));
  return Ok();
}

}  // namespace husk::overlay
