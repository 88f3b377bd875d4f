/*
 * Entry of the restore agent, x86-64.
 *
 * The kernel starts us with rsp at argc (then argv, envp, auxv) on a stack
 * it placed near the top of the address space, where the image may need
 * to put its own mappings. Move to a stack inside our bss at once, pass
 * the old stack pointer to agent_main (System V: first argument in rdi),
 * and keep rsp 16-byte aligned before the call as the ABI wants.
 */
	.set	AGENT_STACK_SIZE, 256 * 1024

	.section .text.entry, "ax"
	.globl	_start
	.type	_start, @function
_start:
	mov	%rsp, %rdi
	lea	agent_stack + AGENT_STACK_SIZE(%rip), %rsp
	and	$-16, %rsp
	xor	%ebp, %ebp
	call	agent_main
	ud2
	.size	_start, . - _start

/*
 * long agent_clone3(struct clone_args *ca, unsigned long size,
 *                   void (*fn)(uint64_t), uint64_t arg)
 *
 * clone3 for a thread: the parent returns the new tid (or -errno); the
 * child starts on the stack the kernel gave it (ca->stack + stack_size)
 * and calls fn(arg), which never returns. r8 and r9 survive the syscall.
 */
	.text
	.globl	agent_clone3
	.type	agent_clone3, @function
agent_clone3:
	mov	%rdx, %r8
	mov	%rcx, %r9
	mov	$435, %eax
	syscall
	test	%rax, %rax
	jnz	1f
	xor	%ebp, %ebp
	and	$-16, %rsp
	mov	%r9, %rdi
	call	*%r8
	ud2
1:	ret
	.size	agent_clone3, . - agent_clone3

	.section .note.GNU-stack, "", @progbits
