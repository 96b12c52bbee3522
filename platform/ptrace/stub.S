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
husk_stub_end:
	.section .note.GNU-stack,"",@progbits
