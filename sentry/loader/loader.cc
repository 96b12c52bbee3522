#include "sentry/loader/loader.h"

#include <elf.h>
#include <errno.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>

namespace husk::loader {
namespace {

constexpr uintptr_t kExecBase = 0x555555554000;  // where Linux puts an ET_DYN program
constexpr uint64_t kMinStack = 128 << 10, kMaxStack = uint64_t{1} << 30;
// argv+envp (E2BIG): a quarter of the stack, between ARG_MAX (32 pages) and
// three quarters of _STK_LIM (8 MiB).
constexpr uint64_t kMinArgBytes = 128 << 10, kMaxArgBytes = 6 << 20;
// MAX_ARG_STRLEN: one argument or environment string, NUL included.
constexpr size_t kMaxArgStrlen = 32 * kPageSize;
// Linux's exec_binprm gives ELOOP once the file opened at depth 6 would be
// loaded, so a chain of five #! scripts ending in an ELF runs and six do not:
// the script plus "four recursions" of execve(2).
constexpr int kMaxExecDepth = 5;
// BINPRM_BUF_SIZE: how much of the file binfmt_script sees.
constexpr size_t kBinprmBufSize = 256;
// The program header table may take at most 64 KiB (load_elf_phdrs).
constexpr size_t kMaxPhdrTableBytes = 65536;

Result<std::string> ReadExact(vfs::Inode& inode, uint64_t off, size_t n) {
  std::string buf(n, '\0');
  size_t done = 0;
  while (done < n) {
    ASSIGN_OR_RETURN(size_t r, inode.ReadAt(buf.data() + done, n - done, off + done));
    if (r == 0) break;
    done += r;
  }
  buf.resize(done);
  return buf;
}

struct ElfInfo {
  Elf64_Ehdr eh;
  std::vector<Elf64_Phdr> ph;
};

// The ELF header checks of Linux's load_elf_binary and load_elf_phdrs. Linux
// itself never looks at EI_CLASS, EI_DATA or EI_VERSION (a real 32-bit or
// big-endian file fails on e_machine or e_phentsize instead); husk rejects
// them up front, as gVisor does, since it only runs 64-bit little-endian code.
Status CheckHeader(const Elf64_Ehdr& eh, uint64_t file_size) {
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return Errno{ENOEXEC};
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
      eh.e_ident[EI_VERSION] != EV_CURRENT)
    return Errno{ENOEXEC};
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) return Errno{ENOEXEC};
  if (eh.e_machine != EM_X86_64) return Errno{ENOEXEC};
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return Errno{ENOEXEC};
  if (eh.e_phnum == 0 || eh.e_phnum * sizeof(Elf64_Phdr) > kMaxPhdrTableBytes)
    return Errno{ENOEXEC};
  // Linux reads the table and fails on a short read; husk knows the size.
  uint64_t ph_end = eh.e_phoff + uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  if (ph_end < eh.e_phoff || ph_end > file_size) return Errno{ENOEXEC};
  return Ok();
}

// Program header checks. Linux finds a bad PT_LOAD only while mapping it,
// past the point of no return, and kills the process; husk checks before
// committing to the new image and returns ENOEXEC, as gVisor does. A segment
// reaching past the end of the file also runs on Linux until the missing
// page is touched (SIGBUS); husk's memory manager would read zeros there, so
// it is refused too.
Status CheckProgramHeaders(const std::vector<Elf64_Phdr>& phdrs, uint64_t file_size) {
  bool seen_interp = false;
  for (const auto& p : phdrs) {
    // Only the first PT_INTERP counts: load_elf_binary stops at it.
    if (p.p_type == PT_INTERP && !seen_interp) {
      seen_interp = true;
      if (p.p_filesz < 2 || p.p_filesz > vfs::kPathMax) return Errno{ENOEXEC};
    }
    if (p.p_type != PT_LOAD) continue;
    if (p.p_filesz > p.p_memsz) return Errno{ENOEXEC};
    if (p.p_offset + p.p_filesz < p.p_offset || p.p_offset + p.p_filesz > file_size)
      return Errno{ENOEXEC};
    if (p.p_vaddr + p.p_memsz < p.p_vaddr || p.p_vaddr + p.p_memsz > (uintptr_t{1} << 47))
      return Errno{ENOEXEC};
    // elf_map's file offset must be page aligned.
    if ((p.p_vaddr - p.p_offset) % kPageSize != 0) return Errno{ENOEXEC};
  }
  return Ok();
}

