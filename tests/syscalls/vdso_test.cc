// Conformance: the vDSO (vdso(7)). The kernel maps a small ELF shared object into every
// process and names it in the auxv (AT_SYSINFO_EHDR); glibc calls its clock_gettime,
// gettimeofday, time, getcpu and clock_getres instead of the syscalls. These tests find it
// the way glibc does (its dynamic symbols, version LINUX_2.6), call its functions through
// pointers, and compare them with the real syscalls: the two must agree and, mixed,
// CLOCK_MONOTONIC must never go back. The mapping itself: "[vdso]" in /proc/self/maps with its
// data page just before it, kept across fork and made again by exec; munmap, mremap and
// mprotect of it behave as Linux's special mappings do.
//
// Relies on, beyond the start-up set in test_util.h: clock_gettime clock_getres gettimeofday
// time getcpu sched_getaffinity sched_setaffinity fork wait4 execve pipe2 mremap.
#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/syscalls/test_util.h"

namespace husk_test {
namespace {

using ClockGettime = int (*)(clockid_t, timespec*);
using Gettimeofday = int (*)(timeval*, struct timezone*);
using Time = time_t (*)(time_t*);
using Getcpu = long (*)(unsigned*, unsigned*, void*);

// A symbol of the vDSO image loaded at `ehdr`: its address and its version.
struct Symbol {
  uintptr_t addr = 0;
  std::string version;
};

// The vDSO's dynamic symbols and soname, read from memory the way a dynamic linker does:
// the program headers give the load bias and PT_DYNAMIC; DT_HASH's nchain counts the
// symbols; DT_VERSYM and DT_VERDEF name each one's version.
struct VdsoImage {
  std::string soname;
  std::map<std::string, Symbol> symbols;
  bool relocations = false;
};

VdsoImage ParseVdso(uintptr_t ehdr) {
  VdsoImage out;
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(ehdr);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return out;
  const auto* ph = reinterpret_cast<const Elf64_Phdr*>(ehdr + eh->e_phoff);
  uintptr_t bias = 0;
  const Elf64_Dyn* dyn = nullptr;
  bool first_load = true;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type == PT_LOAD && first_load) {
      bias = ehdr + ph[i].p_offset - ph[i].p_vaddr;
      first_load = false;
    }
  }
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type == PT_DYNAMIC) dyn = reinterpret_cast<const Elf64_Dyn*>(bias + ph[i].p_vaddr);
  }
  if (dyn == nullptr) return out;
  const Elf64_Sym* symtab = nullptr;
  const char* strtab = nullptr;
  const uint32_t* hash = nullptr;
  const Elf32_Word* gnu_hash = nullptr;
  const uint16_t* versym = nullptr;
  const char* verdef = nullptr;
  uint64_t soname = 0;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    const uintptr_t p = bias + dyn->d_un.d_ptr;
    switch (dyn->d_tag) {
      case DT_SYMTAB:
        symtab = reinterpret_cast<const Elf64_Sym*>(p);
        break;
      case DT_STRTAB:
        strtab = reinterpret_cast<const char*>(p);
        break;
      case DT_HASH:
        hash = reinterpret_cast<const uint32_t*>(p);
        break;
      case DT_GNU_HASH:
        gnu_hash = reinterpret_cast<const Elf32_Word*>(p);
        break;
      case DT_VERSYM:
        versym = reinterpret_cast<const uint16_t*>(p);
        break;
      case DT_VERDEF:
        verdef = reinterpret_cast<const char*>(p);
        break;
      case DT_SONAME:
        soname = dyn->d_un.d_val;
        break;
      case DT_REL:
      case DT_RELA:
      case DT_JMPREL:
      case DT_TEXTREL:
        out.relocations = true;
        break;
    }
  }
  if (symtab == nullptr || strtab == nullptr) return out;
  out.soname = strtab + soname;
  std::map<uint16_t, std::string> versions;
  for (const char* vd = verdef; vd != nullptr;) {
    const auto* d = reinterpret_cast<const Elf64_Verdef*>(vd);
    const auto* aux = reinterpret_cast<const Elf64_Verdaux*>(vd + d->vd_aux);
    versions[d->vd_ndx] = strtab + aux->vda_name;
    vd = d->vd_next != 0 ? vd + d->vd_next : nullptr;
  }
  // The symbol count: DT_HASH's nchain, or past the last GNU hash chain's end.
  uint32_t nsyms = 0;
  if (hash != nullptr) {
    nsyms = hash[1];
  } else if (gnu_hash != nullptr) {
    const uint32_t nbuckets = gnu_hash[0], symoffset = gnu_hash[1], bloom_size = gnu_hash[2];
    const auto* buckets = reinterpret_cast<const uint32_t*>(
        reinterpret_cast<const uint64_t*>(gnu_hash + 4) + bloom_size);
    const uint32_t* chains = buckets + nbuckets;
    for (uint32_t b = 0; b < nbuckets; b++) nsyms = std::max(nsyms, buckets[b]);
    if (nsyms >= symoffset) {
      while (!(chains[nsyms - symoffset] & 1)) nsyms++;
      nsyms++;
    }
  }
  for (uint32_t i = 1; i < nsyms; i++) {
    if (symtab[i].st_shndx == SHN_UNDEF || symtab[i].st_value == 0) continue;
    Symbol s;
    s.addr = bias + symtab[i].st_value;
    if (versym != nullptr) s.version = versions[versym[i] & 0x7fff];
    out.symbols[strtab + symtab[i].st_name] = s;
  }
  return out;
}

