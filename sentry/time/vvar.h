/* The vDSO's data page ("[vvar]"): what the sentry publishes and husk's
 * vDSO (sentry/vdso/image) reads to tell the time without a syscall. The
 * layout and the arithmetic are shared by both, so this header is C that
 * also compiles as C++, and uses nothing but compiler builtins (the vDSO is
 * built without libc).
 *
 * The sentry is the only writer, under a seqlock: `seq` is odd while it
 * writes; a reader copies the fields, reads the TSC, and retries if `seq`
 * changed. With clock_mode HUSK_VCLOCK_TSC the sandbox's CLOCK_MONOTONIC is
 *
 *   mono_ns + ((tsc - tsc_base) * mult >> shift)   (128-bit product)
 *
 * for tsc up to tsc_base + max_delta (a TSC behind tsc_base reads as
 * tsc_base: the sentry puts tsc_base a little ahead of its own reading, so
 * that a reader still on the old parameters never sees a later time than
 * the new ones give); past max_delta the parameters are
 * stale and the reader asks the sentry (a syscall), which re-bases them on
 * its own host clock. The other clocks are offsets from it, as Linux's
 * timekeeper keeps them; CLOCK_MONOTONIC_RAW has its own rate. With
 * HUSK_VCLOCK_NONE (no usable TSC, or not yet calibrated) every reader asks
 * the sentry, as Linux's vDSO does with VCLOCK_NONE. */
#ifndef HUSK_SENTRY_TIME_VVAR_H_
#define HUSK_SENTRY_TIME_VVAR_H_

#include <stdint.h>

#define HUSK_VCLOCK_NONE 0u
#define HUSK_VCLOCK_TSC 1u

/* How the vDSO's getcpu finds the CPU it runs on: IA32_TSC_AUX, which Linux
 * sets to (node << 12) | cpu, through RDPID or RDTSCP; or the limit of the
 * per-CPU segment Linux puts in the GDT (LSL); or the getcpu syscall. */
#define HUSK_GETCPU_SYSCALL 0u
#define HUSK_GETCPU_RDPID 1u
#define HUSK_GETCPU_RDTSCP 2u
#define HUSK_GETCPU_LSL 3u
/* __CPUNODE_SEG: GDT entry 15, user privilege. */
#define HUSK_CPUNODE_SEG 0x7bu
#define HUSK_CPUNODE_CPU_MASK 0xfffu

/* Linux's clock ids (time.h is not available to the vDSO). */
#define HUSK_CLOCK_REALTIME 0
#define HUSK_CLOCK_MONOTONIC 1
#define HUSK_CLOCK_MONOTONIC_RAW 4
#define HUSK_CLOCK_REALTIME_COARSE 5
#define HUSK_CLOCK_MONOTONIC_COARSE 6
#define HUSK_CLOCK_BOOTTIME 7
#define HUSK_CLOCK_TAI 11

#define HUSK_VVAR_SIZE 4096u

/* NOLINTBEGIN(readability-identifier-naming): C for the vDSO, named as C is. */
struct husk_vvar {
  uint32_t seq;
  uint32_t clock_mode; /* HUSK_VCLOCK_* */
  uint64_t tsc_base;
  uint64_t mult;      /* nanoseconds per TSC tick, << shift */
  uint64_t mono_ns;   /* CLOCK_MONOTONIC at tsc_base */
  uint64_t max_delta; /* TSC ticks past tsc_base the parameters hold for */
  uint32_t shift;
  uint32_t getcpu_mode; /* HUSK_GETCPU_*; not under seq */
  uint64_t raw_mult;    /* CLOCK_MONOTONIC_RAW's mult */
  uint64_t raw_ns;      /* CLOCK_MONOTONIC_RAW at tsc_base */
  int64_t real_offset;  /* CLOCK_REALTIME - CLOCK_MONOTONIC */
  int64_t boot_offset;  /* CLOCK_BOOTTIME - CLOCK_MONOTONIC */
  int64_t tai_offset;   /* CLOCK_TAI - CLOCK_REALTIME */
  uint64_t coarse_ns;   /* the tick: the coarse clocks' resolution */
  uint32_t ncpus;       /* getcpu: a CPU number at or past this asks the sentry */
  uint32_t pad;
};

/* The clock's time at TSC reading tsc from parameters p (a consistent copy).
 * Returns 0 with *ns set, or -1: ask the sentry (another clock, no TSC
 * clock, or stale parameters). */
static inline int husk_vclock_ns(const struct husk_vvar* p, int clock, uint64_t tsc, int64_t* ns) {
  uint64_t delta, mono;
  int64_t t;
  if (p->clock_mode != HUSK_VCLOCK_TSC) return -1;
  delta = tsc - p->tsc_base;
  if ((int64_t)delta < 0) delta = 0;
  if (delta > p->max_delta) return -1;
  mono = p->mono_ns + (uint64_t)(((unsigned __int128)delta * p->mult) >> p->shift);
  switch (clock) {
    case HUSK_CLOCK_MONOTONIC:
      *ns = (int64_t)mono;
      return 0;
    case HUSK_CLOCK_MONOTONIC_COARSE:
      *ns = (int64_t)(mono - mono % p->coarse_ns);
      return 0;
    case HUSK_CLOCK_REALTIME:
      *ns = (int64_t)mono + p->real_offset;
      return 0;
    case HUSK_CLOCK_REALTIME_COARSE:
      t = (int64_t)mono + p->real_offset;
      *ns = t - (int64_t)((uint64_t)t % p->coarse_ns);
      return 0;
    case HUSK_CLOCK_BOOTTIME:
      *ns = (int64_t)mono + p->boot_offset;
      return 0;
    case HUSK_CLOCK_TAI:
      *ns = (int64_t)mono + p->real_offset + p->tai_offset;
      return 0;
    case HUSK_CLOCK_MONOTONIC_RAW:
      *ns = (int64_t)(p->raw_ns + (uint64_t)(((unsigned __int128)delta * p->raw_mult) >> p->shift));
      return 0;
    default:
      return -1;
  }
}

/* The TSC, read after every earlier instruction has completed (Linux's
 * rdtsc_ordered): a load of seq cannot pass it. */
static inline uint64_t husk_rdtsc_ordered(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
  return ((uint64_t)hi << 32) | lo;
}

/* The seqlock's read side: begin (waits out a writer), copy the fields
 * (word by word with relaxed atomic loads: the writer may be changing them),
 * read the TSC, and start again if retry says the copy may be torn. */
static inline uint32_t husk_vvar_read_begin(const struct husk_vvar* v) {
  uint32_t seq;
  while ((seq = __atomic_load_n(&v->seq, __ATOMIC_ACQUIRE)) & 1u) __builtin_ia32_pause();
  return seq;
}

static inline void husk_vvar_copy(const struct husk_vvar* v, struct husk_vvar* out) {
  const uint64_t* src = (const uint64_t*)v;
  uint64_t* dst = (uint64_t*)out;
  unsigned i;
  for (i = 0; i < sizeof(*v) / sizeof(uint64_t); i++) {
    dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
  }
}

static inline int husk_vvar_read_retry(const struct husk_vvar* v, uint32_t seq) {
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return __atomic_load_n(&v->seq, __ATOMIC_RELAXED) != seq;
}
/* NOLINTEND(readability-identifier-naming) */

#endif /* HUSK_SENTRY_TIME_VVAR_H_ */
