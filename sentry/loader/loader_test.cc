// The ELF loader against crafted headers (ValidateElf) and whole loads into a
// MemoryManager from a tmpfs root: static and dynamic ELFs, #! scripts, the
// initial stack, and the errors execve(2) gives. The expected errnos are the
// ones Linux 6.18 gave for the same files run natively, except where a
// comment says husk refuses early what Linux would kill the process for.
#include "sentry/loader/loader.h"

#include <elf.h>
#include <errno.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/result_testing.h"
#include "gtest/gtest.h"
#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/memfile/memfile.h"
#include "sentry/mm/mm.h"

namespace husk::loader {
namespace {

// ---------------------------------------------------------------------------
// Building ELF files.

constexpr uint64_t kBase = 0x400000;  // where the static test program links
constexpr uint64_t kPhoff = 64;       // program headers follow the ELF header
constexpr size_t kMaxPhdrs = 7;       // room up to kCodeOffset
constexpr uint64_t kCodeOffset = 0x200;
constexpr uint64_t kDataOffset = 0x300;  // PT_INTERP strings and the like
constexpr uint64_t kBssBytes = 0x1800;   // crosses a page boundary
// mov $60, %eax; xor %edi, %edi; syscall: exit(0).
constexpr unsigned char kCode[] = {0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05};

// A small ELF laid out as: header, up to kMaxPhdrs program headers at
// kPhoff, kCode at kCodeOffset, `data` at kDataOffset. Bytes() writes the
// program headers at kPhoff whatever e_phoff says, so tests can lie in the
// header without moving the table.
struct ElfFile {
  Elf64_Ehdr eh{};
  std::vector<Elf64_Phdr> ph;
  std::string data;