const VdsoImage& Vdso() {
  static const VdsoImage* const image = new VdsoImage(ParseVdso(getauxval(AT_SYSINFO_EHDR)));
  return *image;
}

template <typename F>
F Function(const char* name) {
  auto it = Vdso().symbols.find(name);
  return it == Vdso().symbols.end() ? nullptr : reinterpret_cast<F>(it->second.addr);
}

int64_t Ns(const timespec& ts) { return ts.tv_sec * int64_t{1000000000} + ts.tv_nsec; }

// clock_gettime through the syscall instruction, never the vDSO.
int64_t SysNow(clockid_t clock) {
  timespec ts{};
  EXPECT_EQ(syscall(SYS_clock_gettime, clock, &ts), 0) << ErrnoName(errno);
  return Ns(ts);
}

int64_t VdsoNow(clockid_t clock) {
  static const ClockGettime f = Function<ClockGettime>("__vdso_clock_gettime");
  timespec ts{};
  EXPECT_EQ(f(clock, &ts), 0) << clock;
  return Ns(ts);
}

// The /proc/self/maps lines as (start, end, perms, name).
struct MapsLine {
  uintptr_t start = 0, end = 0;
  std::string perms, name;
};
std::vector<MapsLine> Maps() {
  std::vector<MapsLine> out;
  std::istringstream in(ReadFile("/proc/self/maps"));
  std::string line;
  while (std::getline(in, line)) {
    MapsLine m;
    char perms[8] = {};
    int name_at = 0;
    if (sscanf(line.c_str(), "%lx-%lx %7s %*x %*x:%*x %*u %n", &m.start, &m.end, perms, &name_at) <
        3) {
      continue;
    }
    m.perms = perms;
    if (name_at > 0 && static_cast<size_t>(name_at) <= line.size()) m.name = line.substr(name_at);
    out.push_back(m);
  }
  return out;
}

// The mapping named `name`, or an empty one.
MapsLine Mapping(const std::string& name) {
  for (const MapsLine& m : Maps()) {
    if (m.name == name) return m;
  }
  return {};
}

