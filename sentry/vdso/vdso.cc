#include "sentry/vdso/vdso.h"

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>

#include <cstring>

#include "sentry/time/sandbox_clock.h"

extern "C" {
extern const char husk_vdso_image_begin[];
extern const char husk_vdso_image_end[];
}

namespace husk::vdso {
namespace {

// IA32_TSC_AUX or the per-CPU segment's limit: (node << 12) | cpu.
uint64_t ReadCpuNode(uint32_t mode) {
  uint64_t p = UINT64_MAX;
  uint32_t lo, hi, aux;
  switch (mode) {
    case HUSK_GETCPU_RDPID:
      __asm__ __volatile__(".byte 0xf3, 0x0f, 0xc7, 0xf8" : "=a"(p));  // rdpid %rax
      break;
    case HUSK_GETCPU_RDTSCP:
      __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
      p = aux;
      break;
    case HUSK_GETCPU_LSL:
      // A selector LSL cannot read leaves p as it was.
      __asm__ __volatile__("lsl %1, %0" : "+r"(p) : "r"(uint64_t{HUSK_CPUNODE_SEG}));
      break;
    default:
      break;
  }
  return p;
}

// Whether `mode` names the CPU sched_getcpu(3) says the thread is on (tried
// again if the thread moved in between).
bool Agrees(uint32_t mode) {
  for (int i = 0; i < 20; i++) {
    const int before = sched_getcpu();
    const uint64_t p = ReadCpuNode(mode);
    const int after = sched_getcpu();
    if (before < 0 || before != after) continue;
    return (p & HUSK_CPUNODE_CPU_MASK) == static_cast<uint64_t>(before);
  }
  return false;
}

}  // namespace

std::string_view Image() {
  return std::string_view(husk_vdso_image_begin,
                          static_cast<size_t>(husk_vdso_image_end - husk_vdso_image_begin));
}

Status CheckImage(std::string_view image) {
  Elf64_Ehdr eh;
  if (image.size() < sizeof(eh)) return Errno{ENOEXEC};
  memcpy(&eh, image.data(), sizeof(eh));
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_type != ET_DYN || eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
      eh.e_phoff > image.size() || eh.e_phnum > (image.size() - eh.e_phoff) / sizeof(Elf64_Phdr)) {
    return Errno{ENOEXEC};
  }
  int loads = 0;
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, image.data() + eh.e_phoff + i * sizeof(ph), sizeof(ph));
    if (ph.p_type != PT_LOAD) continue;
    loads++;
    if (ph.p_offset != 0 || ph.p_vaddr != 0 || ph.p_filesz != ph.p_memsz ||
        ph.p_filesz > image.size() || (ph.p_flags & PF_W)) {
      return Errno{ENOEXEC};
    }
  }
  return loads == 1 ? Ok() : Status(Errno{ENOEXEC});
}

uint32_t ChooseGetcpu() {
  unsigned a, b, c, d;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 22)) && Agrees(HUSK_GETCPU_RDPID)) {
    return HUSK_GETCPU_RDPID;
  }
  if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (d & (1u << 27)) && Agrees(HUSK_GETCPU_RDTSCP)) {
    return HUSK_GETCPU_RDTSCP;
  }
  if (Agrees(HUSK_GETCPU_LSL)) return HUSK_GETCPU_LSL;
  return HUSK_GETCPU_SYSCALL;
}

Result<loader::Vdso> Create(MemoryFile& mf, int ncpus) {
  const std::string_view image = Image();
  TRY(CheckImage(image));
  const size_t text_pages = PageUp(image.size()) / kPageSize;
  ASSIGN_OR_RETURN(uint64_t data, mf.Allocate(1));
  auto vvar = std::make_shared<const SpecialPages>(mf, data, 1, "[vvar]", PROT_READ);
  ASSIGN_OR_RETURN(uint64_t text, mf.Allocate(text_pages));
  memcpy(mf.At(text), image.data(), image.size());
  // Linux's vDSO may be made writable (debuggers set breakpoints in it);
  // the mapping is private, so the copy is the address space's own.
  auto code = std::make_shared<const SpecialPages>(mf, text, text_pages, "[vdso]",
                                                   PROT_READ | PROT_WRITE | PROT_EXEC);
  SandboxClock& clock = SandboxClock::Get();
  clock.MoveVvar(reinterpret_cast<husk_vvar*>(mf.At(data)));
  clock.SetGetcpu(ChooseGetcpu(), static_cast<uint32_t>(ncpus));
  return loader::Vdso{std::move(vvar), std::move(code)};
}

}  // namespace husk::vdso
