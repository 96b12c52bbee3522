// Fuzzes the ELF loader (sentry/loader) as execve(2) drives it: the input
// becomes /prog in a tmpfs and is loaded into a fresh MemoryManager over a
// fake address space, as loader_test.cc does. An input starting with "#!"
// is a script. Everything after the first kSplit marker becomes /i, a second
// file the first can name as its PT_INTERP or #! interpreter; /bin/interp (a
// valid static ELF), /lib/ld.so (a valid ET_DYN) and /dir are there too.
//
// Any result is fine (the loader returns errnos for bad files); a crash, a
// sanitizer report, an UncheckedResult, or a successful load whose initial
// stack does not hold argc and argv is a bug.
#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sentry/fsimpl/tmpfs/tmpfs.h"
#include "sentry/loader/loader.h"
#include "sentry/memfile/memfile.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/vfs.h"

namespace husk {
namespace {

constexpr std::string_view kSplit = "\xff\xfe\xfd\xfc";
constexpr uintptr_t kMinAddr = 0x10000;
constexpr uintptr_t kMaxAddr = 0x7ffffffff000;

// Copies land in the memory file; nothing is mapped in a host process.
class FakeAddressSpace : public platform::AddressSpace {
 public:
  Status MapFile(uintptr_t addr, uint64_t offset, size_t length, int prot) override { return Ok(); }
  Status Unmap(uintptr_t addr, size_t length) override { return Ok(); }
};

// A minimal executable: one R+X PT_LOAD over the whole file, with `interp`
// as a PT_INTERP if not empty. The code is exit(0); it never runs here.
std::string MakeElf(uint16_t type, const std::string& interp) {
  constexpr uint64_t kCode = 0x200, kData = 0x300;
  uint64_t base = type == ET_EXEC ? 0x400000 : 0;
  Elf64_Ehdr eh{};
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = type;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = base + kCode;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  std::vector<Elf64_Phdr> ph;
  if (!interp.empty()) {
    Elf64_Phdr p{};
    p.p_type = PT_INTERP;
    p.p_flags = PF_R;
    p.p_offset = kData;
    p.p_filesz = p.p_memsz = interp.size() + 1;
    p.p_align = 1;
    ph.push_back(p);
  }
  uint64_t size = kData + interp.size() + 1;
  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_flags = PF_R | PF_X;
  load.p_vaddr = load.p_paddr = base;
  load.p_filesz = size;
  load.p_memsz = size + 0x1000;
  load.p_align = 0x1000;
  ph.push_back(load);
  eh.e_phnum = static_cast<uint16_t>(ph.size());
  std::string out(size, '\0');
  memcpy(out.data(), &eh, sizeof(eh));
  memcpy(out.data() + eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr));
  const unsigned char code[] = {0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05};
  memcpy(out.data() + kCode, code, sizeof(code));
  memcpy(out.data() + kData, interp.c_str(), interp.size() + 1);
  return out;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "elf_fuzz: %s\n", what);
    abort();
  }
}

class World {
 public:
  World() {
    auto mf = MemoryFile::Create(256 << 20);
    Check(mf.ok(), "cannot create the memory file");
    mf_ = std::move(mf).value();
    fs_.root = std::make_shared<vfs::Dentry>("/", nullptr, tmpfs::NewTmpfsRoot(0755));
    fs_.cwd = fs_.root;
    vfs::InodeRef root = fs_.root->inode();
    auto bin = root->Mkdir("bin", 0755);
    auto lib = root->Mkdir("lib", 0755);
    Check(bin.ok() && lib.ok() && root->Mkdir("dir", 0755).ok(), "cannot make directories");
    Write(**bin, "interp", MakeElf(ET_EXEC, ""));
    Write(**lib, "ld.so", MakeElf(ET_DYN, ""));
    prog_ = Write(*root, "prog", "");
    interp_ = Write(*root, "i", "");
    creds_.uid = creds_.euid = 1000;
    creds_.gid = creds_.egid = 1000;
    creds_.fs = vfs::Creds{1000, 1000, {}, 0};
  }

  void Run(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    size_t split = in.find(kSplit);
    std::string_view prog = in.substr(0, split);
    std::string_view second =
        split == std::string_view::npos ? std::string_view() : in.substr(split + kSplit.size());
    Replace(*prog_, prog);
    Replace(*interp_, second);

    // The validator the loader exports, on the bytes directly.
    (void)loader::ValidateElf(std::string(prog), prog.size());

    MemoryManager mm(*mf_, std::make_unique<FakeAddressSpace>(), kMinAddr, kMaxAddr);
    std::vector<std::string> argv = {"prog", "arg"};
    auto img = loader::Load(mm, fs_, "/prog", argv, {"A=B"}, creds_);
    if (verbose_) fprintf(stderr, "elf_fuzz: Load: errno %d\n", img.ok() ? 0 : img.error());
    if (!img.ok()) return;
    // The initial stack starts with argc and argv as Image says.
    uint64_t argc = 0;
    Check(mm.CopyIn(img->stack_pointer, &argc, sizeof(argc)).ok(), "no argc at the stack pointer");
    Check(argc == img->argv.size(), "argc disagrees with Image::argv");
    for (size_t i = 0; i < argc; i++) {
      uint64_t p = 0;
      Check(mm.CopyIn(img->stack_pointer + 8 + 8 * i, &p, sizeof(p)).ok(), "no argv pointer");
      auto s = mm.CopyInString(p, 1 << 20);
      Check(s.ok() && *s == img->argv[i], "argv string disagrees with Image::argv");
    }
    Check(img->stack_pointer % 16 == 0, "stack pointer not 16-byte aligned");
  }

 private:
  vfs::InodeRef Write(vfs::Inode& dir, const std::string& name, std::string_view bytes) {
    auto file = dir.Create(name, 0755);
    Check(file.ok(), "cannot create a file");
    Replace(**file, bytes);
    return *file;
  }

  static void Replace(vfs::Inode& file, std::string_view bytes) {
    vfs::SetAttr truncate;
    truncate.set_size = true;
    truncate.size = 0;
    Check(file.SetAttributes(truncate).ok(), "cannot truncate");
    size_t done = 0;
    while (done < bytes.size()) {
      auto n = file.WriteAt(bytes.data() + done, bytes.size() - done, done);
      Check(n.ok() && *n > 0, "cannot write");
      done += *n;
    }
  }

  std::unique_ptr<MemoryFile> mf_;
  vfs::FsContext fs_;
  vfs::InodeRef prog_, interp_;
  loader::Credentials creds_;
  const bool verbose_ = getenv("HUSK_FUZZ_VERBOSE") != nullptr;  // the outcome of each input
};

}  // namespace
}  // namespace husk

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static husk::World* world = new husk::World();  // kept for the whole run
  world->Run(data, size);
  return 0;
}