// Reads and checks the header and program header table of an open file.
// A file shorter than an ELF header is not an ELF (ENOEXEC).
Result<ElfInfo> ParseElf(vfs::Inode& inode, uint64_t file_size) {
  ASSIGN_OR_RETURN(std::string hdr, ReadExact(inode, 0, sizeof(Elf64_Ehdr)));
  if (hdr.size() < sizeof(Elf64_Ehdr)) return Errno{ENOEXEC};
  ElfInfo info;
  memcpy(&info.eh, hdr.data(), sizeof(info.eh));
  TRY(CheckHeader(info.eh, file_size));
  size_t table_bytes = info.eh.e_phnum * sizeof(Elf64_Phdr);
  ASSIGN_OR_RETURN(std::string table, ReadExact(inode, info.eh.e_phoff, table_bytes));
  if (table.size() != table_bytes) return Errno{ENOEXEC};
  info.ph.resize(info.eh.e_phnum);
  memcpy(info.ph.data(), table.data(), table_bytes);
  TRY(CheckProgramHeaders(info.ph, file_size));
  return info;
}

int ProtOf(uint32_t flags) {
  int prot = 0;
  if (flags & PF_R) prot |= PROT_READ;
  if (flags & PF_W) prot |= PROT_WRITE;
  if (flags & PF_X) prot |= PROT_EXEC;
  return prot;
}

struct Loaded {
  uintptr_t base = 0;  // load bias
  uintptr_t entry = 0;
  uintptr_t phdr = 0;  // address of the program headers in memory
  uintptr_t end = 0;   // end of the highest segment (brk starts here)
  // The executable segments' span, [code_start, code_end) (load_elf_binary's
  // start_code and end_code: up to the end of the file bytes).
  uintptr_t code_start = UINTPTR_MAX, code_end = 0;
  ElfInfo elf;
};

// Maps the PT_LOAD segments of an ELF file.
Result<Loaded> MapElf(MemoryManager& mm, const vfs::FileRef& file, const ElfInfo& elf,
                      bool is_interp) {
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (const auto& p : elf.ph) {
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    lo = std::min<uintptr_t>(lo, PageDown(p.p_vaddr));
    hi = std::max<uintptr_t>(hi, PageUp(p.p_vaddr + p.p_memsz));
  }
  if (lo >= hi) return Errno{ENOEXEC};
  Loaded out;
  out.elf = elf;
  std::shared_ptr<Mappable> mappable = file->GetMappable();
  if (mappable == nullptr) return Errno{EACCES};
  // Reserve the whole span first so segments land at fixed distances.
  MmapRequest reserve;
  reserve.length = hi - lo;
  reserve.prot = PROT_NONE;
  reserve.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  if (elf.eh.e_type == ET_EXEC) {
    reserve.addr = lo;
    reserve.flags |= MAP_FIXED_NOREPLACE;
  } else if (!is_interp) {
    reserve.addr = kExecBase;
  }
  auto r = mm.Mmap(reserve);
  if (!r.ok()) return Errno{r.error() == EEXIST ? ENOMEM : r.error()};
  out.base = elf.eh.e_type == ET_EXEC ? 0 : *r - lo;
  for (const auto& p : elf.ph) {
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    uintptr_t seg = out.base + p.p_vaddr;
    uintptr_t start = PageDown(seg);
    uintptr_t file_end = seg + p.p_filesz;
    int prot = ProtOf(p.p_flags);
    if (p.p_filesz > 0) {
      MmapRequest m;
      m.addr = start;
      m.length = PageUp(file_end) - start;
      m.prot = prot;
      m.flags = MAP_PRIVATE | MAP_FIXED;
      m.file = mappable;
      m.offset = PageDown(p.p_offset);
      m.file_end = file_end;  // the rest of the last page is bss: zeros
      TRY(mm.Mmap(m));
    }
    uintptr_t anon_start = p.p_filesz > 0 ? PageUp(file_end) : start;
    uintptr_t anon_end = PageUp(seg + p.p_memsz);
    if (anon_end > anon_start) {
      MmapRequest m;
      m.addr = anon_start;
      m.length = anon_end - anon_start;
      m.prot = prot;
      m.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
      TRY(mm.Mmap(m));
    }
    out.end = std::max(out.end, anon_end);
    if (p.p_flags & PF_X) {
      out.code_start = std::min(out.code_start, seg);
      out.code_end = std::max(out.code_end, file_end);
    }
    // Linux finds AT_PHDR inside the segment that maps e_phoff.
    if (elf.eh.e_phoff >= p.p_offset && elf.eh.e_phoff < p.p_offset + p.p_filesz) {
      out.phdr = seg + (elf.eh.e_phoff - p.p_offset);
    }
  }
  for (const auto& p : elf.ph) {
    if (p.p_type == PT_PHDR) out.phdr = out.base + p.p_vaddr;
  }
  out.entry = out.base + elf.eh.e_entry;
  return out;
}

