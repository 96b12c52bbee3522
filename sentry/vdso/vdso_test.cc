#include "sentry/vdso/vdso.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#include <cstring>
#include <string>
#include <thread>

#include "sentry/time/sandbox_clock.h"

namespace husk::vdso {
namespace {

// The dynamic symbols of an ELF image laid out from address 0 (the vDSO's
// file is its memory image): name -> (value, version name).
struct DynSym {
  uint64_t value;
  std::string version;
};
std::map<std::string, DynSym> DynamicSymbols(std::string_view image, std::string* soname,
                                             bool* relocations) {
  const char* base = image.data();
  Elf64_Ehdr eh;
  memcpy(&eh, base, sizeof(eh));
  const Elf64_Dyn* dyn = nullptr;
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, base + eh.e_phoff + i * sizeof(ph), sizeof(ph));
    if (ph.p_type == PT_DYNAMIC) dyn = reinterpret_cast<const Elf64_Dyn*>(base + ph.p_vaddr);
  }
  std::map<std::string, DynSym> out;
  if (dyn == nullptr) return out;
  const Elf64_Sym* symtab = nullptr;
  const char* strtab = nullptr;
  const uint32_t* hash = nullptr;
  const uint16_t* versym = nullptr;
  const char* verdef = nullptr;
  uint64_t soname_off = 0;
  *relocations = false;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    switch (dyn->d_tag) {
      case DT_SYMTAB:
        symtab = reinterpret_cast<const Elf64_Sym*>(base + dyn->d_un.d_ptr);
        break;
      case DT_STRTAB:
        strtab = base + dyn->d_un.d_ptr;
        break;
      case DT_HASH:
        hash = reinterpret_cast<const uint32_t*>(base + dyn->d_un.d_ptr);
        break;
      case DT_VERSYM:
        versym = reinterpret_cast<const uint16_t*>(base + dyn->d_un.d_ptr);
        break;
      case DT_VERDEF:
        verdef = base + dyn->d_un.d_ptr;
        break;
      case DT_SONAME:
        soname_off = dyn->d_un.d_val;
        break;
      case DT_REL:
      case DT_RELA:
      case DT_JMPREL:
      case DT_TEXTREL:
        *relocations = true;
        break;
    }
  }
  if (symtab == nullptr || strtab == nullptr || hash == nullptr) return out;
  *soname = strtab + soname_off;
  std::map<uint16_t, std::string> versions;
  for (const char* vd = verdef; vd != nullptr;) {
    const auto* d = reinterpret_cast<const Elf64_Verdef*>(vd);
    const auto* aux = reinterpret_cast<const Elf64_Verdaux*>(vd + d->vd_aux);
    versions[d->vd_ndx] = strtab + aux->vda_name;
    vd = d->vd_next != 0 ? vd + d->vd_next : nullptr;
  }
  const uint32_t nsyms = hash[1];  // nchain
  for (uint32_t i = 1; i < nsyms; i++) {
    std::string version = versym != nullptr ? versions[versym[i] & 0x7fff] : "";
    out[strtab + symtab[i].st_name] = DynSym{symtab[i].st_value, version};
  }
  return out;
}

TEST(VdsoTest, ImageIsWhatGlibcLooksFor) {
  const std::string_view image = Image();
  ASSERT_TRUE(CheckImage(image).ok());
  std::string soname;
  bool relocations = true;
  auto syms = DynamicSymbols(image, &soname, &relocations);
  EXPECT_EQ(soname, "linux-vdso.so.1");
  EXPECT_FALSE(relocations);
  for (const char* name :
       {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time", "__vdso_getcpu",
        "__vdso_clock_getres", "clock_gettime", "gettimeofday", "time", "getcpu"}) {
    ASSERT_TRUE(syms.count(name)) << name;
    EXPECT_EQ(syms[name].version, "LINUX_2.6") << name;
    EXPECT_NE(syms[name].value, 0u) << name;
  }
  EXPECT_EQ(syms["clock_gettime"].value, syms["__vdso_clock_gettime"].value);
}

TEST(VdsoTest, CheckImageRefusesWhatCannotBeShared) {
  std::string image(Image());
  EXPECT_EQ(CheckImage(image.substr(0, 32)).error(), ENOEXEC);
  std::string bad = image;
  bad[EI_CLASS] = ELFCLASS32;
  EXPECT_EQ(CheckImage(bad).error(), ENOEXEC);
  // A writable PT_LOAD.
  Elf64_Ehdr eh;
  memcpy(&eh, image.data(), sizeof(eh));
  bad = image;
  for (int i = 0; i < eh.e_phnum; i++) {
    auto* ph = reinterpret_cast<Elf64_Phdr*>(bad.data() + eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph->p_type == PT_LOAD) ph->p_flags |= PF_W;
  }
  EXPECT_EQ(CheckImage(bad).error(), ENOEXEC);
}

// The memory file lives as long as the sentry's clock reads its page.
MemoryFile& TheMemoryFile() {
  static MemoryFile* const mf = MemoryFile::Create(64 << 20).value().release();
  return *mf;
}

const loader::Vdso& TheVdso() {
  static const loader::Vdso* const v = new loader::Vdso(Create(TheMemoryFile(), 64).value());
  return *v;
}

