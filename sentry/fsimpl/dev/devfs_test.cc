#include <errno.h>
#include <sys/sysmacros.h>

#include <string>
#include <vector>

#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/dev/dev.h"

namespace husk::devfs {
namespace {

vfs::FileRef OpenDev(const vfs::InodeRef& root, const std::string& name, int flags) {
  auto inode = root->Lookup(name);
  EXPECT_TRUE(inode.ok()) << name;
  auto file = (*inode)->Open(flags);
  EXPECT_TRUE(file.ok()) << name;
  return *file;
}

TEST(DevfsTest, Listing) {
  vfs::InodeRef root = NewDevRoot();
  std::vector<std::string> names;
  std::vector<vfs::Dirent> entries = root->ReadDir().value();
  names.reserve(entries.size());
  for (auto& e : entries) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"fd", "full", "null", "pts", "random", "shm", "stderr",
                                             "stdin", "stdout", "urandom", "zero"}));
  struct stat st = root->Stat().value();
  EXPECT_EQ(st.st_mode, S_IFDIR | 0755);
  EXPECT_EQ(st.st_nlink, 4u);
}

TEST(DevfsTest, DeviceNodes) {
  vfs::InodeRef root = NewDevRoot();
  dev_t fs_dev = root->Stat().value().st_dev;
  const std::pair<const char*, unsigned> kNodes[] = {
      {"null", 3}, {"zero", 5}, {"full", 7}, {"random", 8}, {"urandom", 9}};
  for (auto [name, minor_nr] : kNodes) {
    vfs::InodeRef dev = root->Lookup(name).value();
    struct stat st = dev->Stat().value();
    EXPECT_EQ(st.st_mode, S_IFCHR | 0666) << name;
    EXPECT_EQ(st.st_rdev, makedev(1, minor_nr)) << name;
    EXPECT_EQ(st.st_dev, fs_dev) << name;
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_TRUE(dev->Stream());
    EXPECT_EQ(dev->Type(), static_cast<mode_t>(S_IFCHR));
    // truncate(2) on a device is EINVAL; chmod works.
    vfs::SetAttr a;
    a.set_size = true;
    EXPECT_ERRNO(dev->SetAttributes(a), EINVAL);
    vfs::SetAttr m;
    m.set_mode = true;
    m.mode = 0600;
    ASSERT_OK(dev->SetAttributes(m));
    EXPECT_EQ(dev->Stat().value().st_mode, S_IFCHR | 0600);
  }
  // The listing's inode numbers match Stat.
  // (Result::value() on a temporary must not feed a range-for directly.)
  std::vector<vfs::Dirent> entries = root->ReadDir().value();
  for (auto& e : entries) {
    EXPECT_EQ(e.ino, root->Lookup(e.name).value()->Stat().value().st_ino) << e.name;
  }
}

TEST(DevfsTest, Null) {
  vfs::InodeRef root = NewDevRoot();
  vfs::FileRef f = OpenDev(root, "null", O_RDWR);
  char buf[16];
  EXPECT_EQ(f->Read(buf, sizeof(buf)).value(), 0u);
  EXPECT_EQ(f->Write("abc", 3).value(), 3u);
  EXPECT_EQ(f->PRead(buf, sizeof(buf), 100).value(), 0u);
  EXPECT_EQ(f->PWrite("abc", 3, 100).value(), 3u);
  EXPECT_EQ(f->Seek(50, SEEK_SET).value(), 0);
}