// Opens an executable for execve: a regular file the caller may execute.
Result<vfs::FileRef> OpenExecutable(const vfs::FsContext& fs, const std::string& path,
                                    const Credentials& creds, vfs::DentryRef* dentry,
                                    uint64_t* size) {
  ASSIGN_OR_RETURN(vfs::DentryRef d, vfs::Resolve(fs, fs.cwd, path, true, creds.fs));
  ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  // do_open_execat(): only regular files, then may_open(MAY_EXEC): root
  // (CAP_DAC_OVERRIDE) needs some execute bit, anyone else the one of their
  // class (path_resolution(7)).
  if (!S_ISREG(st.st_mode)) return Errno{EACCES};
  TRY(vfs::CheckPermission(creds.fs, st, vfs::kMayExec));
  // do_open_execat(): nothing runs from a noexec mount (path_noexec).
  if (vfs::NamespaceOf(fs).FlagsOf(*d) & vfs::MountNamespace::kNoExec) return Errno{EACCES};
  ASSIGN_OR_RETURN(vfs::FileRef f, d->inode()->Open(O_RDONLY));
  f->set_dentry(d);
  *dentry = d;
  *size = static_cast<uint64_t>(st.st_size);
  return f;
}

Result<uintptr_t> BuildStack(MemoryManager& mm, const std::vector<std::string>& argv,
                             const std::vector<std::string>& envp,
                             const std::vector<std::pair<uint64_t, uint64_t>>& auxv_in,
                             const std::string& execfn, uintptr_t stack_top) {
  uintptr_t sp = stack_top;
  auto push_bytes = [&](const void* data, size_t n) -> Result<uintptr_t> {
    sp -= n;
    TRY(mm.CopyOut(sp, data, n));
    return sp;
  };
  auto push_string = [&](const std::string& s) { return push_bytes(s.c_str(), s.size() + 1); };
  ASSIGN_OR_RETURN(uintptr_t execfn_addr, push_string(execfn));
  ASSIGN_OR_RETURN(uintptr_t platform_addr, push_string("x86_64"));
  unsigned char rnd[16];
  if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) return Errno{EIO};
  ASSIGN_OR_RETURN(uintptr_t random_addr, push_bytes(rnd, sizeof(rnd)));
  std::vector<uint64_t> env_ptrs, arg_ptrs;
  for (auto it = envp.rbegin(); it != envp.rend(); ++it) {
    ASSIGN_OR_RETURN(uintptr_t a, push_string(*it));
    env_ptrs.insert(env_ptrs.begin(), a);
  }
  for (auto it = argv.rbegin(); it != argv.rend(); ++it) {
    ASSIGN_OR_RETURN(uintptr_t a, push_string(*it));
    arg_ptrs.insert(arg_ptrs.begin(), a);
  }
  std::vector<std::pair<uint64_t, uint64_t>> auxv = auxv_in;
  auxv.emplace_back(AT_RANDOM, random_addr);
  auxv.emplace_back(AT_EXECFN, execfn_addr);
  auxv.emplace_back(AT_PLATFORM, platform_addr);
  auxv.emplace_back(AT_NULL, 0);
  // argc, argv[], NULL, envp[], NULL, auxv[]: 16-byte aligned at argc.
  std::vector<uint64_t> words;
  words.push_back(argv.size());
  words.insert(words.end(), arg_ptrs.begin(), arg_ptrs.end());
  words.push_back(0);
  words.insert(words.end(), env_ptrs.begin(), env_ptrs.end());
  words.push_back(0);
  for (auto& [k, v] : auxv) {
    words.push_back(k);
    words.push_back(v);
  }
  sp &= ~uintptr_t{15};
  if (words.size() % 2) sp -= 8;
  sp -= words.size() * 8;
  TRY(mm.CopyOut(sp, words.data(), words.size() * 8));
  return sp;
}