TEST(VdsoTest, CreatePutsBothInTheMemoryFile) {
  const loader::Vdso& v = TheVdso();
  MemoryFile& mf = TheMemoryFile();
  EXPECT_EQ(v.vvar->pages(), 1u);
  EXPECT_EQ(v.vvar->name(), "[vvar]");
  EXPECT_EQ(v.vvar->max_prot(), PROT_READ);
  EXPECT_EQ(v.text->name(), "[vdso]");
  EXPECT_EQ(v.text->bytes(), PageUp(Image().size()));
  EXPECT_EQ(memcmp(mf.At(v.text->offset()), Image().data(), Image().size()), 0);
  EXPECT_EQ(static_cast<void*>(SandboxClock::Get().vvar()),
            static_cast<void*>(mf.At(v.vvar->offset())));
  EXPECT_EQ(SandboxClock::Get().vvar()->ncpus, 64u);
}

// Maps the vDSO into this process as a stub maps it, and calls it.
class MappedVdso {
 public:
  MappedVdso() {
    const loader::Vdso& v = TheVdso();
    const size_t len = v.vvar->bytes() + v.text->bytes();
    base_ = static_cast<char*>(mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    len_ = len;
    const int fd = TheMemoryFile().fd();
    EXPECT_NE(mmap(base_, v.vvar->bytes(), PROT_READ, MAP_SHARED | MAP_FIXED, fd,
                   static_cast<off_t>(v.vvar->offset())),
              MAP_FAILED);
    EXPECT_NE(mmap(base_ + v.vvar->bytes(), v.text->bytes(), PROT_READ | PROT_EXEC,
                   MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(v.text->offset())),
              MAP_FAILED);
    std::string soname;
    bool relocations;
    syms_ = DynamicSymbols(Image(), &soname, &relocations);
  }
  ~MappedVdso() { munmap(base_, len_); }
  template <typename F>
  F* Function(const char* name) {
    return reinterpret_cast<F*>(base_ + kPageSize + syms_.at(name).value);
  }

 private:
  char* base_;
  size_t len_;
  std::map<std::string, DynSym> syms_;
};

int64_t Ns(const timespec& ts) { return ts.tv_sec * int64_t{1000000000} + ts.tv_nsec; }

TEST(VdsoTest, TellsTheSandboxsTime) {
  TheVdso();
  SandboxClock& clock = SandboxClock::Get();
  for (int i = 0; i < 100 && !clock.UsesTsc(); i++) {
    clock.Now(CLOCK_MONOTONIC);
    std::this_thread::sleep_for(std::chrono::milliseconds(12));
  }
  if (!clock.UsesTsc()) GTEST_SKIP() << "this host's TSC is not usable: the vDSO makes syscalls";
  MappedVdso vdso;
  auto* gettime = vdso.Function<int(clockid_t, timespec*)>("__vdso_clock_gettime");
  for (clockid_t id : {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW,
                       CLOCK_TAI, CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME_COARSE}) {
    const int64_t before = clock.Now(id);
    timespec ts{};
    ASSERT_EQ(gettime(id, &ts), 0) << id;
    const int64_t after = clock.Now(id);
    EXPECT_LE(before, Ns(ts)) << id;
    EXPECT_LE(Ns(ts), after) << id;
  }
  timespec mono{};
  gettime(CLOCK_MONOTONIC, &mono);
  EXPECT_GE(mono.tv_sec, SandboxClock::kBaseNs / 1000000000);

  auto* gtod = vdso.Function<int(timeval*, void*)>("__vdso_gettimeofday");
  timeval tv{};
  ASSERT_EQ(gtod(&tv, nullptr), 0);
  EXPECT_NEAR(static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6,
              static_cast<double>(clock.Now(CLOCK_REALTIME)) / 1e9, 0.01);
  auto* time_fn = vdso.Function<time_t(time_t*)>("__vdso_time");
  time_t t = 0;
  const time_t r = time_fn(&t);
  EXPECT_EQ(r, t);
  EXPECT_NEAR(static_cast<double>(r), static_cast<double>(clock.Now(CLOCK_REALTIME)) / 1e9, 1.5);

  auto* getres = vdso.Function<int(clockid_t, timespec*)>("__vdso_clock_getres");
  timespec res{};
  ASSERT_EQ(getres(CLOCK_MONOTONIC, &res), 0);
  EXPECT_EQ(Ns(res), 1);
  ASSERT_EQ(getres(CLOCK_MONOTONIC_COARSE, &res), 0);
  EXPECT_EQ(Ns(res), clock.tick_ns());
}

TEST(VdsoTest, GetcpuSaysWhereTheThreadRuns) {
  TheVdso();
  if (SandboxClock::Get().vvar()->getcpu_mode == HUSK_GETCPU_SYSCALL) {
    GTEST_SKIP() << "no way to read the CPU number on this host";
  }
  MappedVdso vdso;
  auto* getcpu = vdso.Function<long(unsigned*, unsigned*, void*)>("__vdso_getcpu");
  bool agreed = false;
  for (int i = 0; i < 20 && !agreed; i++) {
    unsigned cpu = ~0u, node = ~0u;
    const int before = sched_getcpu();
    ASSERT_EQ(getcpu(&cpu, &node, nullptr), 0);
    agreed = before == sched_getcpu() && cpu == static_cast<unsigned>(before) && node == 0;
  }
  EXPECT_TRUE(agreed);
}

}  // namespace
}  // namespace husk::vdso