// Runs body in a forked child (so that it may unmap, remap or re-pin without harm to the
// test process); the child's exit status 0 is success, anything else names the failed step.
void InChild(int (*body)()) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) _exit(body());
  const int status = WaitBounded(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

constexpr clockid_t kClocks[] = {CLOCK_REALTIME,
                                 CLOCK_MONOTONIC,
                                 CLOCK_MONOTONIC_RAW,
                                 CLOCK_REALTIME_COARSE,
                                 CLOCK_MONOTONIC_COARSE,
                                 CLOCK_BOOTTIME,
                                 CLOCK_TAI};

TEST(VdsoTest, TheAuxvNamesAnElfImageWithTheFunctionsGlibcLooksFor) {
  const uintptr_t ehdr = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(ehdr, 0u);
  EXPECT_EQ(ehdr % 4096, 0u);
  EXPECT_EQ(memcmp(reinterpret_cast<const void*>(ehdr), ELFMAG, SELFMAG), 0);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(ehdr);
  EXPECT_EQ(eh->e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(eh->e_type, ET_DYN);
  EXPECT_EQ(eh->e_machine, EM_X86_64);
  const VdsoImage& v = Vdso();
  EXPECT_EQ(v.soname, "linux-vdso.so.1");
  EXPECT_FALSE(v.relocations);
  for (const char* name :
       {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu",
        "__vdso_clock_getres", "clock_gettime", "gettimeofday", "time", "getcpu"}) {
    auto it = v.symbols.find(name);
    ASSERT_NE(it, v.symbols.end()) << name;
    EXPECT_EQ(it->second.version, "LINUX_2.6") << name;
  }
  EXPECT_EQ(v.symbols.at("clock_gettime").addr, v.symbols.at("__vdso_clock_gettime").addr);
}

TEST(VdsoTest, MapsShowsTheCodeWithItsDataPageJustBefore) {
  const uintptr_t ehdr = getauxval(AT_SYSINFO_EHDR);
  const std::vector<MapsLine> maps = Maps();
  for (size_t i = 0; i < maps.size(); i++) {
    if (maps[i].name != "[vdso]") continue;
    EXPECT_EQ(maps[i].start, ehdr);
    EXPECT_EQ(maps[i].perms, "r-xp");
    ASSERT_GT(i, 0u);
    // Linux 6.18 splits its data pages in "[vvar]" and "[vvar_vclock]".
    EXPECT_EQ(maps[i - 1].name.rfind("[vvar", 0), 0u) << maps[i - 1].name;
    EXPECT_EQ(maps[i - 1].end, maps[i].start);
    EXPECT_EQ(maps[i - 1].perms, "r--p");
    return;
  }
  ADD_FAILURE() << "no [vdso] in /proc/self/maps:\n" << ReadFile("/proc/self/maps");
}

TEST(VdsoTest, ClockGettimeAgreesWithTheSyscall) {
  for (clockid_t clock : kClocks) {
    const int64_t before = SysNow(clock);
    const int64_t vdso = VdsoNow(clock);
    const int64_t after = SysNow(clock);
    EXPECT_LE(before, vdso) << "clock " << clock;
    EXPECT_LE(vdso, after) << "clock " << clock;
    // Both read the same clock, back to back.
    EXPECT_LT(after - before, 100'000'000) << "clock " << clock;
  }
  // glibc's clock_gettime is the vDSO's.
  timespec ts{};
  const int64_t before = SysNow(CLOCK_MONOTONIC);
  ASSERT_EQ(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
  EXPECT_LE(before, Ns(ts));
  EXPECT_LE(Ns(ts), SysNow(CLOCK_MONOTONIC));
}

TEST(VdsoTest, ClocksTheVdsoDoesNotKeepStillWork) {
  // The CPU-time clocks, and bad arguments, go to the kernel through the vDSO.
  static const ClockGettime f = Function<ClockGettime>("__vdso_clock_gettime");
  timespec ts{};
  EXPECT_EQ(f(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
  EXPECT_GT(Ns(ts), 0);
  EXPECT_EQ(f(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
  EXPECT_GT(Ns(ts), 0);
  // The vDSO returns the syscall's -errno, not -1.
  EXPECT_EQ(f(12345, &ts), -EINVAL);
}

TEST(VdsoTest, MonotonicNeverGoesBackMixingTheVdsoAndTheSyscall) {
  int64_t last = SysNow(CLOCK_MONOTONIC);
  int64_t last_boot = SysNow(CLOCK_BOOTTIME);
  for (int i = 0; i < 1000000; i++) {
    const int64_t now = (i % 64 == 0) ? SysNow(CLOCK_MONOTONIC) : VdsoNow(CLOCK_MONOTONIC);
    ASSERT_GE(now, last) << "call " << i << (i % 64 == 0 ? " (syscall)" : " (vDSO)");
    last = now;
  }
  // Then for long enough that whatever the clock keeps is renewed on the way (husk: once
  // a second).
  const int64_t end = last + 2'500'000'000;
  for (int i = 0; last < end; i++) {
    const int64_t now = (i % 64 == 0) ? SysNow(CLOCK_MONOTONIC) : VdsoNow(CLOCK_MONOTONIC);
    ASSERT_GE(now, last) << "call " << i << (i % 64 == 0 ? " (syscall)" : " (vDSO)");
    last = now;
    const int64_t boot = (i % 2 == 0) ? SysNow(CLOCK_BOOTTIME) : VdsoNow(CLOCK_BOOTTIME);
    ASSERT_GE(boot, last_boot) << "call " << i;
    last_boot = boot;
  }
}

TEST(VdsoTest, GettimeofdayAndTimeAgreeWithTheWallClock) {
  auto gtod = Function<Gettimeofday>("__vdso_gettimeofday");
  auto vtime = Function<Time>("__vdso_time");
  ASSERT_NE(gtod, nullptr);
  ASSERT_NE(vtime, nullptr);
  for (int i = 0; i < 1000; i++) {
    const int64_t before = SysNow(CLOCK_REALTIME);
    timeval tv{};
    struct timezone tz {
      - 1, -1
    };
    ASSERT_EQ(gtod(&tv, &tz), 0);
    time_t t = 0;
    const time_t r = vtime(&t);
    const int64_t after = SysNow(CLOCK_REALTIME);
    const int64_t tod_us = tv.tv_sec * int64_t{1000000} + tv.tv_usec;
    ASSERT_LE(before / 1000, tod_us);
    ASSERT_LE(tod_us, after / 1000);
    ASSERT_GE(tv.tv_usec, 0);
    ASSERT_LT(tv.tv_usec, 1000000);
    // time() is the coarse wall clock's seconds: never ahead, at most a tick behind.
    EXPECT_EQ(r, t);
    ASSERT_LE(r, after / 1000000000);
    ASSERT_GE(r, before / 1000000000 - 1);
    EXPECT_EQ(tz.tz_minuteswest, 0);
    EXPECT_EQ(tz.tz_dsttime, 0);
  }
  // A null time pointer is fine, and glibc's own time() and gettimeofday() agree.
  EXPECT_LE(vtime(nullptr), time(nullptr));
  timeval tv{};
  ASSERT_EQ(gettimeofday(&tv, nullptr), 0);
  EXPECT_LE(tv.tv_sec, SysNow(CLOCK_REALTIME) / 1000000000);
  EXPECT_EQ(gtod(nullptr, nullptr), 0);
}

TEST(VdsoTest, ClockGetresAgreesWithTheSyscall) {
  auto getres = Function<ClockGettime>("__vdso_clock_getres");
  ASSERT_NE(getres, nullptr);
  for (clockid_t clock : kClocks) {
    timespec sys{}, vdso{};
    ASSERT_EQ(syscall(SYS_clock_getres, clock, &sys), 0) << clock;
    ASSERT_EQ(getres(clock, &vdso), 0) << clock;
    EXPECT_EQ(Ns(vdso), Ns(sys)) << "clock " << clock;
  }
  EXPECT_EQ(getres(CLOCK_MONOTONIC, nullptr), 0);
  timespec ts{};
  EXPECT_EQ(getres(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
  EXPECT_GT(Ns(ts), 0);
}

TEST(VdsoTest, GetcpuNamesACpuTheThreadMayRunOn) {
  auto getcpu = Function<Getcpu>("__vdso_getcpu");
  ASSERT_NE(getcpu, nullptr);
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  const int ncpus = get_nprocs_conf();
  unsigned sys_node = ~0u;
  ASSERT_EQ(syscall(SYS_getcpu, nullptr, &sys_node, nullptr), 0);
  for (int i = 0; i < 1000; i++) {
    unsigned cpu = ~0u, node = ~0u;
    ASSERT_EQ(getcpu(&cpu, &node, nullptr), 0);
    ASSERT_LT(cpu, static_cast<unsigned>(ncpus));
    ASSERT_TRUE(CPU_ISSET(cpu, &allowed)) << cpu;
    ASSERT_EQ(node, sys_node);
  }
  // Null pointers are allowed; glibc's sched_getcpu is the vDSO's (or rseq's).
  EXPECT_EQ(getcpu(nullptr, nullptr, nullptr), 0);
  const int cpu = sched_getcpu();
  EXPECT_GE(cpu, 0);
  EXPECT_TRUE(CPU_ISSET(cpu, &allowed));
}

TEST(VdsoTest, ForkKeepsTheVdso) {
  static std::string parent_image;
  const MapsLine vdso = Mapping("[vdso]");
  ASSERT_NE(vdso.start, 0u);
  parent_image.assign(reinterpret_cast<const char*>(vdso.start), vdso.end - vdso.start);
  InChild(+[] {
    const MapsLine m = Mapping("[vdso]");
    if (m.start != getauxval(AT_SYSINFO_EHDR)) return 1;
    if (parent_image != std::string(reinterpret_cast<const char*>(m.start), m.end - m.start)) {
      return 2;
    }
    const int64_t before = SysNow(CLOCK_MONOTONIC);
    const int64_t now = VdsoNow(CLOCK_MONOTONIC);
    if (now < before || now > SysNow(CLOCK_MONOTONIC)) return 3;
    return 0;
  });
}

// Run by the exec test's child (the same binary, exec'd with VDSO_TEST_EXEC=1) before
// main: the new image has its own vDSO, which works.
__attribute__((constructor)) void ExecChild() {
  if (getenv("VDSO_TEST_EXEC") == nullptr) return;
  const uintptr_t ehdr = getauxval(AT_SYSINFO_EHDR);
  if (ehdr == 0) _exit(10);
  if (Mapping("[vdso]").start != ehdr) _exit(11);
  auto f = Function<ClockGettime>("__vdso_clock_gettime");
  if (f == nullptr) _exit(12);
  timespec ts{};
  const int64_t before = SysNow(CLOCK_MONOTONIC);
  if (f(CLOCK_MONOTONIC, &ts) != 0 || Ns(ts) < before || Ns(ts) > SysNow(CLOCK_MONOTONIC)) {
    _exit(13);
  }
  _exit(0);
}

TEST(VdsoTest, ExecMapsAFreshVdso) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char* argv[] = {const_cast<char*>("vdso_test"), nullptr};
    char* envp[] = {const_cast<char*>("VDSO_TEST_EXEC=1"), nullptr};
    execve("/proc/self/exe", argv, envp);
    _exit(20);
  }
  const int status = WaitBounded(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Describe(status);
}

TEST(VdsoTest, TheDataPageCannotBeMadeWritableOrExecutable) {
  const MapsLine vdso = Mapping("[vdso]");
  ASSERT_NE(vdso.start, 0u);
  const uintptr_t data = vdso.start - 4096;
  EXPECT_ERRNO(mprotect(reinterpret_cast<void*>(data), 4096, PROT_READ | PROT_WRITE), EACCES);
  EXPECT_ERRNO(mprotect(reinterpret_cast<void*>(data), 4096, PROT_READ | PROT_EXEC), EACCES);
}

TEST(VdsoTest, WritesToTheCodeStayInOneProcess) {
  static uintptr_t start;
  static size_t len;
  const MapsLine vdso = Mapping("[vdso]");
  start = vdso.start;
  len = vdso.end - vdso.start;
  ASSERT_NE(start, 0u);
  const char byte = reinterpret_cast<const char*>(start)[EI_PAD];
  // A debugger's breakpoint: the code page becomes the child's own.
  InChild(+[] {
    if (mprotect(reinterpret_cast<void*>(start), len, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
      return 1;
    }
    reinterpret_cast<char*>(start)[EI_PAD] = 42;
    return reinterpret_cast<const char*>(start)[EI_PAD] == 42 ? 0 : 2;
  });
  EXPECT_EQ(reinterpret_cast<const char*>(start)[EI_PAD], byte);
}

TEST(VdsoTest, MremapMovesTheCodeButNeverGrowsIt) {
  static uintptr_t start;
  static size_t len;
  const MapsLine vdso = Mapping("[vdso]");
  start = vdso.start;
  len = vdso.end - vdso.start;
  ASSERT_NE(start, 0u);
  InChild(+[] {
    void* grown = mremap(reinterpret_cast<void*>(start), len, len + 4096, MREMAP_MAYMOVE);
    if (grown != MAP_FAILED || errno != EFAULT) return 1;
    void* spot = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (spot == MAP_FAILED) return 2;
    void* moved =
        mremap(reinterpret_cast<void*>(start), len, len, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
    if (moved != spot) return 3;
    if (Mapping("[vdso]").start != reinterpret_cast<uintptr_t>(spot)) return 4;
    if (memcmp(spot, ELFMAG, SELFMAG) != 0) return 5;
    return 0;
  });
}

TEST(VdsoTest, MunmapRemovesIt) {
  static uintptr_t start, data_start;
  static size_t len;
  const std::vector<MapsLine> maps = Maps();
  for (size_t i = 1; i < maps.size(); i++) {
    if (maps[i].name != "[vdso]") continue;
    start = maps[i].start;
    len = maps[i].end - maps[i].start;
    // Everything "[vvar...]" right before it.
    data_start = maps[i].start;
    for (size_t j = i;
         j > 0 && maps[j - 1].name.rfind("[vvar", 0) == 0 && maps[j - 1].end == data_start; j--) {
      data_start = maps[j - 1].start;
    }
  }
  ASSERT_NE(start, 0u);
  InChild(+[] {
    if (munmap(reinterpret_cast<void*>(start), len) != 0) return 1;
    if (munmap(reinterpret_cast<void*>(data_start), start - data_start) != 0) return 2;
    for (const MapsLine& m : Maps()) {
      if (m.name == "[vdso]" || m.name.rfind("[vvar", 0) == 0) return 3;
    }
    // The syscall still answers.
    timespec ts{};
    if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) return 4;
    // And the range is free for anything else.
    void* p = mmap(reinterpret_cast<void*>(start), len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != reinterpret_cast<void*>(start)) return 5;
    return 0;
  });
}

// Last: in husk, a narrowed mask sends every later vDSO getcpu to the syscall.
TEST(VdsoTest, GetcpuFollowsANarrowedAffinity) {
  InChild(+[] {
    auto getcpu = Function<Getcpu>("__vdso_getcpu");
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 1;
    for (int target = 0; target < CPU_SETSIZE; target++) {
      if (!CPU_ISSET(target, &allowed)) continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(target, &one);
      if (sched_setaffinity(0, sizeof(one), &one) != 0) return 2;
      for (int i = 0; i < 100; i++) {
        unsigned cpu = ~0u;
        if (getcpu(&cpu, nullptr, nullptr) != 0) return 3;
        if (cpu != static_cast<unsigned>(target)) return 4;
      }
    }
    return 0;
  });
}

}  // namespace
}  // namespace husk_test