bool SpaceTab(char c) { return c == ' ' || c == '\t'; }

struct Shebang {
  std::string interp;
  bool has_arg = false;
  std::string arg;
};

// Parses "#!interp [optional-arg]" exactly as Linux's load_script does (see
// execve(2), "Interpreter scripts"): only the first 256 bytes count; the
// name ends at a space, tab or NUL; the rest of the line, trailing blanks
// trimmed, is one argument. Without a newline in those bytes the line may
// be cut short, which is fine for the argument but not for the name: a name
// with no space, tab or NUL after it gives ENOEXEC.
Result<Shebang> ParseShebang(std::string buf) {
  constexpr size_t kNpos = std::string::npos;
  buf.resize(kBinprmBufSize, '\0');  // a short file reads as NUL padded
  const size_t buf_end = kBinprmBufSize - 1;
  // Both helpers search the inclusive range [first, last], as Linux's do.
  auto next_non_spacetab = [&buf](size_t first, size_t last) {
    for (; first <= last; first++) {
      if (!SpaceTab(buf[first])) return first;
    }
    return kNpos;
  };
  auto next_terminator = [&buf](size_t first, size_t last) {
    for (; first <= last; first++) {
      if (SpaceTab(buf[first]) || buf[first] == '\0') return first;
    }
    return kNpos;
  };
  size_t i_end = buf.find('\n');
  if (i_end == kNpos) {
    size_t first = next_non_spacetab(2, buf_end);
    if (first == kNpos || next_terminator(first, buf_end) == kNpos) return Errno{ENOEXEC};
    i_end = buf_end;
  }
  while (SpaceTab(buf[i_end - 1])) i_end--;  // buf[1] is '!', which stops it
  size_t i_name = next_non_spacetab(2, i_end);
  if (i_name == kNpos || i_name == i_end) return Errno{ENOEXEC};
  size_t i_sep = next_terminator(i_name, i_end);
  size_t i_arg = kNpos;
  if (i_sep != kNpos && buf[i_sep] != '\0') i_arg = next_non_spacetab(i_sep, i_end);
  // Both strings are C strings: they end at the first NUL.
  buf[i_end] = '\0';
  if (i_arg != kNpos) buf[i_sep] = '\0';
  Shebang out;
  out.interp = buf.c_str() + i_name;
  if (i_arg != kNpos) {
    out.has_arg = true;
    out.arg = buf.c_str() + i_arg;
  }
  return out;
}

// The limits of Linux's copy_strings: each string at most MAX_ARG_STRLEN
// bytes with its NUL, and the strings (the file name included) plus one
// pointer each within a quarter of the stack.
Status CheckArgLimits(const std::string& filename, const std::vector<std::string>& argv,
                      const std::vector<std::string>& envp, uint64_t stack_limit) {
  const uint64_t limit = std::clamp(stack_limit / 4, kMinArgBytes, kMaxArgBytes);
  size_t total = filename.size() + 1;
  for (const auto* v : {&argv, &envp}) {
    for (const auto& s : *v) {
      if (s.size() + 1 > kMaxArgStrlen) return Errno{E2BIG};
      total += s.size() + 1 + sizeof(uint64_t);
    }
  }
  if (total > limit) return Errno{E2BIG};
  return Ok();
}