  std::string Bytes() const {
    std::string out(kDataOffset, '\0');
    memcpy(out.data(), &eh, sizeof(eh));
    for (size_t i = 0; i < ph.size() && i < kMaxPhdrs; i++) {
      memcpy(out.data() + kPhoff + i * sizeof(Elf64_Phdr), &ph[i], sizeof(Elf64_Phdr));
    }
    memcpy(out.data() + kCodeOffset, kCode, sizeof(kCode));
    return out + data;
  }
  Elf64_Phdr& Load() {
    for (auto& p : ph) {
      if (p.p_type == PT_LOAD) return p;
    }
    ADD_FAILURE() << "no PT_LOAD";
    return ph[0];
  }
};

Elf64_Phdr Phdr(uint32_t type, uint32_t flags, uint64_t offset, uint64_t vaddr, uint64_t filesz,
                uint64_t memsz, uint64_t align) {
  Elf64_Phdr p{};
  p.p_type = type;
  p.p_flags = flags;
  p.p_offset = offset;
  p.p_vaddr = vaddr;
  p.p_paddr = vaddr;
  p.p_filesz = filesz;
  p.p_memsz = memsz;
  p.p_align = align;
  return p;
}

// A minimal program of type ET_EXEC (linked at kBase) or ET_DYN (linked at
// 0): one R+X PT_LOAD maps the whole file plus some bss. `extra` program
// headers come first; those pointing at data use DataPhdr.
ElfFile MakeElf(uint16_t type, std::vector<Elf64_Phdr> extra = {}, std::string data = "") {
  ElfFile f;
  memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
  f.eh.e_ident[EI_CLASS] = ELFCLASS64;
  f.eh.e_ident[EI_DATA] = ELFDATA2LSB;
  f.eh.e_ident[EI_VERSION] = EV_CURRENT;
  f.eh.e_ident[EI_OSABI] = ELFOSABI_SYSV;
  f.eh.e_type = type;
  f.eh.e_machine = EM_X86_64;
  f.eh.e_version = EV_CURRENT;
  uint64_t base = type == ET_EXEC ? kBase : 0;
  f.eh.e_entry = base + kCodeOffset;
  f.eh.e_phoff = kPhoff;
  f.eh.e_ehsize = sizeof(Elf64_Ehdr);
  f.eh.e_phentsize = sizeof(Elf64_Phdr);
  f.ph = std::move(extra);
  uint64_t file_size = kDataOffset + data.size();
  f.ph.push_back(Phdr(PT_LOAD, PF_R | PF_X, 0, base, file_size, file_size + kBssBytes, 0x1000));
  f.eh.e_phnum = static_cast<uint16_t>(f.ph.size());
  f.data = std::move(data);
  return f;
}

ElfFile StaticExec() { return MakeElf(ET_EXEC); }

// An ELF whose PT_INTERP headers name `interps` in order.
ElfFile WithInterps(uint16_t type, const std::vector<std::string>& interps) {
  std::vector<Elf64_Phdr> extra;
  std::string data;
  for (const auto& s : interps) {
    extra.push_back(
        Phdr(PT_INTERP, PF_R, kDataOffset + data.size(), 0, s.size() + 1, s.size() + 1, 1));
    data += s;
    data += '\0';
  }
  return MakeElf(type, std::move(extra), std::move(data));
}

std::string ReadHostFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Elf64_Ehdr HeaderOf(const std::string& bytes) {
  Elf64_Ehdr eh{};
  memcpy(&eh, bytes.data(), std::min(bytes.size(), sizeof(eh)));
  return eh;
}

std::vector<Elf64_Phdr> PhdrsOf(const std::string& bytes) {
  Elf64_Ehdr eh = HeaderOf(bytes);
  std::vector<Elf64_Phdr> out(eh.e_phnum);
  memcpy(out.data(), bytes.data() + eh.e_phoff, out.size() * sizeof(Elf64_Phdr));
  return out;
}

// The file offset holding virtual address vaddr (before any load bias).
uint64_t FileOffsetOf(const std::string& bytes, uint64_t vaddr) {
  for (const auto& p : PhdrsOf(bytes)) {
    if (p.p_type == PT_LOAD && vaddr >= p.p_vaddr && vaddr < p.p_vaddr + p.p_filesz) {
      return vaddr - p.p_vaddr + p.p_offset;
    }
  }
  ADD_FAILURE() << "no segment holds " << vaddr;
  return 0;
}

// ---------------------------------------------------------------------------
// ValidateElf.

Status Validate(const ElfFile& f) {
  std::string b = f.Bytes();
  return ValidateElf(b, b.size());
}

TEST(ValidateElfTest, AcceptsMinimalExecAndDyn) {
  EXPECT_OK(Validate(StaticExec()));
  EXPECT_OK(Validate(MakeElf(ET_DYN)));
}

TEST(ValidateElfTest, AcceptsTheHostsTrue) {
  std::string bytes = ReadHostFile("/bin/true");
  if (bytes.empty()) GTEST_SKIP() << "cannot read /bin/true";
  EXPECT_OK(ValidateElf(bytes, bytes.size()));
}

TEST(ValidateElfTest, RejectsFilesShorterThanTheHeader) {
  std::string b = StaticExec().Bytes();
  EXPECT_ERRNO(ValidateElf("", 0), ENOEXEC);
  EXPECT_ERRNO(ValidateElf(b.substr(0, 4), 4), ENOEXEC);
  EXPECT_ERRNO(ValidateElf(b.substr(0, sizeof(Elf64_Ehdr) - 1), sizeof(Elf64_Ehdr) - 1), ENOEXEC);
}

TEST(ValidateElfTest, RejectsWrongMagic) {
  for (int i = 0; i < SELFMAG; i++) {
    ElfFile f = StaticExec();
    f.eh.e_ident[i] ^= 0x20;
    SCOPED_TRACE(testing::Message() << "byte " << i);
    EXPECT_ERRNO(Validate(f), ENOEXEC);
  }
  std::string text = "#!/bin/sh\n" + std::string(100, 'x');
  EXPECT_ERRNO(ValidateElf(text, text.size()), ENOEXEC);
}

TEST(ValidateElfTest, RejectsA32BitFile) {
  // A real i386 executable: Elf32 layout, EM_386. Linux without IA-32
  // emulation gives ENOEXEC; husk runs no 32-bit code.
  Elf32_Ehdr eh{};
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS32;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_386;
  eh.e_version = EV_CURRENT;
  eh.e_entry = 0x8048000;
  eh.e_phoff = sizeof(Elf32_Ehdr);
  eh.e_ehsize = sizeof(Elf32_Ehdr);
  eh.e_phentsize = sizeof(Elf32_Phdr);
  eh.e_phnum = 1;
  Elf32_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_vaddr = 0x8048000;
  ph.p_filesz = ph.p_memsz = 0x1000;
  ph.p_flags = PF_R | PF_X;
  std::string b(0x1000, '\0');
  memcpy(b.data(), &eh, sizeof(eh));
  memcpy(b.data() + sizeof(eh), &ph, sizeof(ph));
  EXPECT_ERRNO(ValidateElf(b, b.size()), ENOEXEC);

  // x32 (ELFCLASS32 with EM_X86_64) is not supported either. Linux itself
  // never reads EI_CLASS; husk, like gVisor, refuses any class but 64.
  ElfFile f = StaticExec();
  f.eh.e_ident[EI_CLASS] = ELFCLASS32;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  f.eh.e_ident[EI_CLASS] = ELFCLASSNONE;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

TEST(ValidateElfTest, RejectsBigEndian) {
  // A big-endian x86_64 header: e_machine reads as 0x3e00 little-endian.
  ElfFile f = StaticExec();
  f.eh.e_ident[EI_DATA] = ELFDATA2MSB;
  f.eh.e_type = __builtin_bswap16(ET_EXEC);
  f.eh.e_machine = __builtin_bswap16(EM_X86_64);
  f.eh.e_phentsize = __builtin_bswap16(sizeof(Elf64_Phdr));
  f.eh.e_phnum = __builtin_bswap16(1);
  f.eh.e_phoff = __builtin_bswap64(kPhoff);
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  // Only the EI_DATA byte says big-endian: husk (like gVisor) trusts it.
  f = StaticExec();
  f.eh.e_ident[EI_DATA] = ELFDATA2MSB;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

TEST(ValidateElfTest, RejectsAnUnknownElfVersion) {
  ElfFile f = StaticExec();
  f.eh.e_ident[EI_VERSION] = EV_NONE;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

TEST(ValidateElfTest, RejectsOtherMachines) {
  for (int m : {EM_NONE, EM_386, EM_AARCH64, EM_RISCV, EM_IA_64}) {
    ElfFile f = StaticExec();
    f.eh.e_machine = static_cast<uint16_t>(m);
    SCOPED_TRACE(testing::Message() << "e_machine " << m);
    EXPECT_ERRNO(Validate(f), ENOEXEC);
  }
}

TEST(ValidateElfTest, RejectsTypesOtherThanExecAndDyn) {
  for (int t : {ET_NONE, ET_REL, ET_CORE, ET_LOOS, 0xffff}) {
    ElfFile f = StaticExec();
    f.eh.e_type = static_cast<uint16_t>(t);
    SCOPED_TRACE(testing::Message() << "e_type " << t);
    EXPECT_ERRNO(Validate(f), ENOEXEC);
  }
}

TEST(ValidateElfTest, RejectsAWrongProgramHeaderSize) {
  for (int size : {0, 32, 55, 57, 64}) {
    ElfFile f = StaticExec();
    f.eh.e_phentsize = static_cast<uint16_t>(size);
    SCOPED_TRACE(testing::Message() << "e_phentsize " << size);
    EXPECT_ERRNO(Validate(f), ENOEXEC);
  }
}

TEST(ValidateElfTest, RejectsNoProgramHeaders) {
  ElfFile f = StaticExec();
  f.eh.e_phnum = 0;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

// Linux's load_elf_phdrs allows a table of at most 64 KiB: 1170 entries.
TEST(ValidateElfTest, LimitsTheProgramHeaderTableTo64KiB) {
  auto make = [](uint16_t phnum) {
    ElfFile f = StaticExec();
    std::string b = f.Bytes();
    b.resize(kPhoff + (phnum + 1) * sizeof(Elf64_Phdr), '\0');  // PT_NULL entries
    Elf64_Ehdr eh = f.eh;
    eh.e_phnum = phnum;
    Elf64_Phdr load = f.ph[0];
    load.p_filesz = b.size();
    load.p_memsz = b.size();
    memcpy(b.data(), &eh, sizeof(eh));
    memcpy(b.data() + kPhoff, &load, sizeof(load));
    return b;
  };
  std::string ok = make(65536 / sizeof(Elf64_Phdr));
  EXPECT_OK(ValidateElf(ok, ok.size()));
  std::string too_many = make(65536 / sizeof(Elf64_Phdr) + 1);
  EXPECT_ERRNO(ValidateElf(too_many, too_many.size()), ENOEXEC);
  std::string max = make(0xffff);
  EXPECT_ERRNO(ValidateElf(max, max.size()), ENOEXEC);
}

TEST(ValidateElfTest, RejectsAProgramHeaderTableOutsideTheFile) {
  ElfFile f = StaticExec();
  uint64_t size = f.Bytes().size();
  for (uint64_t phoff : {size, size - sizeof(Elf64_Phdr) + 1, size + 0x100000, ~uint64_t{0},
                         ~uint64_t{0} - sizeof(Elf64_Phdr) + 2}) {
    f.eh.e_phoff = phoff;
    SCOPED_TRACE(testing::Message() << "e_phoff " << phoff);
    EXPECT_ERRNO(Validate(f), ENOEXEC);
  }
  // Exactly at the end of the file is fine.
  std::string b = StaticExec().Bytes();
  Elf64_Phdr load = StaticExec().ph[0];
  Elf64_Ehdr eh = StaticExec().eh;
  eh.e_phoff = b.size();
  b.append(reinterpret_cast<const char*>(&load), sizeof(load));
  memcpy(b.data(), &eh, sizeof(eh));
  EXPECT_OK(ValidateElf(b, b.size()));
}

TEST(ValidateElfTest, NeedsTheTableInTheBytesGiven) {
  std::string b = StaticExec().Bytes();
  // The file is long enough but the caller passed only the ELF header.
  EXPECT_ERRNO(ValidateElf(b.substr(0, sizeof(Elf64_Ehdr)), b.size()), ENOEXEC);
}

TEST(ValidateElfTest, RejectsFileSizeBiggerThanMemorySize) {
  ElfFile f = StaticExec();
  f.Load().p_memsz = f.Load().p_filesz - 1;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  f.Load().p_memsz = f.Load().p_filesz;  // equal is fine
  EXPECT_OK(Validate(f));
}

TEST(ValidateElfTest, RejectsSegmentsPastTheEndOfTheFile) {
  ElfFile f = StaticExec();
  uint64_t size = f.Bytes().size();
  f.Load().p_filesz = size + 1;
  f.Load().p_memsz = size + 0x10000;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  f = StaticExec();
  f.Load().p_offset = 0x1000;
  f.Load().p_vaddr = kBase + 0x1000;
  f.Load().p_filesz = 1;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  // p_offset + p_filesz wraps around to inside the file.
  f = StaticExec();
  f.Load().p_offset = 0xfffffffffffff000;
  f.Load().p_filesz = 0x1100;
  f.Load().p_memsz = 0x1100;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

TEST(ValidateElfTest, RejectsOffsetAndAddressNotCongruentModuloThePage) {
  ElfFile f = StaticExec();
  f.Load().p_vaddr = kBase + 0x10;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  f.Load().p_vaddr = kBase + 0x1800;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  // Unaligned but congruent is what real linkers produce (the RW segment).
  f = StaticExec();
  f.Load().p_offset = 0x123;
  f.Load().p_vaddr = kBase + 0x1123;
  f.Load().p_filesz = 0x10;
  f.Load().p_memsz = 0x10;
  EXPECT_OK(Validate(f));
}

TEST(ValidateElfTest, RejectsSegmentsThatOverflowTheAddressSpace) {
  ElfFile f = StaticExec();
  f.Load().p_vaddr = 0xfffffffffffff000;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  f.Load().p_vaddr = kBase;
  f.Load().p_memsz = ~uint64_t{0} - 0x1000;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  // Above the 47-bit user address space.
  f = StaticExec();
  f.Load().p_vaddr = uint64_t{1} << 47;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

TEST(ValidateElfTest, IgnoresSegmentsItDoesNotLoad) {
  // Linux looks only at PT_LOAD, PT_INTERP and a few flags; a PT_NOTE
  // pointing nowhere is harmless.
  ElfFile f = MakeElf(ET_EXEC, {Phdr(PT_NOTE, PF_R, ~uint64_t{0}, 3, ~uint64_t{0}, 0, 7)});
  EXPECT_OK(Validate(f));
}

TEST(ValidateElfTest, ChecksTheSizeOfTheFirstInterpreterPath) {
  ElfFile f = WithInterps(ET_EXEC, {"/lib/ld.so"});
  EXPECT_OK(Validate(f));
  f.ph[0].p_filesz = 1;  // too short to name anything (Linux: < 2)
  EXPECT_ERRNO(Validate(f), ENOEXEC);
  f.ph[0].p_filesz = 4097;  // longer than PATH_MAX
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

// load_elf_binary stops at the first PT_INTERP and never looks at the others:
// Linux 6.18 runs such a file with the first interpreter, so husk does not
// refuse it either.
TEST(ValidateElfTest, AcceptsMoreThanOneInterpreterAndChecksOnlyTheFirst) {
  ElfFile f = WithInterps(ET_EXEC, {"/lib/ld.so", "/lib/other.so"});
  EXPECT_OK(Validate(f));
  f.ph[1].p_filesz = 1;
  EXPECT_OK(Validate(f));
  f.ph[0].p_filesz = 1;
  EXPECT_ERRNO(Validate(f), ENOEXEC);
}

// ---------------------------------------------------------------------------
// Load.

class FakeAddressSpace : public platform::AddressSpace {
 public:
  Status MapFile(uintptr_t addr, uint64_t offset, size_t length, int prot) override { return Ok(); }
  Status Unmap(uintptr_t addr, size_t length) override { return Ok(); }
};

constexpr uintptr_t kMinAddr = 0x10000;
constexpr uintptr_t kMaxAddr = 0x7ffffffff000;

// What the loader left at the stack pointer.
struct InitialStack {
  uint64_t argc = 0;
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  std::vector<std::pair<uint64_t, uint64_t>> auxv;  // AT_NULL included
  std::map<uint64_t, uint64_t> aux;
};

// The credentials of a task that never called setfsuid: the file ids follow
// the effective ones, and a zero fsuid brings the file capabilities.
Credentials Ids(uint32_t uid, uint32_t euid, uint32_t gid, uint32_t egid) {
  uint32_t caps = euid == 0 ? vfs::kFsCapabilities : 0;
  return Credentials{uid, euid, gid, egid, vfs::Creds{euid, egid, {}, caps}};
}

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The sandbox's memory file: files share their pages through it.
    mf_ = &MemoryFile::Sandbox();
    fs_.root = std::make_shared<vfs::Dentry>("/", nullptr, tmpfs::NewTmpfsRoot(0755));
    fs_.cwd = fs_.root;
  }
  void TearDown() override { fs_.root->ReleaseTree(); }

  // Creates path (and its parent directories) holding bytes.
  void WriteFile(const std::string& path, const std::string& bytes, mode_t mode = 0755) {
    vfs::InodeRef dir = fs_.root->inode();
    size_t start = 1;
    for (size_t slash; (slash = path.find('/', start)) != std::string::npos; start = slash + 1) {
      std::string name = path.substr(start, slash - start);
      auto child = dir->Lookup(name);
      if (!child.ok()) child = dir->Mkdir(name, 0755);
      ASSERT_OK(child);
      dir = *child;
    }
    auto file = dir->Create(path.substr(start), mode);
    ASSERT_OK(file);
    size_t done = 0;
    while (done < bytes.size()) {
      auto n = (*file)->WriteAt(bytes.data() + done, bytes.size() - done, done);
      ASSERT_OK(n);
      done += *n;
    }
  }

  // Loads into a fresh address space, as execve does; the stack helpers
  // below read the latest one.
  Result<Image> Load(const std::string& path, std::vector<std::string> argv,
                     const std::vector<std::string>& envp = {}) {
    mm_ = std::make_unique<MemoryManager>(*mf_, std::make_unique<FakeAddressSpace>(), kMinAddr,
                                          kMaxAddr);
    return loader::Load(*mm_, fs_, path, std::move(argv), envp, creds_, vdso_);
  }

  uint64_t Word(uintptr_t addr) {
    uint64_t v = 0;
    Status s = mm_->CopyIn(addr, &v, sizeof(v));
    EXPECT_OK(s) << "at " << std::hex << addr;
    return v;
  }
  std::string String(uintptr_t addr) {
    auto s = mm_->CopyInString(addr, 1 << 20);
    EXPECT_OK(s) << "at " << std::hex << addr;
    return s.ok() ? *s : "";
  }
  std::string Bytes(uintptr_t addr, size_t n) {
    std::string out(n, '\0');
    Status s = mm_->CopyIn(addr, out.data(), n);
    EXPECT_OK(s) << "at " << std::hex << addr;
    return out;
  }

  // Walks argc, argv, envp and auxv as the System V x86_64 ABI lays them out.
  InitialStack ReadStack(uintptr_t sp) {
    InitialStack st;
    st.argc = Word(sp);
    uintptr_t p = sp + 8;
    for (uint64_t i = 0; i < st.argc && i < 100000; i++, p += 8) st.argv.push_back(String(Word(p)));
    EXPECT_EQ(Word(p), 0u) << "argv[argc] is not NULL";
    p += 8;
    for (uint64_t a; (a = Word(p)) != 0 && st.envp.size() < 100000; p += 8) {
      st.envp.push_back(String(a));
    }
    p += 8;
    for (int i = 0; i < 100; i++, p += 16) {
      uint64_t key = Word(p), value = Word(p + 8);
      st.auxv.emplace_back(key, value);
      EXPECT_EQ(st.aux.count(key), 0u) << "auxv key " << key << " appears twice";
      st.aux[key] = value;
      if (key == AT_NULL) break;
    }
    return st;
  }

  MemoryFile* mf_ = nullptr;
  std::unique_ptr<MemoryManager> mm_;
  vfs::FsContext fs_;
  Credentials creds_ = Ids(1000, 1001, 2000, 2001);
  const Vdso* vdso_ = nullptr;
};

TEST_F(LoaderTest, StaticExecutableStartsAtItsEntryWithTheAbiStack) {
  ElfFile elf = StaticExec();
  WriteFile("/bin/prog", elf.Bytes());
  std::vector<std::string> argv = {"prog", "one", "", "three with spaces"};
  std::vector<std::string> envp = {"HOME=/root", "PATH=/bin", "EMPTY="};
  auto img = Load("/bin/prog", argv, envp);
  ASSERT_OK(img);
  EXPECT_EQ(img->entry, elf.eh.e_entry);
  EXPECT_EQ(img->argv, argv);
  EXPECT_EQ(img->exe->Path(), "/bin/prog");
  EXPECT_EQ(img->stack_pointer % 16, 0u) << std::hex << img->stack_pointer;
  EXPECT_LT(img->stack_pointer, kMaxAddr);

  InitialStack st = ReadStack(img->stack_pointer);
  EXPECT_EQ(st.argc, argv.size());
  EXPECT_EQ(st.argv, argv);
  EXPECT_EQ(st.envp, envp);
  ASSERT_FALSE(st.auxv.empty());
  EXPECT_EQ(st.auxv.back(), std::make_pair(uint64_t{AT_NULL}, uint64_t{0}));
  EXPECT_EQ(st.aux[AT_PHDR], kBase + kPhoff);
  EXPECT_EQ(st.aux[AT_PHENT], sizeof(Elf64_Phdr));
  EXPECT_EQ(st.aux[AT_PHNUM], 1u);
  EXPECT_EQ(st.aux[AT_PAGESZ], 4096u);
  EXPECT_EQ(st.aux[AT_ENTRY], elf.eh.e_entry);
  EXPECT_EQ(st.aux[AT_BASE], 0u);  // no interpreter
  EXPECT_EQ(st.aux[AT_UID], 1000u);
  EXPECT_EQ(st.aux[AT_EUID], 1001u);
  EXPECT_EQ(st.aux[AT_GID], 2000u);
  EXPECT_EQ(st.aux[AT_EGID], 2001u);
  EXPECT_EQ(st.aux[AT_SECURE], 0u);
  ASSERT_NE(st.aux[AT_RANDOM], 0u);
  EXPECT_EQ(Bytes(st.aux[AT_RANDOM], 16).size(), 16u);
  EXPECT_EQ(String(st.aux[AT_EXECFN]), "/bin/prog");
  EXPECT_EQ(String(st.aux[AT_PLATFORM]), "x86_64");

  // The program is where the headers say: code at the entry, the program
  // headers at AT_PHDR, zeros after the file's bytes.
  EXPECT_EQ(Bytes(img->entry, sizeof(kCode)), std::string(kCode, kCode + sizeof(kCode)));
  EXPECT_EQ(Bytes(st.aux[AT_PHDR], sizeof(Elf64_Phdr)),
            elf.Bytes().substr(kPhoff, sizeof(Elf64_Phdr)));
  uint64_t file_end = kBase + elf.Bytes().size();
  EXPECT_EQ(Bytes(file_end, kBssBytes), std::string(kBssBytes, '\0'));
}

TEST_F(LoaderTest, MapsTheVdsoAndItsDataPage) {
  WriteFile("/bin/prog", StaticExec().Bytes());
  auto plain = Load("/bin/prog", {"prog"});
  ASSERT_OK(plain);
  EXPECT_EQ(ReadStack(plain->stack_pointer).aux.count(AT_SYSINFO_EHDR), 0u)
      << "no vDSO, none mapped";
  auto data = mf_->Allocate(1);
  auto code = mf_->Allocate(2);
  ASSERT_OK(data);
  ASSERT_OK(code);
  memcpy(mf_->At(*code), ELFMAG, SELFMAG);
  Vdso vdso{std::make_shared<SpecialPages>(*mf_, *data, 1, "[vvar]", PROT_READ),
            std::make_shared<SpecialPages>(*mf_, *code, 2, "[vdso]", PROT_READ | PROT_EXEC)};
  vdso_ = &vdso;
  auto img = Load("/bin/prog", {"prog"});
  ASSERT_OK(img);
  InitialStack st = ReadStack(img->stack_pointer);
  // Linux lists it first.
  EXPECT_EQ(st.auxv.front().first, uint64_t{AT_SYSINFO_EHDR});
  const uint64_t ehdr = st.aux[AT_SYSINFO_EHDR];
  EXPECT_EQ(ehdr % 4096, 0u);
  EXPECT_EQ(Bytes(ehdr, SELFMAG), std::string(ELFMAG));
  const std::string maps = mm_->ProcMaps();
  EXPECT_NE(maps.find(absl::StrFormat("%08x-%08x r--p 00000000 00:00 0", ehdr - 4096, ehdr)),
            std::string::npos)
      << maps;
  EXPECT_NE(maps.find("[vvar]"), std::string::npos) << maps;
  EXPECT_NE(maps.find(absl::StrFormat("%08x-%08x r-xp", ehdr, ehdr + 2 * 4096)), std::string::npos)
      << maps;
  EXPECT_NE(maps.find("[vdso]"), std::string::npos) << maps;
  mm_.reset();
}

TEST_F(LoaderTest, PositionIndependentExecutableIsRelocated) {
  ElfFile elf = MakeElf(ET_DYN);
  WriteFile("/pie", elf.Bytes());
  auto img = Load("/pie", {"pie"});
  ASSERT_OK(img);
  InitialStack st = ReadStack(img->stack_pointer);
  uint64_t bias = st.aux[AT_PHDR] - kPhoff;
  EXPECT_NE(bias, 0u);
  EXPECT_EQ(bias % 4096, 0u);
  EXPECT_EQ(img->entry, bias + elf.eh.e_entry);
  EXPECT_EQ(st.aux[AT_ENTRY], img->entry);
  EXPECT_EQ(st.aux[AT_BASE], 0u);
  EXPECT_EQ(Bytes(img->entry, sizeof(kCode)), std::string(kCode, kCode + sizeof(kCode)));
}

TEST_F(LoaderTest, DynamicExecutableStartsInItsInterpreter) {
  std::string exe = ReadHostFile("/bin/true");
  if (exe.size() < sizeof(Elf64_Ehdr)) GTEST_SKIP() << "cannot read /bin/true";
  std::string interp_path;
  for (const auto& p : PhdrsOf(exe)) {
    if (p.p_type == PT_INTERP) interp_path = exe.substr(p.p_offset, p.p_filesz - 1).c_str();
  }
  if (interp_path != "/lib64/ld-linux-x86-64.so.2") {
    GTEST_SKIP() << "/bin/true asks for interpreter '" << interp_path << "'";
  }
  std::string ld = ReadHostFile(interp_path);
  if (ld.empty()) GTEST_SKIP() << "cannot read " << interp_path;
  WriteFile("/bin/true", exe);
  WriteFile(interp_path, ld);

  auto img = Load("/bin/true", {"true", "--version"}, {"LANG=C"});
  ASSERT_OK(img);
  EXPECT_EQ(img->exe->Path(), "/bin/true");
  EXPECT_EQ(img->stack_pointer % 16, 0u);
  InitialStack st = ReadStack(img->stack_pointer);
  EXPECT_EQ(st.argv, (std::vector<std::string>{"true", "--version"}));
  EXPECT_EQ(st.envp, std::vector<std::string>{"LANG=C"});

  // The first instruction is the interpreter's, AT_BASE is where it lies.
  Elf64_Ehdr ld_eh = HeaderOf(ld);
  uint64_t interp_base = st.aux[AT_BASE];
  ASSERT_NE(interp_base, 0u);
  EXPECT_EQ(interp_base % 4096, 0u);
  EXPECT_EQ(img->entry, interp_base + ld_eh.e_entry);
  EXPECT_EQ(Bytes(img->entry, 16), ld.substr(FileOffsetOf(ld, ld_eh.e_entry), 16));

  // AT_ENTRY and AT_PHDR still describe the program.
  Elf64_Ehdr exe_eh = HeaderOf(exe);
  uint64_t exe_bias = 0;
  for (const auto& p : PhdrsOf(exe)) {
    if (p.p_type == PT_PHDR) exe_bias = st.aux[AT_PHDR] - p.p_vaddr;
  }
  EXPECT_EQ(exe_bias % 4096, 0u);
  EXPECT_EQ(st.aux[AT_ENTRY], exe_bias + exe_eh.e_entry);
  EXPECT_NE(st.aux[AT_ENTRY], img->entry);
  EXPECT_EQ(Bytes(st.aux[AT_ENTRY], 16), exe.substr(FileOffsetOf(exe, exe_eh.e_entry), 16));
  EXPECT_EQ(st.aux[AT_PHNUM], exe_eh.e_phnum);
  EXPECT_EQ(Bytes(st.aux[AT_PHDR], exe_eh.e_phnum * sizeof(Elf64_Phdr)),
            exe.substr(exe_eh.e_phoff, exe_eh.e_phnum * sizeof(Elf64_Phdr)));
  EXPECT_EQ(String(st.aux[AT_EXECFN]), "/bin/true");
  EXPECT_EQ(Bytes(st.aux[AT_RANDOM], 16).size(), 16u);
  EXPECT_EQ(st.aux[AT_PAGESZ], 4096u);
  EXPECT_EQ(st.auxv.back().first, uint64_t{AT_NULL});
}

TEST_F(LoaderTest, OnlyTheFirstInterpreterIsUsed) {
  ElfFile interp = MakeElf(ET_DYN);
  WriteFile("/lib/ld.so", interp.Bytes());
  WriteFile("/first", WithInterps(ET_EXEC, {"/lib/ld.so", "/nonexistent"}).Bytes());
  auto img = Load("/first", {"first"});
  ASSERT_OK(img);
  InitialStack st = ReadStack(img->stack_pointer);
  ASSERT_NE(st.aux[AT_BASE], 0u);
  EXPECT_EQ(img->entry, st.aux[AT_BASE] + interp.eh.e_entry);
  EXPECT_EQ(st.aux[AT_ENTRY], kBase + kCodeOffset);
  EXPECT_EQ(st.aux[AT_PHNUM], 3u);

  WriteFile("/second", WithInterps(ET_EXEC, {"/nonexistent", "/lib/ld.so"}).Bytes());
  EXPECT_ERRNO(Load("/second", {"second"}), ENOENT);
}

TEST_F(LoaderTest, InterpreterProblems) {
  // Each errno below but the ET_REL one is what Linux 6.18 returns for the
  // same file; Linux checks an interpreter's e_type only after the point of
  // no return and kills the process, husk says ELIBBAD before.
  WriteFile("/lib/text.so", "this is not an ELF interpreter, but it is longer than 64 bytes...\n");
  WriteFile("/lib/short.so", std::string(ELFMAG) + "\2\1\1");
  WriteFile("/lib/noexec.so", MakeElf(ET_DYN).Bytes(), 0644);
  ElfFile rel = MakeElf(ET_DYN);
  rel.eh.e_type = ET_REL;
  WriteFile("/lib/rel.so", rel.Bytes());
  WriteFile("/lib/nested.so", WithInterps(ET_DYN, {"/nonexistent"}).Bytes());
  struct Case {
    std::string interp;
    int err;  // 0: loads
  } cases[] = {
      {"/nonexistent", ENOENT},       {"/lib/text.so", ELIBBAD}, {"/lib/short.so", EIO},
      {"/lib/noexec.so", EACCES},     {"/lib", EACCES},          {"/lib/rel.so", ELIBBAD},
      {"/lib/nested.so", 0},           // an interpreter's own PT_INTERP is ignored
      {std::string(1, '\0'), EACCES},  // "" opens the working directory
  };
  for (const auto& c : cases) {
    WriteFile("/prog", WithInterps(ET_EXEC, {c.interp}).Bytes());
    auto r = Load("/prog", {"prog"});
    if (c.err == 0) {
      EXPECT_OK(r) << "interpreter '" << c.interp << "'";
    } else {
      ASSERT_FALSE(r.ok()) << "interpreter '" << c.interp << "'";
      EXPECT_EQ(r.error(), c.err) << "interpreter '" << c.interp << "'";
    }
    ASSERT_OK(fs_.root->inode()->Unlink("prog"));
    fs_.root->ForgetChild("prog");
  }
}

TEST_F(LoaderTest, InterpreterPathMustBeNulTerminatedAndInTheFile) {
  ElfFile f = WithInterps(ET_EXEC, {"/lib/ld.so"});
  f.data.back() = 'x';
  WriteFile("/unterminated", f.Bytes());
  EXPECT_ERRNO(Load("/unterminated", {"x"}), ENOEXEC);
  // A PT_INTERP past the end of the file is a short read: EIO on Linux.
  f = WithInterps(ET_EXEC, {"/lib/ld.so"});
  f.ph[0].p_offset = 0x10000;
  WriteFile("/outside", f.Bytes());
  EXPECT_ERRNO(Load("/outside", {"x"}), EIO);
}

TEST_F(LoaderTest, ScriptRunsItsInterpreterWithTheRewrittenArgv) {
  WriteFile("/bin/interp", StaticExec().Bytes());
  WriteFile("/script", "#!/bin/interp arg\necho hi\n");
  auto img = Load("/script", {"my-name", "a1", "a2"}, {"X=1"});
  ASSERT_OK(img);
  std::vector<std::string> want = {"/bin/interp", "arg", "/script", "a1", "a2"};
  EXPECT_EQ(img->argv, want);
  EXPECT_EQ(img->exe->Path(), "/bin/interp");
  EXPECT_EQ(img->entry, StaticExec().eh.e_entry);
  InitialStack st = ReadStack(img->stack_pointer);
  EXPECT_EQ(st.argc, want.size());
  EXPECT_EQ(st.argv, want);
  EXPECT_EQ(st.envp, std::vector<std::string>{"X=1"});
  // AT_EXECFN is the name execve was given.
  EXPECT_EQ(String(st.aux[AT_EXECFN]), "/script");
}

TEST_F(LoaderTest, ScriptLineParsing) {
  WriteFile("/bin/interp", StaticExec().Bytes());
  std::string long_arg(300, 'a');
  struct Case {
    std::string script;
    std::vector<std::string> argv;  // after the rewrite, for argv {"s", "x"}
  } cases[] = {
      {"#!/bin/interp\n", {"/bin/interp", "/s", "x"}},
      {"#!/bin/interp", {"/bin/interp", "/s", "x"}},  // no newline at all
      {"#! \t/bin/interp \t\n", {"/bin/interp", "/s", "x"}},
      // Everything after the name is one argument, inner blanks kept.
      {"#!/bin/interp  -a  -b \t\n", {"/bin/interp", "-a  -b", "/s", "x"}},
      {"#!/bin/interp\t-x\r\n", {"/bin/interp", "-x\r", "/s", "x"}},
      // A NUL ends the name, and then there is no argument.
      {std::string("#!/bin/interp\0junk\n", 19), {"/bin/interp", "/s", "x"}},
      // Without a newline in the first 256 bytes the argument is cut at 255.
      {"#!/bin/interp " + long_arg, {"/bin/interp", long_arg.substr(0, 255 - 14), "/s", "x"}},
  };
  for (const auto& c : cases) {
    WriteFile("/s", c.script);
    auto img = Load("/s", {"s", "x"});
    ASSERT_OK(img) << c.script;
    EXPECT_EQ(img->argv, c.argv) << c.script;
    ASSERT_OK(fs_.root->inode()->Unlink("s"));
    fs_.root->ForgetChild("s");
  }
}

TEST_F(LoaderTest, BadScriptLines) {
  WriteFile("/bin/interp", StaticExec().Bytes());
  struct Case {
    std::string script;
    int err;
  } cases[] = {
      {"#!\n", ENOEXEC},
      {"#!  \t \nbody", ENOEXEC},
      // No name at all before a NUL: Linux opens "" (the working directory).
      {"#!", EACCES},
      {"#!   ", EACCES},
      // A name running past the 256 bytes Linux reads could be truncated.
      {"#!/bin/" + std::string(300, 'i'), ENOEXEC},
      {"#!/bin/" + std::string(249, 'i'), ENOEXEC},  // 256 bytes, no terminator
      {"#!/nonexistent\n", ENOENT},
      {"#!/bin/interp/\n", ENOTDIR},
      {"#!/bin\n", EACCES},
  };
  for (const auto& c : cases) {
    WriteFile("/s", c.script);
    auto r = Load("/s", {"s"});
    ASSERT_FALSE(r.ok()) << c.script;
    EXPECT_EQ(r.error(), c.err) << c.script;
    ASSERT_OK(fs_.root->inode()->Unlink("s"));
    fs_.root->ForgetChild("s");
  }
  // A name that ends exactly at the last byte Linux reads is still whole
  // when a NUL (short file) follows it.
  std::string name = "/bin/interp";
  WriteFile("/s", "#!" + std::string(253 - name.size(), '/') + name);
  EXPECT_OK(Load("/s", {"s"}));
}

TEST_F(LoaderTest, ScriptChainsStopAfterFiveScripts) {
  WriteFile("/bin/interp", StaticExec().Bytes());
  // /c<n>_0 -> /c<n>_1 -> ... -> /c<n>_<n-1> -> /bin/interp: n scripts.
  for (int n = 1; n <= 7; n++) {
    std::vector<std::string> want = {"/bin/interp"};
    for (int i = n - 1; i >= 0; i--) {
      std::string me = "/c" + std::to_string(n) + "_" + std::to_string(i);
      std::string next =
          i == n - 1 ? "/bin/interp" : "/c" + std::to_string(n) + "_" + std::to_string(i + 1);
      WriteFile(me, "#!" + next + "\n");
      want.push_back(me);
    }
    auto r = Load("/c" + std::to_string(n) + "_0", {"argv0", "tail"});
    want.push_back("tail");
    if (n <= 5) {
      ASSERT_OK(r) << n << " scripts";
      EXPECT_EQ(r->argv, want);
    } else {
      ASSERT_FALSE(r.ok()) << n << " scripts";
      EXPECT_EQ(r.error(), ELOOP) << n << " scripts";
    }
  }
  // A script whose interpreter is itself.
  WriteFile("/self", "#!/self\n");
  EXPECT_ERRNO(Load("/self", {"self"}), ELOOP);
}

TEST_F(LoaderTest, RefusesWhatExecveRefuses) {
  WriteFile("/noexec", StaticExec().Bytes(), 0644);
  EXPECT_ERRNO(Load("/noexec", {"noexec"}), EACCES);
  WriteFile("/noexec-script", "#!/bin/interp\n", 0644);
  EXPECT_ERRNO(Load("/noexec-script", {"x"}), EACCES);
  WriteFile("/bin/interp-noexec", StaticExec().Bytes(), 0644);
  WriteFile("/script", "#!/bin/interp-noexec\n");
  EXPECT_ERRNO(Load("/script", {"x"}), EACCES);
  ASSERT_OK(fs_.root->inode()->Mkdir("dir", 0755));
  EXPECT_ERRNO(Load("/dir", {"dir"}), EACCES);
  EXPECT_ERRNO(Load("/", {"/"}), EACCES);
  EXPECT_ERRNO(Load("/missing", {"missing"}), ENOENT);
  EXPECT_ERRNO(Load("/noexec/x", {"x"}), ENOTDIR);
}

// Execute permission picks one class of bits by the caller's effective ids
// and supplementary groups (path_resolution(7)); root needs any execute bit.
TEST_F(LoaderTest, ExecutePermissionFollowsTheCallersIds) {
  // creds_: uid 1000, euid 1001, gid 2000, egid 2001.
  struct Case {
    const char* what;
    mode_t mode;
    uid_t owner;
    gid_t group;
    std::vector<uint32_t> groups;
    int err;
  } cases[] = {
      {"owner x", 0100, 1001, 9, {}, 0},
      {"owner without x, the rest with", 0677, 1001, 2001, {}, EACCES},
      {"the real uid is not the owner's", 0100, 1000, 9, {}, EACCES},
      {"group x by egid", 0010, 9, 2001, {}, 0},
      {"group without x, others with", 0705, 9, 2001, {}, EACCES},
      {"the real gid is not a group", 0010, 9, 2000, {}, EACCES},
      {"group x by a supplementary group", 0010, 9, 3002, {3001, 3002}, 0},
      {"supplementary group without x", 0705, 9, 3002, {3001, 3002}, EACCES},
      {"others x", 0001, 9, 9, {3001}, 0},
      {"others without x", 0770, 9, 9, {3001}, EACCES},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    WriteFile("/prog", StaticExec().Bytes(), c.mode);
    vfs::SetAttr owner;
    owner.set_uid = owner.set_gid = true;
    owner.uid = c.owner;
    owner.gid = c.group;
    ASSERT_OK(fs_.root->inode()->Lookup("prog").value()->SetAttributes(owner));
    creds_.fs.groups = c.groups;
    auto r = Load("/prog", {"prog"});
    if (c.err == 0) {
      EXPECT_OK(r);
    } else {
      EXPECT_ERRNO(r, c.err);
    }
    ASSERT_OK(fs_.root->inode()->Unlink("prog"));
    fs_.root->ForgetChild("prog");
  }
}

TEST_F(LoaderTest, RootNeedsSomeExecuteBit) {
  creds_ = Ids(1000, 0, 2000, 2000);  // effective root
  for (mode_t mode : {0100, 0010, 0001}) {
    WriteFile("/x" + std::to_string(mode), StaticExec().Bytes(), mode);
    EXPECT_OK(Load("/x" + std::to_string(mode), {"x"})) << "mode 0" << std::oct << mode;
  }
  WriteFile("/none", StaticExec().Bytes(), 0666);
  EXPECT_ERRNO(Load("/none", {"none"}), EACCES);
  // A real uid of 0 is not enough.
  WriteFile("/owner-only", StaticExec().Bytes(), 0700);
  creds_ = Ids(0, 1001, 0, 2001);
  EXPECT_ERRNO(Load("/owner-only", {"x"}), EACCES);
}

TEST_F(LoaderTest, InterpretersNeedExecutePermissionToo) {
  // Owned by root (tmpfs's default owner) and executable by it alone.
  WriteFile("/bin/root-only", StaticExec().Bytes(), 0700);
  WriteFile("/lib/root-only.so", MakeElf(ET_DYN).Bytes(), 0700);
  WriteFile("/script", "#!/bin/root-only\n");
  WriteFile("/dyn", WithInterps(ET_EXEC, {"/lib/root-only.so"}).Bytes());
  EXPECT_ERRNO(Load("/script", {"script"}), EACCES);
  EXPECT_ERRNO(Load("/dyn", {"dyn"}), EACCES);
  creds_ = Ids(0, 0, 0, 0);
  EXPECT_OK(Load("/script", {"script"}));
  EXPECT_OK(Load("/dyn", {"dyn"}));
}

TEST_F(LoaderTest, RefusesFilesThatAreNotExecutables) {
  std::string elf = StaticExec().Bytes();
  std::string true_bytes = ReadHostFile("/bin/true");
  struct Case {
    const char* name;
    std::string bytes;
  } cases[] = {
      {"empty", ""},
      {"one byte", "#"},
      {"text", "echo not a script\n"},
      {"magic only", elf.substr(0, 4)},
      {"header cut short", elf.substr(0, sizeof(Elf64_Ehdr) - 1)},
      {"program headers cut short", elf.substr(0, kPhoff + 20)},
      // Linux maps this and the program faults when it reaches the missing
      // bytes; husk refuses it (see CheckProgramHeaders).
      {"segment cut short", elf.substr(0, kCodeOffset + 2)},
      {"true cut in its program headers", true_bytes.substr(0, 200)},
  };
  for (const auto& c : cases) {
    WriteFile("/f", c.bytes);
    SCOPED_TRACE(testing::Message() << c.name);
    EXPECT_ERRNO(Load("/f", {"f"}), ENOEXEC);
    ASSERT_OK(fs_.root->inode()->Unlink("f"));
    fs_.root->ForgetChild("f");
  }
}

TEST_F(LoaderTest, ArgumentLimitsGiveE2BIG) {
  WriteFile("/prog", StaticExec().Bytes());
  // All strings and their pointers must fit a quarter of the 8 MiB stack.
  std::vector<std::string> big(25, std::string(100000, 'a'));
  EXPECT_ERRNO(Load("/prog", big), E2BIG);
  EXPECT_ERRNO(Load("/prog", {"prog"}, big), E2BIG);
  std::vector<std::string> many(300000, "ab");
  EXPECT_ERRNO(Load("/prog", many), E2BIG);
  // One string may have MAX_ARG_STRLEN (128 KiB) bytes with its NUL.
  std::string longest(32 * 4096 - 1, 'x');
  EXPECT_OK(Load("/prog", {"prog", longest}));
  EXPECT_ERRNO(Load("/prog", {"prog", longest + "x"}), E2BIG);
  EXPECT_ERRNO(Load("/prog", {"prog"}, {"V=" + longest}), E2BIG);
  // Below both limits is fine, and the strings arrive intact.
  std::vector<std::string> fine(15, std::string(100000, 'b'));
  auto img = Load("/prog", fine);
  ASSERT_OK(img);
  EXPECT_EQ(ReadStack(img->stack_pointer).argv, fine);
}

TEST_F(LoaderTest, EmptyArgvBecomesOneEmptyString) {
  // Since Linux 5.18 execve with argv NULL or {NULL} starts the program with
  // argc 1 and argv[0] "".
  WriteFile("/prog", StaticExec().Bytes());
  auto img = Load("/prog", {});
  ASSERT_OK(img);
  InitialStack st = ReadStack(img->stack_pointer);
  EXPECT_EQ(st.argc, 1u);
  EXPECT_EQ(st.argv, std::vector<std::string>{""});
  // A script gets its own path in place of the missing argv[0].
  WriteFile("/s", "#!/prog\n");
  img = Load("/s", {});
  ASSERT_OK(img);
  EXPECT_EQ(img->argv, (std::vector<std::string>{"/prog", "/s"}));
}

TEST_F(LoaderTest, RelativePathsResolveFromTheWorkingDirectory) {
  WriteFile("/usr/bin/prog", StaticExec().Bytes());
  WriteFile("/usr/bin/s", "#!prog\n");
  fs_.cwd = vfs::Resolve(fs_, fs_.root, "/usr/bin", true).value();
  auto img = Load("s", {"s"});
  ASSERT_OK(img);
  EXPECT_EQ(img->argv, (std::vector<std::string>{"prog", "s"}));
  EXPECT_EQ(img->exe->Path(), "/usr/bin/prog");
  EXPECT_EQ(String(ReadStack(img->stack_pointer).aux[AT_EXECFN]), "s");
}

}  // namespace
}  // namespace husk::loader
