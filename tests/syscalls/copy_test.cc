// Conformance: the in-kernel copies. sendfile(2) from a file to a file or a pipe, from the file
// offset or one given by pointer; copy_file_range(2) between regular files, with offset pointers
// or the files' offsets, and its argument checks; splice(2) between a pipe and a file (or two
// pipes); tee(2), which copies pipe data without consuming it; vmsplice(2), which moves user
// memory into a pipe (or pipe data out to user memory).
//
// Syscalls: sendfile copy_file_range splice tee vmsplice pipe2 open pread64 pwrite64 lseek
// fstat
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  std::string P(const std::string& name) const { return dir_.Join(name); }
  // Creates `name` holding `contents` and opens it with `flags`.
  Fd Make(const std::string& name, const std::string& contents, int flags) {
    EXPECT_TRUE(WriteFile(P(name), contents));
    return Fd(open(P(name).c_str(), flags | O_CLOEXEC));
  }
  Fd Create(const std::string& name, int flags = O_RDWR) {
    return Fd(open(P(name).c_str(), flags | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  }
  static off_t Offset(int fd) { return lseek(fd, 0, SEEK_CUR); }
  // Reads what the pipe holds now, without blocking ("" if it is empty); at most `max` bytes.
  static std::string Drain(int fd, size_t max = 4096) {
    const int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    std::string out(max, '\0');
    ssize_t n = read(fd, out.data(), max);
    fcntl(fd, F_SETFL, fl);
    out.resize(n < 0 ? 0 : n);
    return out;
  }

  TempDir dir_;
};

// sendfile without an offset pointer reads from the input's file offset and moves it; the output
// file is written at its own offset, which moves too.
TEST_F(CopyTest, SendfileFileToFileUsesAndMovesBothOffsets) {
  Fd in = Make("in", "0123456789", O_RDONLY);
  Fd out = Make("out", "ab", O_WRONLY);
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  ASSERT_EQ(lseek(in.get(), 2, SEEK_SET), 2);
  ASSERT_EQ(lseek(out.get(), 1, SEEK_SET), 1);
  EXPECT_EQ(sendfile(out.get(), in.get(), nullptr, 5), 5) << ErrnoName(errno);
  EXPECT_EQ(Offset(in.get()), 7);
  EXPECT_EQ(Offset(out.get()), 6);
  EXPECT_EQ(ReadFile(P("out")), "a23456");
}

// With an offset pointer, sendfile reads from *offset, updates it, and leaves the file offset.
TEST_F(CopyTest, SendfileOffsetPointerIsUpdatedNotTheFileOffset) {
  Fd in = Make("in", "0123456789", O_RDONLY);
  Fd out = Create("out");
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  ASSERT_EQ(lseek(in.get(), 1, SEEK_SET), 1);
  off_t off = 4;
  EXPECT_EQ(sendfile(out.get(), in.get(), &off, 3), 3) << ErrnoName(errno);
  EXPECT_EQ(off, 7);
  EXPECT_EQ(Offset(in.get()), 1);
  EXPECT_EQ(sendfile(out.get(), in.get(), &off, 100), 3);  // up to the end of the file
  EXPECT_EQ(off, 10);
  EXPECT_EQ(sendfile(out.get(), in.get(), &off, 100), 0);  // at the end
  EXPECT_EQ(off, 10);
  off = 50;  // past the end
  EXPECT_EQ(sendfile(out.get(), in.get(), &off, 100), 0);
  EXPECT_EQ(off, 50);
  EXPECT_EQ(ReadFile(P("out")), "456789");
}

// sendfile into a pipe; a count past the end of the file copies what there is.
TEST_F(CopyTest, SendfileFileToPipe) {
  Fd in = Make("in", "pipeline", O_RDONLY);
  ASSERT_TRUE(in.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_EQ(sendfile(p.w.get(), in.get(), nullptr, 4), 4) << ErrnoName(errno);
  EXPECT_EQ(sendfile(p.w.get(), in.get(), nullptr, 1000), 4);
  EXPECT_EQ(sendfile(p.w.get(), in.get(), nullptr, 1000), 0);
  EXPECT_EQ(Drain(p.r.get()), "pipeline");
  EXPECT_EQ(Offset(in.get()), 8);
}

// A bigger file than one pipe buffer, copied file to file in one call and looped into a pipe.
TEST_F(CopyTest, SendfileCopiesALargeFile) {
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
  Fd in = Make("in", data, O_RDONLY);
  Fd out = Create("out");
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = sendfile(out.get(), in.get(), nullptr, data.size() - done);
    ASSERT_GT(n, 0) << ErrnoName(errno);
    done += n;
  }
  EXPECT_EQ(ReadFile(P("out")) == data, true);
}

TEST_F(CopyTest, SendfileErrors) {
  Fd in = Make("in", "data", O_RDONLY);
  Fd wo = Make("wo", "data", O_WRONLY);
  Fd out = Create("out", O_WRONLY);
  Fd ro_out(open(P("out").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(in.valid() && wo.valid() && out.valid() && ro_out.valid());
  // Input not open for reading, output not open for writing.
  EXPECT_ERRNO(sendfile(out.get(), wo.get(), nullptr, 4), EBADF);
  EXPECT_ERRNO(sendfile(ro_out.get(), in.get(), nullptr, 4), EBADF);
  EXPECT_ERRNO(sendfile(out.get(), -1, nullptr, 4), EBADF);
  EXPECT_ERRNO(sendfile(-1, in.get(), nullptr, 4), EBADF);
  // A negative offset.
  off_t off = -1;
  EXPECT_ERRNO(sendfile(out.get(), in.get(), &off, 4), EINVAL);
  // Input that cannot be read page by page: a directory, a pipe.
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_ERRNO(sendfile(out.get(), dir.get(), nullptr, 4), EINVAL);
  Pipe p = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(p.w.get(), "xy", 2), 2);
  EXPECT_ERRNO(sendfile(out.get(), p.r.get(), nullptr, 2), EINVAL);
  // Nothing to copy: 0, nothing written.
  EXPECT_EQ(sendfile(out.get(), in.get(), nullptr, 0), 0);
  EXPECT_EQ(Offset(out.get()), 0);
}

// copy_file_range with null offsets copies from and to the files' offsets and moves both.
TEST_F(CopyTest, CopyFileRangeUsesAndMovesTheFileOffsets) {
  Fd in = Make("in", "hello, world", O_RDONLY);
  Fd out = Create("out");
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  ssize_t n = copy_file_range(in.get(), nullptr, out.get(), nullptr, 100, 0);
  ASSERT_EQ(n, 12) << ErrnoName(errno);
  EXPECT_EQ(Offset(in.get()), 12);
  EXPECT_EQ(Offset(out.get()), 12);
  EXPECT_EQ(copy_file_range(in.get(), nullptr, out.get(), nullptr, 100, 0), 0);  // at EOF
  EXPECT_EQ(ReadFile(P("out")), "hello, world");
  ASSERT_EQ(lseek(in.get(), 7, SEEK_SET), 7);
  EXPECT_EQ(copy_file_range(in.get(), nullptr, out.get(), nullptr, 5, 0), 5);
  EXPECT_EQ(ReadFile(P("out")), "hello, worldworld");
}

// With offset pointers, the pointers are read and advanced; the files' offsets stay.
TEST_F(CopyTest, CopyFileRangeOffsetPointersAreUpdated) {
  Fd in = Make("in", "0123456789", O_RDONLY);
  Fd out = Make("out", "abcdefghij", O_RDWR);
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  loff_t in_off = 3, out_off = 5;
  EXPECT_EQ(copy_file_range(in.get(), &in_off, out.get(), &out_off, 4, 0), 4) << ErrnoName(errno);
  EXPECT_EQ(in_off, 7);
  EXPECT_EQ(out_off, 9);
  EXPECT_EQ(Offset(in.get()), 0);
  EXPECT_EQ(Offset(out.get()), 0);
  EXPECT_EQ(ReadFile(P("out")), "abcde3456j");
  // One pointer and one file offset.
  ASSERT_EQ(lseek(out.get(), 1, SEEK_SET), 1);
  in_off = 0;
  EXPECT_EQ(copy_file_range(in.get(), &in_off, out.get(), nullptr, 2, 0), 2);
  EXPECT_EQ(in_off, 2);
  EXPECT_EQ(Offset(out.get()), 3);
  EXPECT_EQ(ReadFile(P("out")), "a01de3456j");
}

// Copying past the end of the source stops there; copying to past the end of the destination
// leaves a hole of zeros.
TEST_F(CopyTest, CopyFileRangeAtAndPastTheEnds) {
  Fd in = Make("in", "abc", O_RDONLY);
  Fd out = Create("out");
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  loff_t in_off = 3, out_off = 0;
  EXPECT_EQ(copy_file_range(in.get(), &in_off, out.get(), &out_off, 10, 0), 0);
  in_off = 100;
  EXPECT_EQ(copy_file_range(in.get(), &in_off, out.get(), &out_off, 10, 0), 0);
  EXPECT_EQ(in_off, 100);
  in_off = 1;
  out_off = 4;
  EXPECT_EQ(copy_file_range(in.get(), &in_off, out.get(), &out_off, 10, 0), 2);
  EXPECT_EQ(ReadFile(P("out")), std::string("\0\0\0\0bc", 6));
  EXPECT_EQ(copy_file_range(in.get(), nullptr, out.get(), nullptr, 0, 0), 0);
}

// Within one file: overlapping ranges are EINVAL, disjoint ones copy.
TEST_F(CopyTest, CopyFileRangeWithinOneFile) {
  Fd fd = Make("f", "0123456789", O_RDWR);
  ASSERT_TRUE(fd.valid());
  loff_t a = 0, b = 2;
  EXPECT_ERRNO(copy_file_range(fd.get(), &a, fd.get(), &b, 4, 0), EINVAL);
  a = 4;
  b = 2;
  EXPECT_ERRNO(copy_file_range(fd.get(), &a, fd.get(), &b, 4, 0), EINVAL);
  a = 0;
  b = 0;
  EXPECT_ERRNO(copy_file_range(fd.get(), &a, fd.get(), &b, 1, 0), EINVAL);
  a = 0;
  b = 6;
  EXPECT_EQ(copy_file_range(fd.get(), &a, fd.get(), &b, 4, 0), 4) << ErrnoName(errno);
  EXPECT_EQ(ReadFile(P("f")), "0123450123");
  // Two fds of the one file are the same file.
  Fd other(open(P("f").c_str(), O_RDWR | O_CLOEXEC));
  a = 1;
  b = 2;
  EXPECT_ERRNO(copy_file_range(fd.get(), &a, other.get(), &b, 3, 0), EINVAL);
}

TEST_F(CopyTest, CopyFileRangeArgumentErrors) {
  Fd in = Make("in", "data", O_RDONLY);
  Fd out = Create("out");
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  EXPECT_ERRNO(copy_file_range(in.get(), nullptr, out.get(), nullptr, 4, 1), EINVAL);
  EXPECT_ERRNO(copy_file_range(in.get(), nullptr, out.get(), nullptr, 4, 0x80000000u), EINVAL);
  // A negative offset wraps when the count is added (generic_copy_file_checks): EOVERFLOW.
  loff_t neg = -1;
  EXPECT_ERRNO(copy_file_range(in.get(), &neg, out.get(), nullptr, 4, 0), EOVERFLOW);
  // Not regular files: a pipe is EINVAL, a directory EISDIR.
  Pipe p = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(p.w.get(), "pp", 2), 2);
  EXPECT_ERRNO(copy_file_range(p.r.get(), nullptr, out.get(), nullptr, 2, 0), EINVAL);
  EXPECT_ERRNO(copy_file_range(in.get(), nullptr, p.w.get(), nullptr, 2, 0), EINVAL);
  Fd dir(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_ERRNO(copy_file_range(dir.get(), nullptr, out.get(), nullptr, 2, 0), EISDIR);
  EXPECT_EQ(ReadFile(P("out")), "");
}

// The source must be open for reading, the destination for writing and not O_APPEND.
TEST_F(CopyTest, CopyFileRangeAccessModesAreEbadf) {
  Fd wo = Make("in", "data", O_WRONLY);
  Fd in(open(P("in").c_str(), O_RDONLY | O_CLOEXEC));
  Fd out = Create("out");
  Fd ro_out(open(P("out").c_str(), O_RDONLY | O_CLOEXEC));
  Fd app_out(open(P("out").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  ASSERT_TRUE(wo.valid() && in.valid() && out.valid() && ro_out.valid() && app_out.valid());
  EXPECT_ERRNO(copy_file_range(wo.get(), nullptr, out.get(), nullptr, 4, 0), EBADF);
  EXPECT_ERRNO(copy_file_range(in.get(), nullptr, ro_out.get(), nullptr, 4, 0), EBADF);
  EXPECT_ERRNO(copy_file_range(in.get(), nullptr, app_out.get(), nullptr, 4, 0), EBADF);
  EXPECT_ERRNO(copy_file_range(-1, nullptr, out.get(), nullptr, 4, 0), EBADF);
  EXPECT_ERRNO(copy_file_range(in.get(), nullptr, 1000000, nullptr, 4, 0), EBADF);
}

// splice from a pipe to a file: at the file offset (moved) or at *off (updated, file offset
// left alone).
TEST_F(CopyTest, SplicePipeToFile) {
  Fd out = Create("out");
  ASSERT_TRUE(out.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(p.w.get(), "abcdefgh", 8), 8);
  EXPECT_EQ(splice(p.r.get(), nullptr, out.get(), nullptr, 3, 0), 3) << ErrnoName(errno);
  EXPECT_EQ(Offset(out.get()), 3);
  loff_t off = 10;
  EXPECT_EQ(splice(p.r.get(), nullptr, out.get(), &off, 2, 0), 2) << ErrnoName(errno);
  EXPECT_EQ(off, 12);
  EXPECT_EQ(Offset(out.get()), 3);
  // More than the pipe holds: what it holds.
  EXPECT_EQ(splice(p.r.get(), nullptr, out.get(), nullptr, 100, 0), 3);
  EXPECT_EQ(ReadFile(P("out")), std::string("abcfgh\0\0\0\0de", 12));
}

// splice from a file to a pipe, at the file offset or at *off.
TEST_F(CopyTest, SpliceFileToPipe) {
  Fd in = Make("in", "0123456789", O_RDONLY);
  ASSERT_TRUE(in.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_EQ(splice(in.get(), nullptr, p.w.get(), nullptr, 4, 0), 4) << ErrnoName(errno);
  EXPECT_EQ(Offset(in.get()), 4);
  EXPECT_EQ(Drain(p.r.get()), "0123");
  loff_t off = 8;
  EXPECT_EQ(splice(in.get(), &off, p.w.get(), nullptr, 100, 0), 2) << ErrnoName(errno);
  EXPECT_EQ(off, 10);
  EXPECT_EQ(Offset(in.get()), 4);
  EXPECT_EQ(Drain(p.r.get()), "89");
  // At the end of the file: 0.
  EXPECT_EQ(splice(in.get(), &off, p.w.get(), nullptr, 100, 0), 0);
}

// A file copied through a pipe with splice in both directions, as `cat` and `cp` do it.
TEST_F(CopyTest, SpliceCopiesAFileThroughAPipe) {
  std::string data(200000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i % 251);
  Fd in = Make("in", data, O_RDONLY);
  Fd out = Create("out");
  ASSERT_TRUE(in.valid());
  ASSERT_TRUE(out.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  for (;;) {
    ssize_t n = splice(in.get(), nullptr, p.w.get(), nullptr, 65536, 0);
    ASSERT_GE(n, 0) << ErrnoName(errno);
    if (n == 0) break;
    while (n > 0) {
      ssize_t m = splice(p.r.get(), nullptr, out.get(), nullptr, n, 0);
      ASSERT_GT(m, 0) << ErrnoName(errno);
      n -= m;
    }
  }
  EXPECT_EQ(ReadFile(P("out")) == data, true);
}

// An offset for the pipe end is ESPIPE, whichever end of the splice it is.
TEST_F(CopyTest, SpliceOffsetForAPipeIsEspipe) {
  Fd f = Make("f", "data", O_RDWR);
  ASSERT_TRUE(f.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(p.w.get(), "xy", 2), 2);
  loff_t off = 0;
  EXPECT_ERRNO(splice(p.r.get(), &off, f.get(), nullptr, 2, 0), ESPIPE);
  EXPECT_ERRNO(splice(f.get(), nullptr, p.w.get(), &off, 2, 0), ESPIPE);
  Pipe q = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(splice(p.r.get(), nullptr, q.w.get(), &off, 2, 0), ESPIPE);
  EXPECT_EQ(Drain(p.r.get()), "xy");  // nothing was moved
}

TEST_F(CopyTest, SpliceNeedsAPipeAtOneEnd) {
  Fd a = Make("a", "data", O_RDONLY);
  Fd b = Create("b");
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(b.valid());
  EXPECT_ERRNO(splice(a.get(), nullptr, b.get(), nullptr, 4, 0), EINVAL);
  loff_t x = 0, y = 0;
  EXPECT_ERRNO(splice(a.get(), &x, b.get(), &y, 4, 0), EINVAL);
  EXPECT_EQ(ReadFile(P("b")), "");
}

TEST_F(CopyTest, SpliceArgumentErrors) {
  Fd ro = Make("f", "data", O_RDONLY);
  Fd wo(open(P("f").c_str(), O_WRONLY | O_CLOEXEC));
  Fd app(open(P("f").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  ASSERT_TRUE(ro.valid() && wo.valid() && app.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(p.w.get(), "xy", 2), 2);
  EXPECT_ERRNO(splice(p.r.get(), nullptr, ro.get(), nullptr, 2, 0), EBADF);       // not writable
  EXPECT_ERRNO(splice(wo.get(), nullptr, p.w.get(), nullptr, 2, 0), EBADF);       // not readable
  EXPECT_ERRNO(splice(p.w.get(), nullptr, wo.get(), nullptr, 2, 0), EBADF);       // the wrong end
  EXPECT_ERRNO(splice(p.r.get(), nullptr, app.get(), nullptr, 2, 0), EINVAL);     // O_APPEND
  EXPECT_ERRNO(splice(p.r.get(), nullptr, wo.get(), nullptr, 2, 0x100), EINVAL);  // flags
  EXPECT_ERRNO(splice(p.r.get(), nullptr, p.w.get(), nullptr, 2, 0), EINVAL);     // one pipe
  EXPECT_EQ(splice(p.r.get(), nullptr, wo.get(), nullptr, 0, 0), 0);
  EXPECT_EQ(Drain(p.r.get()), "xy");
}

// splice between two pipes moves the bytes.
TEST_F(CopyTest, SplicePipeToPipe) {
  Pipe a = MakePipe(O_CLOEXEC);
  Pipe b = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(a.w.get(), "pipe2pipe", 9), 9);
  EXPECT_EQ(splice(a.r.get(), nullptr, b.w.get(), nullptr, 5, 0), 5) << ErrnoName(errno);
  EXPECT_EQ(Drain(b.r.get()), "pipe2");
  EXPECT_EQ(Drain(a.r.get()), "pipe");
}

// An empty pipe: with SPLICE_F_NONBLOCK (or an O_NONBLOCK pipe) EAGAIN; with no writer left, 0.
TEST_F(CopyTest, SpliceFromAnEmptyPipe) {
  Fd out = Create("out");
  ASSERT_TRUE(out.valid());
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(splice(p.r.get(), nullptr, out.get(), nullptr, 10, SPLICE_F_NONBLOCK), EAGAIN);
  Pipe nb = MakePipe(O_CLOEXEC | O_NONBLOCK);
  EXPECT_ERRNO(splice(nb.r.get(), nullptr, out.get(), nullptr, 10, 0), EAGAIN);
  p.w.Reset();
  EXPECT_EQ(splice(p.r.get(), nullptr, out.get(), nullptr, 10, 0), 0);
  EXPECT_EQ(splice(p.r.get(), nullptr, out.get(), nullptr, 10, SPLICE_F_NONBLOCK), 0);
}

// tee copies what one pipe holds into another and leaves it there to be read.
TEST_F(CopyTest, TeeDuplicatesWithoutConsuming) {
  Pipe a = MakePipe(O_CLOEXEC);
  Pipe b = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(a.w.get(), "teetime", 7), 7);
  EXPECT_EQ(tee(a.r.get(), b.w.get(), 3, 0), 3) << ErrnoName(errno);
  EXPECT_EQ(tee(a.r.get(), b.w.get(), 100, 0), 7);  // from the start again, all of it
  EXPECT_EQ(Drain(b.r.get()), "teeteetime");
  EXPECT_EQ(Drain(a.r.get()), "teetime");
}

TEST_F(CopyTest, TeeErrors) {
  Pipe a = MakePipe(O_CLOEXEC);
  Pipe b = MakePipe(O_CLOEXEC);
  Fd f = Make("f", "data", O_RDWR);
  ASSERT_TRUE(f.valid());
  ASSERT_EQ(write(a.w.get(), "x", 1), 1);
  EXPECT_ERRNO(tee(f.get(), b.w.get(), 1, 0), EINVAL);
  EXPECT_ERRNO(tee(a.r.get(), f.get(), 1, 0), EINVAL);
  EXPECT_ERRNO(tee(a.r.get(), a.w.get(), 1, 0), EINVAL);  // one pipe
  EXPECT_ERRNO(tee(a.r.get(), b.w.get(), 1, 0x100), EINVAL);
  EXPECT_ERRNO(tee(a.w.get(), b.w.get(), 1, 0), EBADF);  // not readable
  EXPECT_ERRNO(tee(a.r.get(), b.r.get(), 1, 0), EBADF);  // not writable
  EXPECT_EQ(Drain(a.r.get()), "x");
  EXPECT_ERRNO(tee(a.r.get(), b.w.get(), 1, SPLICE_F_NONBLOCK), EAGAIN);
  a.w.Reset();
  EXPECT_EQ(tee(a.r.get(), b.w.get(), 1, 0), 0);
}

// vmsplice into a pipe's write end gathers user memory, several iovecs in order.
TEST_F(CopyTest, VmspliceGathersUserMemoryIntoAPipe) {
  Pipe p = MakePipe(O_CLOEXEC);
  char a[] = "user ";
  char b[] = "memory";
  iovec iov[3] = {{a, 5}, {nullptr, 0}, {b, 6}};
  EXPECT_EQ(vmsplice(p.w.get(), iov, 3, 0), 11) << ErrnoName(errno);
  EXPECT_EQ(Drain(p.r.get()), "user memory");
  EXPECT_EQ(vmsplice(p.w.get(), iov, 0, 0), 0);
}

// vmsplice on a pipe's read end scatters the pipe's bytes into user memory.
TEST_F(CopyTest, VmspliceFromTheReadEndFillsUserMemory) {
  Pipe p = MakePipe(O_CLOEXEC);
  ASSERT_EQ(write(p.w.get(), "scatter", 7), 7);
  char a[3] = {}, b[10] = {};
  iovec iov[2] = {{a, 3}, {b, sizeof(b)}};
  EXPECT_EQ(vmsplice(p.r.get(), iov, 2, 0), 7) << ErrnoName(errno);
  EXPECT_EQ(std::string(a, 3), "sca");
  EXPECT_EQ(std::string(b, 4), "tter");
}

TEST_F(CopyTest, VmspliceErrors) {
  Fd f = Make("f", "data", O_RDWR);
  ASSERT_TRUE(f.valid());
  char buf[4] = {'a', 'b', 'c', 'd'};
  iovec iov = {buf, 4};
  EXPECT_ERRNO(vmsplice(f.get(), &iov, 1, 0), EBADF);
  EXPECT_ERRNO(vmsplice(-1, &iov, 1, 0), EBADF);
  Pipe p = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(vmsplice(p.w.get(), &iov, 1, 0x100), EINVAL);
  EXPECT_ERRNO(vmsplice(p.w.get(), &iov, 1025, 0), EINVAL);
  Pipe nb = MakePipe(O_CLOEXEC);
  EXPECT_ERRNO(vmsplice(nb.r.get(), &iov, 1, SPLICE_F_NONBLOCK), EAGAIN);  // empty
}

}  // namespace
}  // namespace husk_test