// Maps the vDSO's data page and code next to each other where mmap would
// put them (Linux's arch_setup_additional_pages, after the program and its
// interpreter); returns the code's address.
Result<uintptr_t> MapVdso(MemoryManager& mm, const Vdso& vdso) {
  MmapRequest reserve;
  reserve.length = vdso.vvar->bytes() + vdso.text->bytes();
  reserve.prot = PROT_NONE;
  reserve.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  ASSIGN_OR_RETURN(uintptr_t base, mm.Mmap(reserve));
  MmapRequest data;
  data.addr = base;
  data.length = vdso.vvar->bytes();
  data.prot = PROT_READ;
  data.flags = MAP_PRIVATE | MAP_FIXED;
  data.special = vdso.vvar;
  TRY(mm.Mmap(data));
  MmapRequest text;
  text.addr = base + vdso.vvar->bytes();
  text.length = vdso.text->bytes();
  text.prot = PROT_READ | PROT_EXEC;
  text.flags = MAP_PRIVATE | MAP_FIXED;
  text.special = vdso.text;
  return mm.Mmap(text);
}

}  // namespace

Status ValidateElf(const std::string& bytes, uint64_t file_size) {
  if (bytes.size() < sizeof(Elf64_Ehdr)) return Errno{ENOEXEC};
  Elf64_Ehdr eh;
  memcpy(&eh, bytes.data(), sizeof(eh));
  TRY(CheckHeader(eh, file_size));
  uint64_t table_bytes = eh.e_phnum * sizeof(Elf64_Phdr);
  if (eh.e_phoff > bytes.size() || table_bytes > bytes.size() - eh.e_phoff) return Errno{ENOEXEC};
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  memcpy(ph.data(), bytes.data() + eh.e_phoff, table_bytes);
  return CheckProgramHeaders(ph, file_size);
}