TEST(DevfsTest, Zero) {
  vfs::InodeRef root = NewDevRoot();
  vfs::FileRef f = OpenDev(root, "zero", O_RDWR | O_TRUNC);
  std::string buf(10000, 'x');
  EXPECT_EQ(f->Read(buf.data(), buf.size()).value(), buf.size());
  EXPECT_EQ(buf, std::string(10000, '\0'));
  EXPECT_EQ(f->Write("abc", 3).value(), 3u);
  buf.assign(8, 'x');
  EXPECT_EQ(f->PRead(buf.data(), buf.size(), 12345).value(), 8u);
  EXPECT_EQ(buf, std::string(8, '\0'));
  auto m = f->GetMappable();
  ASSERT_NE(m, nullptr);
  buf.assign(4096, 'x');
  EXPECT_EQ(m->ReadForMapping(0, buf.data(), buf.size()).value(), 4096u);
  EXPECT_EQ(buf, std::string(4096, '\0'));
  EXPECT_EQ(OpenDev(root, "null", O_RDONLY)->GetMappable(), nullptr);
}

TEST(DevfsTest, Full) {
  vfs::InodeRef root = NewDevRoot();
  vfs::FileRef f = OpenDev(root, "full", O_RDWR);
  std::string buf(64, 'x');
  EXPECT_EQ(f->Read(buf.data(), buf.size()).value(), buf.size());
  EXPECT_EQ(buf, std::string(64, '\0'));
  EXPECT_ERRNO(f->Write("abc", 3), ENOSPC);
  EXPECT_ERRNO(f->PWrite("abc", 3, 0), ENOSPC);
}

TEST(DevfsTest, RandomAndURandom) {
  vfs::InodeRef root = NewDevRoot();
  for (const char* name : {"random", "urandom"}) {
    vfs::FileRef f = OpenDev(root, name, O_RDWR);
    std::string a(1 << 20, '\0'), b(1 << 20, '\0');
    EXPECT_EQ(f->Read(a.data(), a.size()).value(), a.size());
    EXPECT_EQ(f->Read(b.data(), b.size()).value(), b.size());
    EXPECT_NE(a, b);
    EXPECT_NE(a, std::string(1 << 20, '\0'));
    EXPECT_EQ(f->Write("seed", 4).value(), 4u);
  }
}

TEST(DevfsTest, AccessModeIsChecked) {
  vfs::InodeRef root = NewDevRoot();
  vfs::FileRef f = OpenDev(root, "zero", O_WRONLY);
  char c;
  EXPECT_ERRNO(f->Read(&c, 1), EBADF);
  EXPECT_ERRNO(f->PRead(&c, 1, 0), EBADF);
  vfs::FileRef r = OpenDev(root, "null", O_RDONLY);
  EXPECT_ERRNO(r->Write("x", 1), EBADF);
  EXPECT_ERRNO(r->PWrite("x", 1, 0), EBADF);
}

TEST(DevfsTest, DirectoriesAndLinks) {
  vfs::InodeRef root = NewDevRoot();
  vfs::InodeRef pts = root->Lookup("pts").value();
  vfs::InodeRef shm = root->Lookup("shm").value();
  EXPECT_EQ(pts->Stat().value().st_mode, S_IFDIR | 0755);
  EXPECT_EQ(shm->Stat().value().st_mode, S_IFDIR | 01777);
  EXPECT_TRUE(shm->ReadDir().value().empty());
  ASSERT_OK(shm->Create("segment", 0600));  // a writable tmpfs
  EXPECT_EQ(root->Lookup("fd").value()->Readlink().value(), "/proc/self/fd");
  EXPECT_EQ(root->Lookup("stdin").value()->Readlink().value(), "/proc/self/fd/0");
  EXPECT_EQ(root->Lookup("stdout").value()->Readlink().value(), "/proc/self/fd/1");
  EXPECT_EQ(root->Lookup("stderr").value()->Readlink().value(), "/proc/self/fd/2");
}

TEST(DevfsTest, InstancesAreSeparate) {
  vfs::InodeRef a = NewDevRoot();
  vfs::InodeRef b = NewDevRoot();
  ASSERT_OK(a->Unlink("null"));
  EXPECT_ERRNO(a->Lookup("null"), ENOENT);
  ASSERT_OK(b->Lookup("null"));
  EXPECT_NE(a->Stat().value().st_dev, b->Stat().value().st_dev);
}

}  // namespace
}  // namespace husk::devfs
