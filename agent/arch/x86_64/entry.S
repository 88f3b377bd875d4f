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

	.section .note.GNU-stack, "", @progbits