Result<Image> Load(MemoryManager& mm, const vfs::FsContext& fs, const std::string& path_in,
                   std::vector<std::string> argv, const std::vector<std::string>& envp,
                   const Credentials& creds, const Vdso* vdso) {
  // Since Linux 5.18 an empty argv becomes {""}, so argc is never 0.
  if (argv.empty()) argv.emplace_back();
  TRY(CheckArgLimits(path_in, argv, envp, creds.stack_limit));

  // The stack sits just under the top of the application's range; mmap
  // places mappings below it, leaving a gap as Linux does.
  const uint64_t stack_size = PageUp(std::clamp(creds.stack_limit, kMinStack, kMaxStack));
  uintptr_t stack_top = mm.max_addr() - 0x10000;
  mm.SetMmapBase(stack_top - stack_size - (128u << 20));

  std::string path = path_in;
  vfs::DentryRef dentry;
  vfs::FileRef file;
  uint64_t size = 0;
  std::string head;
  for (int depth = 0;; depth++) {
    // binfmt_script opens the interpreter before the depth is checked.
    ASSIGN_OR_RETURN(file, OpenExecutable(fs, path, creds, &dentry, &size));
    if (depth > kMaxExecDepth) return Errno{ELOOP};
    ASSIGN_OR_RETURN(head, ReadExact(*file->inode(), 0, kBinprmBufSize));
    if (head.size() < 2 || head[0] != '#' || head[1] != '!') break;
    ASSIGN_OR_RETURN(Shebang sb, ParseShebang(head));
    // "#!" followed by nothing but blanks up to a NUL names "", which Linux
    // opens as the working directory: not a regular file.
    if (sb.interp.empty()) return Errno{EACCES};
    // argv becomes: interpreter, [optional-arg], the script's path, argv[1..].
    std::vector<std::string> nargv{sb.interp};
    if (sb.has_arg) nargv.push_back(sb.arg);
    nargv.push_back(path);
    for (size_t i = 1; i < argv.size(); i++) nargv.push_back(std::move(argv[i]));
    argv = std::move(nargv);
    TRY(CheckArgLimits(path_in, argv, envp, creds.stack_limit));
    path = sb.interp;
  }
  ASSIGN_OR_RETURN(ElfInfo elf, ParseElf(*file->inode(), size));

  // The interpreter is opened and checked before anything is mapped, in
  // load_elf_binary's order; only the first PT_INTERP is used.
  bool has_interp = false;
  vfs::FileRef ifile;
  ElfInfo ielf;
  for (const auto& p : elf.ph) {
    if (p.p_type != PT_INTERP) continue;
    ASSIGN_OR_RETURN(std::string s, ReadExact(*file->inode(), p.p_offset, p.p_filesz));
    if (s.size() != p.p_filesz) return Errno{EIO};  // elf_read's short read
    if (s.back() != '\0') return Errno{ENOEXEC};
    std::string interp_path = s.substr(0, s.find('\0'));
    // Linux opens "" as the working directory, which is not a regular file.
    if (interp_path.empty()) return Errno{EACCES};
    vfs::DentryRef identry;
    uint64_t isize = 0;
    ASSIGN_OR_RETURN(ifile, OpenExecutable(fs, interp_path, creds, &identry, &isize));
    ASSIGN_OR_RETURN(std::string ihead, ReadExact(*ifile->inode(), 0, sizeof(Elf64_Ehdr)));
    if (ihead.size() != sizeof(Elf64_Ehdr)) return Errno{EIO};
    // An interpreter that is not a usable ELF is ELIBBAD, not ENOEXEC. Its
    // own PT_INTERP, if any, is ignored.
    auto parsed = ParseElf(*ifile->inode(), isize);
    if (!parsed.ok()) return Errno{parsed.error() == ENOEXEC ? ELIBBAD : parsed.error()};
    ielf = std::move(parsed).value();
    has_interp = true;
    break;
  }

  ASSIGN_OR_RETURN(Loaded exe, MapElf(mm, file, elf, false));
  Loaded interp;
  if (has_interp) {
    ASSIGN_OR_RETURN(interp, MapElf(mm, ifile, ielf, true));
  }
  mm.SetBrkBase(exe.end);
  if (exe.code_end > exe.code_start) mm.SetCodeRange(exe.code_start, exe.code_end);

  MmapRequest st;
  st.addr = stack_top - stack_size;
  st.length = stack_size;
  st.prot = PROT_READ | PROT_WRITE;
  st.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN;
  st.name = "[stack]";
  TRY(mm.Mmap(st));

  std::vector<std::pair<uint64_t, uint64_t>> auxv = {
      {AT_PHDR, exe.phdr},
      {AT_PHENT, sizeof(Elf64_Phdr)},
      {AT_PHNUM, elf.eh.e_phnum},
      {AT_PAGESZ, kPageSize},
      {AT_BASE, has_interp ? interp.base : 0},
      {AT_FLAGS, 0},
      {AT_ENTRY, exe.entry},
      {AT_UID, creds.uid},
      {AT_EUID, creds.euid},
      {AT_GID, creds.gid},
      {AT_EGID, creds.egid},
      {AT_SECURE, 0},
      {AT_CLKTCK, 100},
      {AT_HWCAP, getauxval(AT_HWCAP)},
      {AT_HWCAP2, getauxval(AT_HWCAP2)},
      {AT_MINSIGSTKSZ, getauxval(AT_MINSIGSTKSZ)},
  };
  if (vdso != nullptr) {
    // Linux's ARCH_DLINFO puts it first.
    ASSIGN_OR_RETURN(uintptr_t ehdr, MapVdso(mm, *vdso));
    auxv.insert(auxv.begin(), {AT_SYSINFO_EHDR, ehdr});
  }
  ASSIGN_OR_RETURN(uintptr_t sp, BuildStack(mm, argv, envp, auxv, path_in, stack_top));
  Image img;
  img.entry = has_interp ? interp.entry : exe.entry;
  img.stack_pointer = sp;
  img.exe = dentry;
  img.argv = std::move(argv);
  return img;
}

}  // namespace husk::loader
