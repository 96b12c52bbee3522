/* The ptrace stub: the only code left in an address-space host process.
 * It is copied to a fixed page (kStubBase) in a freshly forked child and
 * entered with %rdi = its own base and %rsi = its length. It unmaps every
 * other mapping of the inherited sentry image, stops itself with SIGSTOP
 * for the tracer, and from then on only ever executes the injected
 * "syscall; int3" pair below, or the clone entry that makes its threads. The application's own syscalls never run
 * here: they stop at PTRACE_SYSEMU entry and are skipped by the host. */
	.text
	.globl husk_stub_begin
	.globl husk_stub_syscall
	.globl husk_stub_clone
	.globl husk_stub_end
	.p2align 12
husk_stub_begin:
	mov %rdi, %r12
	mov %rsi, %r13
	/* munmap(0, base) */
	mov $11, %eax
	xor %edi, %edi
	mov %r12, %rsi
	syscall
	/* munmap(base + len, TASK_SIZE - (base + len)) */
	lea (%r12, %r13), %rdi
	movabs $0x7ffffffff000, %rsi
	sub %rdi, %rsi
	mov $11, %eax
	syscall
	/* kill(getpid(), SIGSTOP) */
	mov $39, %eax
	syscall
	mov %eax, %edi
	mov $19, %esi
	mov $62, %eax
	syscall
husk_stub_syscall:
	syscall
	int3
	jmp husk_stub_syscall
/* An injected clone(CLONE_THREAD...) enters here. The parent traps with the
 * child's tid; the child (rax 0, no stack of its own: it never pushes)
 * parks in pause() until its tracer-to-be seizes and interrupts it. */
husk_stub_clone:
	syscall
	test %rax, %rax
	jz husk_stub_park
	int3
	jmp husk_stub_syscall
husk_stub_park:
	mov $34, %eax
	syscall
	jmp husk_stub_park

/* The systrap platform's handler (systrap.cc). Every signal the stub takes
 * runs it on the thread's signal stack, with every signal blocked: the
 * seccomp trap of an application syscall (SIGSYS), a fault, or the sentry's
 * interrupt. The thread's control page is the first page of the 64 KiB slot
 * its signal stack lies in, shared with the sentry, which reads and edits
 * the signal frame in place. The handler says "stopped", wakes the sentry
 * if it sleeps (a waiter that sleeps sets ST_SLEEPING in the state first),
 * and waits for an order: run (return through rt_sigreturn into whatever
 * registers the frame now holds), or run a syscall here and report again,
 * or clone a thread. Offsets: struct SystrapCtl in systrap.cc. */
	.set CTL_STATE, 0
	.set CTL_SIG, 8
	.set CTL_INFO, 16
	.set CTL_UCTX, 24
	.set CTL_FS, 32
	.set CTL_CUR_FS, 40
	.set CTL_GS, 48
	.set CTL_CUR_GS, 56
	.set CTL_NR, 64
	.set CTL_ARGS, 72
	.set CTL_RET, 120
	.set CTL_FSGSBASE, 128
	.set CTL_ZERO_MASK, 136
	.set CTL_SS, 144
	.set CTL_SPIN, 200
	.set ST_STOPPED, 1
	.set ST_RUN, 2
	.set ST_SYSCALL, 3
	.set ST_CLONE, 4
	.set ST_SLEEPING, 0x80000000
	.globl husk_systrap_handler
	.globl husk_systrap_restorer
	.globl husk_systrap_park
husk_systrap_handler:
	mov %rsp, %rbx
	and $-65536, %rbx
	mov %rdi, CTL_SIG(%rbx)
	mov %rsi, CTL_INFO(%rbx)
	mov %rdx, CTL_UCTX(%rbx)
	cmpq $0, CTL_FSGSBASE(%rbx)
	je .Lreport
	rdfsbase %rax
	mov %rax, CTL_CUR_FS(%rbx)
	rdgsbase %rax
	mov %rax, CTL_CUR_GS(%rbx)
.Lreport:
	/* state = stopped; wake the sentry if it sleeps */
	mov $ST_STOPPED, %eax
	xchg %eax, CTL_STATE(%rbx)
	test $ST_SLEEPING, %eax
	jz .Lwait
	/* futex(&state, FUTEX_WAKE, INT_MAX) */
	mov $202, %eax
	mov %rbx, %rdi
	mov $1, %esi
	mov $0x7fffffff, %edx
	syscall
.Lwait:
	/* Spin a while for the order (the sentry often answers within
	 * microseconds, and a futex hand-over costs far more), then sleep.
	 * The budget is read on every turn: the sentry cuts it to 0 when it
	 * expects to take long over this stop. */
	xor %ecx, %ecx
