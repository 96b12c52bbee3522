/* husk's vDSO: the functions glibc finds through AT_SYSINFO_EHDR and calls
 * instead of the clock_gettime, gettimeofday, time, getcpu and clock_getres
 * syscalls (vdso(7)). They read the sentry's data page (sentry/time/vvar.h),
 * mapped just before this image, and fall back to the real syscall
 * instruction, which the platform traps like any other, whenever the page
 * cannot answer.
 *
 * Built without libc, position-independent, with no relocations and no
 * writable data: every address space maps the same pages. */
#include "sentry/time/vvar.h"

typedef long husk_time_t;
struct husk_timespec {
  long tv_sec;
  long tv_nsec;
};
struct husk_timeval {
  long tv_sec;
  long tv_usec;
};
struct husk_timezone {
  int tz_minuteswest;
  int tz_dsttime;
};

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

/* The data page, the page before this image (vdso.lds). */
extern const struct husk_vvar husk_vvar_page __attribute__((visibility("hidden")));

static inline const struct husk_vvar* vvar(void) { return &husk_vvar_page; }

static inline long syscall3(long nr, long a, long b, long c) {
  long ret;
  __asm__ __volatile__("syscall"
                       : "=a"(ret)
                       : "0"(nr), "D"(a), "S"(b), "d"(c)
                       : "rcx", "r11", "memory");
  return ret;
}

/* The clock's time in nanoseconds, or -1: ask the sentry. */
static inline int read_clock(int clock, int64_t* ns) {
  const struct husk_vvar* v = vvar();
  struct husk_vvar p;
  uint64_t tsc;
  uint32_t seq;
  do {
    seq = husk_vvar_read_begin(v);
    husk_vvar_copy(v, &p);
    tsc = husk_rdtsc_ordered();
  } while (husk_vvar_read_retry(v, seq));
  return husk_vclock_ns(&p, clock, tsc, ns);
}

int __vdso_clock_gettime(int clock, struct husk_timespec* ts) {
  int64_t ns;
  if (read_clock(clock, &ns) != 0) return (int)syscall3(SYS_clock_gettime, clock, (long)ts, 0);
  ts->tv_sec = ns / 1000000000;
  ts->tv_nsec = ns % 1000000000;
  return 0;
}

int __vdso_gettimeofday(struct husk_timeval* tv, struct husk_timezone* tz) {
  int64_t ns;
  if (read_clock(HUSK_CLOCK_REALTIME, &ns) != 0) {
    return (int)syscall3(SYS_gettimeofday, (long)tv, (long)tz, 0);
  }
  if (tv != 0) {
    tv->tv_sec = ns / 1000000000;
    tv->tv_usec = ns % 1000000000 / 1000;
  }
  if (tz != 0) {
    /* The sandbox keeps no kernel timezone (settimeofday cannot set one). */
    tz->tz_minuteswest = 0;
    tz->tz_dsttime = 0;
  }
  return 0;
}

/* time(2) is the coarse wall clock's seconds, as Linux's vDSO gives them. */
husk_time_t __vdso_time(husk_time_t* t) {
  int64_t ns;
  husk_time_t sec;
  if (read_clock(HUSK_CLOCK_REALTIME_COARSE, &ns) != 0) {
    return syscall3(SYS_time, (long)t, 0, 0);
  }
  sec = ns / 1000000000;
  if (t != 0) *t = sec;
  return sec;
}

int __vdso_clock_getres(int clock, struct husk_timespec* res) {
  const struct husk_vvar* v = vvar();
  long ns;
  switch (clock) {
    case HUSK_CLOCK_REALTIME:
    case HUSK_CLOCK_MONOTONIC:
    case HUSK_CLOCK_MONOTONIC_RAW:
    case HUSK_CLOCK_BOOTTIME:
    case HUSK_CLOCK_TAI:
      ns = 1; /* hrtimer resolution */
      break;
    case HUSK_CLOCK_REALTIME_COARSE:
    case HUSK_CLOCK_MONOTONIC_COARSE:
      ns = (long)__atomic_load_n(&v->coarse_ns, __ATOMIC_RELAXED);
      break;
    default:
      return (int)syscall3(SYS_clock_getres, clock, (long)res, 0);
  }
  if (res != 0) {
    res->tv_sec = 0;
    res->tv_nsec = ns;
  }
  return 0;
}

/* The CPU as IA32_TSC_AUX or the per-CPU segment's limit hold it, (node <<
 * 12) | cpu; node is always 0 in the sandbox. */
long __vdso_getcpu(unsigned* cpu, unsigned* node, void* unused) {
  const struct husk_vvar* v = vvar();
  uint32_t mode = __atomic_load_n(&v->getcpu_mode, __ATOMIC_RELAXED);
  uint64_t p = ~(uint64_t)0;
  uint32_t lo, hi, aux;
  switch (mode) {
    case HUSK_GETCPU_RDPID:
      __asm__ __volatile__(".byte 0xf3, 0x0f, 0xc7, 0xf8" : "=a"(p)); /* rdpid %rax */
      break;
    case HUSK_GETCPU_RDTSCP:
      __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
      p = aux;
      break;
    case HUSK_GETCPU_LSL:
      /* A selector LSL cannot read leaves p all ones: the syscall. */
      __asm__ __volatile__("lsl %1, %0" : "+r"(p) : "r"((uint64_t)HUSK_CPUNODE_SEG));
      break;
    default:
      return syscall3(SYS_getcpu, (long)cpu, (long)node, (long)unused);
  }
  p &= HUSK_CPUNODE_CPU_MASK;
  if (p >= __atomic_load_n(&v->ncpus, __ATOMIC_RELAXED)) {
    return syscall3(SYS_getcpu, (long)cpu, (long)node, (long)unused);
  }
  if (cpu != 0) *cpu = (unsigned)p;
  if (node != 0) *node = 0;
  return 0;
}

/* The names without the prefix, as Linux's vDSO has them too. */
int clock_gettime(int, struct husk_timespec*) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct husk_timeval*, struct husk_timezone*)
    __attribute__((weak, alias("__vdso_gettimeofday")));
husk_time_t time(husk_time_t*) __attribute__((weak, alias("__vdso_time")));
long getcpu(unsigned*, unsigned*, void*) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct husk_timespec*) __attribute__((weak, alias("__vdso_clock_getres")));

/* Linux's vDSO carries its kernel version in an ELF note, which glibc
 * reads; husk says the release uname(2) reports (sentry/kernel/version.h). */
#define HUSK_LINUX_VERSION_CODE ((6 << 16) | (1 << 8) | 0)
struct husk_note {
  uint32_t namesz, descsz, type;
  char name[8];
  uint32_t desc;
};
__attribute__((section(".note.Linux"), aligned(4),
               used)) static const struct husk_note linux_note = {6, 4, 0, "Linux",
                                                                  HUSK_LINUX_VERSION_CODE};