.Lspin:
	movl CTL_STATE(%rbx), %eax
	cmp $ST_STOPPED, %eax
	jne .Lorder
	pause
	inc %rcx
	cmp CTL_SPIN(%rbx), %rcx
	jb .Lspin
	mov $ST_STOPPED, %eax
	mov $(ST_STOPPED | ST_SLEEPING), %edx
	lock cmpxchg %edx, CTL_STATE(%rbx)
	jne .Lorder
.Lsleep:
	/* futex(&state, FUTEX_WAIT, ST_STOPPED | ST_SLEEPING, NULL) */
	mov $202, %eax
	mov %rbx, %rdi
	xor %esi, %esi
	mov $(ST_STOPPED | ST_SLEEPING), %edx
	xor %r10d, %r10d
	syscall
	movl CTL_STATE(%rbx), %eax
	cmp $(ST_STOPPED | ST_SLEEPING), %eax
	je .Lsleep
.Lorder:
	/* The sentry may have said it sleeps on the order's word. */
	and $~ST_SLEEPING, %eax
	cmp $ST_RUN, %eax
	je .Lrun
	cmp $ST_SYSCALL, %eax
	je .Lsyscall
	cmp $ST_CLONE, %eax
	je .Lclone
	/* Anything else (the application scribbled on the page): report again. */
	jmp .Lreport
/* arch_prctl(code, the control page's `want`) unless `cur` already holds
 * it; `cur` changes only if the call took. */
.macro SET_BASE want, cur, code
	mov \want(%rbx), %rsi
	cmp \cur(%rbx), %rsi
	je 9f
	mov $\code, %edi
	mov $158, %eax
	syscall
	test %rax, %rax
	jnz 9f
	mov \want(%rbx), %rsi
	mov %rsi, \cur(%rbx)
9:
.endm
.Lrun:
	SET_BASE CTL_FS, CTL_CUR_FS, 0x1002 /* ARCH_SET_FS */
	SET_BASE CTL_GS, CTL_CUR_GS, 0x1001 /* ARCH_SET_GS */
	ret
.Lsyscall:
	/* Only the calls the sentry orders (the page is the application's to
	 * write too): mmap, mprotect, munmap, exit. */
	mov CTL_NR(%rbx), %rax
	cmp $9, %rax
	je 3f
	cmp $10, %rax
	je 3f
	cmp $11, %rax
	je 3f
	cmp $60, %rax
	je 3f
	movq $-1, CTL_RET(%rbx)
	jmp .Lreport
3:
	mov CTL_ARGS(%rbx), %rdi
	mov CTL_ARGS+8(%rbx), %rsi
	mov CTL_ARGS+16(%rbx), %rdx
	mov CTL_ARGS+24(%rbx), %r10
	mov CTL_ARGS+32(%rbx), %r8
	mov CTL_ARGS+40(%rbx), %r9
	syscall
	mov %rax, CTL_RET(%rbx)
	jmp .Lreport
.Lclone:
	/* clone(flags, the child's slot top, 0, &child's state, 0) */
	mov CTL_NR(%rbx), %rax
	mov CTL_ARGS(%rbx), %rdi
	mov CTL_ARGS+8(%rbx), %rsi
	mov CTL_ARGS+16(%rbx), %rdx
	mov CTL_ARGS+24(%rbx), %r10
	mov CTL_ARGS+32(%rbx), %r8
	syscall
	test %rax, %rax
	jz .Lchild
	mov %rax, CTL_RET(%rbx)
	jmp .Lreport
.Lchild:
	/* The new thread: its stack is the top of its own slot. */
	lea -1(%rsp), %rbx
	and $-65536, %rbx
	/* sigaltstack(&ctl->ss, NULL) */
	lea CTL_SS(%rbx), %rdi
	xor %esi, %esi
	mov $131, %eax
	syscall
	test %rax, %rax
	jnz .Lchild_fail
	/* rt_sigprocmask(SIG_SETMASK, &zero, NULL, 8): the parent's handler
	 * had everything blocked, and a blocked trap would kill the process. */
	mov $2, %edi
	lea CTL_ZERO_MASK(%rbx), %rsi
	xor %edx, %edx
	mov $8, %r10d
	mov $14, %eax
	syscall
/* A thread enters the handler for the first time from here (int3's SIGTRAP);
 * the sentry's first run replaces these registers with the application's. */
husk_systrap_park:
	int3
	jmp husk_systrap_park
.Lchild_fail:
	mov $60, %eax
	mov $1, %edi
	syscall
husk_systrap_restorer:
	mov $15, %eax
	syscall
husk_stub_end:
	.section .note.GNU-stack,"",@progbits
