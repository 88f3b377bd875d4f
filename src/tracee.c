/* ptrace control of one process, see tracee.h. The only caller of ptrace(2). */
#include "tracee.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct esky_tracee {
	pid_t pid;
	bool gone;
	bool exitkill;         /* dies with us (PTRACE_O_EXITKILL): spawned ones, by default */
	bool inject_exitkill;  /* ... turned on for the injection only (inject_begin) */
	int mem_fd;            /* /proc/PID/mem, opened on first need */
	bool cow_shared;       /* read through mem_fd only (esky_tracee_set_cow_shared) */
	uint64_t syscall_insn; /* address of a `syscall` instruction, 0 if unknown */
	/* remote syscall state */
	bool injecting;
	int injected;          /* syscalls run since inject_begin */
	esky_regs_t saved_regs;
	uint64_t saved_mask;
	pid_t syscall_child;
	int deferred_sig;      /* an unblockable stop signal seen while injecting */
	pid_t ns_init;         /* spawned in a PID namespace: its init (our child), or 0 */
	bool ns_killed;        /* ... and killed (esky_tracee_kill_namespace) */
	unsigned sticky_opts;  /* PTRACE_O_* kept by every esky_tracee_set_options */
};

#define ESKY_PTRACE_OPTIONS (PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)

static struct esky_tracee *tracee_new(pid_t pid)
{
	struct esky_tracee *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->pid = pid;
	t->mem_fd = -1;
	return t;
}

pid_t esky_tracee_pid(const struct esky_tracee *t)
{
	return t->pid;
}

bool esky_tracee_gone(const struct esky_tracee *t)
{
	return t->gone;
}

void esky_tracee_free(struct esky_tracee *t)
{
	if (!t)
		return;
	/*
	 * The namespace's init ends once the program and what it left behind
	 * have: reaped if it has (it may outlive us, then the system reaps it).
	 */
	if (t->ns_init > 0 && t->gone)
		waitpid(t->ns_init, NULL, __WALL | (t->ns_killed ? 0 : WNOHANG));
	if (t->mem_fd >= 0)
		close(t->mem_fd);
	free(t);
}

/*
 * In the child, before exec: put fd_src[i] at fd_dst[i]. Sources are first
 * copied above every number involved, so that a dup2 never overwrites a
 * source that is still to be placed. *keep is an fd that must survive (the
 * exec-error pipe); it is moved up too.
 */
static int place_fds(const struct esky_spawn *sp, int *keep)
{
	int base = 3, tmp[256];
	size_t i;

	if (sp->fd_n > ESKY_ARRAY_SIZE(tmp))
		return -E2BIG;
	for (i = 0; i < sp->fd_n; i++) {
		if (sp->fd_dst[i] >= base)
			base = sp->fd_dst[i] + 1;
		if (sp->fd_src[i] >= base)
			base = sp->fd_src[i] + 1;
	}
	if (*keep >= base)
		base = *keep + 1;
	for (i = 0; i < sp->fd_n; i++) {
		tmp[i] = fcntl(sp->fd_src[i], F_DUPFD_CLOEXEC, base);
		if (tmp[i] < 0)
			return -errno;
	}
	*keep = fcntl(*keep, F_DUPFD_CLOEXEC, base);
	if (*keep < 0)
		return -errno;
	for (i = 0; i < sp->fd_n; i++)
		if (dup2(tmp[i], sp->fd_dst[i]) < 0)
			return -errno;
	if (sp->close_others) {
		/* Close every fd that is neither a destination nor *keep. */
		int lo = 0;

		for (int fd = 0; fd <= *keep; fd++) {
			bool wanted = fd == *keep;

			for (i = 0; i < sp->fd_n && !wanted; i++)
				wanted = sp->fd_dst[i] == fd;
			if (wanted) {
				if (fd > lo)
					syscall(SYS_close_range, lo, fd - 1, 0);
				lo = fd + 1;
			}
		}
		syscall(SYS_close_range, lo, ~0U, 0);
	}
	return 0;
}

static sigset_t inherited_ignored;

void esky_tracee_note_inherited_signals(void)
{
	sigemptyset(&inherited_ignored);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;

		if (sig != SIGKILL && sig != SIGSTOP && !sigaction(sig, NULL, &sa) &&
		    sa.sa_handler == SIG_IGN)
			sigaddset(&inherited_ignored, sig);
	}
}

/*
 * Keep CAP_SYS_ADMIN (which this process has in its new user namespace)
 * across exec: inheritable, then ambient. 0 or -errno.
 */
static int keep_sys_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2];

	if (syscall(SYS_capget, &h, c) < 0)
		return -errno;
	c[0].inheritable |= 1u << CAP_SYS_ADMIN;
	if (syscall(SYS_capset, &h, c) < 0)
		return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0) < 0)
		return -errno;
	return 0;
}

static void spawn_child(const struct esky_spawn *sp, int gate, int errfd)
{
	sigset_t empty;
	char c;
	int err;

	/* Wait until the parent has seized us. */
	while (read(gate, &c, 1) < 0 && errno == EINTR)
		;
	close(gate);
	if (sp->new_pgrp)
		setpgid(0, 0);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, sigismember(&inherited_ignored, sig) == 1 ? SIG_IGN : SIG_DFL);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, sp->sigmask ? sp->sigmask : &empty, NULL);
	err = sp->ns_pid > 0 ? keep_sys_admin() : 0;
	if (!err)
		err = place_fds(sp, &errfd);
	if (!err && sp->cwd && chdir(sp->cwd) < 0)
		err = -errno;
	if (!err) {
		/*
		 * A path (the restore's program or agent, named by an image) is
		 * executed as it is: execvp runs a file the kernel refuses
		 * (ENOEXEC, a text file) with /bin/sh, and a path from an image
		 * must never reach a shell. A bare name is looked up in $PATH.
		 */
		if (strchr(sp->path, '/'))
			execve(sp->path, sp->argv, sp->envp ? sp->envp : environ);
		else if (sp->envp)
			execvpe(sp->path, sp->argv, sp->envp);
		else
			execvp(sp->path, sp->argv);
		err = -errno;
	}
	err = -err;
	if (write(errfd, &err, sizeof(err)) < 0)
		_exit(126);
	_exit(127);
}

static int write_proc_self(const char *what, const char *text)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/self/%s", what);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * In a user namespace of our own: our uid and gid mapped to themselves
 * (an unprivileged process may map its own ids, once setgroups is denied).
 */
static int map_own_ids(uid_t uid, gid_t gid)
{
	char map[64];
	int err = write_proc_self("setgroups", "deny");

	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (!err)
		err = write_proc_self("uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if (!err)
		err = write_proc_self("gid_map", map);
	return err;
}

/*
 * What the init of esky's PID namespace does once the program is made:
 * reap whatever ends there, the program and the processes it left behind
 * (orphans come to pid 1), and end with the program's status once none
 * is left: its end would kill every process of the namespace.
 */
static __attribute__((noreturn)) void ns_init_reap(pid_t program)
{
	int status, code = 0;

	for (;;) {
		pid_t w = waitpid(-1, &status, __WALL);

		if (w == program)
			code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (w < 0 && errno == ECHILD)
			_exit(code);
		if (w < 0 && errno != EINTR)
			_exit(127);
	}
}

/*
 * The init of a new PID namespace (pid 1 there, our child, already in a
 * new user namespace): map our uid and gid, make the program with the pid
 * asked for, tell its pid as we see it through pidfd, then reap whatever
 * ends in the namespace until the program does, and end with its status.
 */
static __attribute__((noreturn)) void ns_init_main(const struct esky_spawn *sp, int gate,
						   int errfd, int pidfd, uid_t uid, gid_t gid)
{
	pid_t want = sp->ns_pid, p;
	struct clone_args ca;
	int err;

	err = map_own_ids(uid, gid);
	/*
	 * A /proc of this namespace, in a mount namespace of its own, so that
	 * /proc/self is the program's pid as it sees it. Where the kernel
	 * refuses (a container that masks parts of /proc), the program sees
	 * ours: /proc/self then names its pid out here (doc/esky.md).
	 */
	bool own_mounts = !err && unshare(CLONE_NEWNS) == 0 &&
			  mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0;

	prctl(PR_SET_NAME, "esky-ns-init", 0, 0, 0);
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&want;
	ca.set_tid_size = 1;
	p = err ? -1 : (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (!err && p < 0)
		err = -errno;
	if (p == 0) {
		/* The program: /proc is the parent namespace's, so /proc/self is our pid there. */
		char self[32];
		ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
		int host = -1;

		if (n > 0) {
			self[n] = '\0';
			host = atoi(self);
		}
		if (write(pidfd, &host, sizeof(host)) != sizeof(host))
			_exit(127);
		close(pidfd);
		/* Mounted by the program, not its init: a /proc is of its mounter's PID namespace. */
		if (own_mounts)
			mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		spawn_child(sp, gate, errfd);
	}
	if (err) {
		err = -err;
		if (write(errfd, &err, sizeof(err)) < 0)
			_exit(126);
		_exit(127);
	}
	/* Nothing of esky's stays open in the namespace's init (its stdio, images, pipes). */
	syscall(SYS_close_range, 0, ~0U, 0);
	(void)gate;
	ns_init_reap(p);
}

/*
 * Start the init of a new user and PID namespace, which makes the program
 * there: *init is our child, *pid the program as we see it (-1 if it
 * could not be made: the cause comes through errp). 0 or -errno.
 */
static int spawn_in_namespace(const struct esky_spawn *sp, int gate[2], int errp[2], pid_t *init,
			      pid_t *pid)
{
	struct clone_args ca;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int pidp[2], host = -1;
	pid_t c;

	if (pipe2(pidp, O_CLOEXEC) < 0)
		return -errno;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC;
	ca.exit_signal = SIGCHLD;
	c = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (c < 0) {
		int err = -errno;

		close(pidp[0]);
		close(pidp[1]);
		return err;
	}
	if (c == 0) {
		close(gate[1]);
		close(errp[0]);
		close(pidp[0]);
		ns_init_main(sp, gate[0], errp[1], pidp[1], uid, gid);
	}
	close(pidp[1]);
	while (read(pidp[0], &host, sizeof(host)) < 0 && errno == EINTR)
		;
	close(pidp[0]);
	*init = c;
	*pid = host;
	return 0;
}

/*
 * A process of a tree, in the namespace, still esky's code: make its
 * children (each with its pid) first, then become what it was: a zombie
 * ends at once with its status; a live one joins its session and group,
 * says who it is (its index, with SCM_CREDENTIALS: the kernel gives the
 * monitor its pid as the monitor sees it), and execs its program.
 */
static __attribute__((noreturn)) void member_main(const struct esky_spawn_member *m, size_t n,
						  size_t self, int gate, int errfd, int sock)
{
	const struct esky_spawn_member *me = &m[self];

	/*
	 * Its session and group before its children are made (they join
	 * them); a group led by another process of the tree may not exist
	 * yet (a sibling still starting): tried again for a while.
	 */
	if (!me->zombie) {
		if (me->sid == me->pid)
			setsid();
		if (me->pgid == me->pid) {
			setpgid(0, 0);
		} else if (me->pgid) {
			struct timespec nap = { 0, 1000000 };

			for (int i = 0; i < 1000 && setpgid(0, me->pgid) < 0 && errno == EPERM; i++)
				nanosleep(&nap, NULL);
		}
	}
	for (size_t k = 0; k < n; k++) {
		struct clone_args ca;
		pid_t want = m[k].pid, c;

		if (m[k].parent != (int)self)
			continue;
		memset(&ca, 0, sizeof(ca));
		ca.exit_signal = SIGCHLD;
		ca.set_tid = (uint64_t)(uintptr_t)&want;
		ca.set_tid_size = 1;
		c = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		if (c == 0)
			member_main(m, n, k, gate, errfd, sock);
		if (c < 0) {
			int err = errno;

			if (write(errfd, &err, sizeof(err)) < 0)
				_exit(126);
			_exit(127);
		}
	}
	if (me->zombie) {
		if (WIFSIGNALED(me->status)) {
			sigset_t one;

			signal(WTERMSIG(me->status), SIG_DFL);
			sigemptyset(&one);
			sigaddset(&one, WTERMSIG(me->status));
			sigprocmask(SIG_UNBLOCK, &one, NULL);
			kill(getpid(), WTERMSIG(me->status));
		}
		_exit(WEXITSTATUS(me->status));
	}
	{
		int idx = (int)self;
		char cbuf[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = { &idx, sizeof(idx) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				      .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		struct ucred uc = { getpid(), getuid(), getgid() };

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_CREDENTIALS;
		cm->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
		if (sendmsg(sock, &msg, 0) < 0)
			_exit(127);
	}
	close(sock);
	spawn_child(&me->sp, gate, errfd);
	_exit(127);
}

/* Who a member is (its index) and its pid as we see it. -errno, or -EAGAIN after the timeout. */
static int read_member(int sock, int errfd, int *idx, pid_t *pid)
{
	struct pollfd pfd[2] = { { sock, POLLIN, 0 }, { errfd, POLLIN, 0 } };
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { idx, sizeof(*idx) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;

	if (poll(pfd, 2, 10000) <= 0)
		return -EAGAIN;
	if (!(pfd[0].revents & POLLIN)) {
		int err = EIO;

		if (read(errfd, &err, sizeof(err)) != sizeof(err))
			err = EIO;
		return -err;
	}
	if (recvmsg(sock, &msg, 0) != sizeof(*idx))
		return -EIO;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;

			memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
			*pid = uc.pid;
			return 0;
		}
	}
	return -EPROTO;
}

int esky_tracee_spawn_tree(const struct esky_spawn_member *m, size_t n, struct esky_tracee **out)
{
	int gate[2] = { -1, -1 }, errp[2] = { -1, -1 }, sk[2] = { -1, -1 }, one = 1, ret = 0;
	size_t live = 0, got = 0;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	struct clone_args ca;
	pid_t init;

	for (size_t i = 0; i < n; i++) {
		out[i] = NULL;
		live += !m[i].zombie;
	}
	if (pipe2(gate, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sk) < 0 ||
	    setsockopt(sk[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		ret = esky_error(-errno, "cannot start the processes: %s", strerror(errno));
		goto out;
	}
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC;
	ca.exit_signal = SIGCHLD;
	init = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (init < 0) {
		ret = esky_error(-errno, "cannot make namespaces for the processes (clone3: %s)",
				 strerror(errno));
		goto out;
	}
	if (init == 0) {
		pid_t want = m[0].pid, root;
		int status, err;
		struct clone_args rc;

		close(gate[1]);
		close(errp[0]);
		close(sk[0]);
		err = map_own_ids(uid, gid);
		if (!err && unshare(CLONE_NEWNS) == 0 &&
		    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0)
			mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
		prctl(PR_SET_NAME, "esky-ns-init", 0, 0, 0);
		memset(&rc, 0, sizeof(rc));
		rc.exit_signal = SIGCHLD;
		rc.set_tid = (uint64_t)(uintptr_t)&want;
		rc.set_tid_size = 1;
		root = err ? -1 : (pid_t)syscall(SYS_clone3, &rc, sizeof(rc));
		if (root == 0)
			member_main(m, n, 0, gate[0], errp[1], sk[1]);
		if (root < 0) {
			err = err ? -err : errno;
			if (write(errp[1], &err, sizeof(err)) < 0)
				_exit(126);
			_exit(127);
		}
		syscall(SYS_close_range, 0, ~0U, 0);
		(void)status;
		ns_init_reap(root);
	}
	close(gate[0]);
	close(errp[1]);
	close(sk[1]);
	gate[0] = errp[1] = sk[1] = -1;
	/* Each live process says who it is; we seize it before any may exec. */
	while (!ret && got < live) {
		int idx = -1;
		pid_t pid = 0;

		ret = read_member(sk[0], errp[0], &idx, &pid);
		if (ret) {
			esky_error(ret, "cannot start the processes of the tree: %s", strerror(-ret));
			break;
		}
		if (idx < 0 || (size_t)idx >= n || m[idx].zombie || out[idx]) {
			ret = esky_error(-EPROTO, "cannot start the processes of the tree: a stray one");
			break;
		}
		out[idx] = tracee_new(pid);
		if (!out[idx]) {
			ret = -ENOMEM;
			break;
		}
		out[idx]->exitkill = true;
		if (idx == 0)
			out[idx]->ns_init = init;
		if (ptrace(PTRACE_SEIZE, pid, 0, ESKY_PTRACE_OPTIONS) < 0) {
			ret = esky_error(-errno, "cannot trace process %d of the tree: %s", m[idx].pid,
					 strerror(errno));
			break;
		}
		got++;
	}
	close(gate[1]);
	gate[1] = -1;
	for (size_t i = 0; !ret && i < n; i++) {
		struct esky_stop st;

		if (!out[i])
			continue;
		for (;;) {
			ret = esky_tracee_wait(out[i], &st, false);
			if (ret || st.kind == ESKY_STOP_EXEC)
				break;
			if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED) {
				ret = -ECHILD;
				break;
			}
			esky_tracee_cont(out[i], st.kind == ESKY_STOP_SIGNAL ? st.sig : 0);
		}
		if (ret)
			esky_error(ret, "cannot run the program of process %d of the tree", m[i].pid);
	}
	if (ret) {
		/*
		 * The root's init ends the namespace, and with it every process in
		 * it; those we trace are reaped by us first (the init's end waits
		 * for them), then the init.
		 */
		kill(init, SIGKILL);
		for (size_t i = n; i-- > 0;) {
			if (out[i]) {
				if (ptrace(PTRACE_SEIZE, out[i]->pid, 0, 0) == 0 || errno == EPERM)
					esky_tracee_kill(out[i]);
				else
					out[i]->gone = true;
				out[i]->ns_init = 0;
				esky_tracee_free(out[i]);
				out[i] = NULL;
			}
		}
		waitpid(init, NULL, __WALL);
	}
out:
	for (int k = 0; k < 2; k++) {
		if (gate[k] >= 0)
			close(gate[k]);
		if (errp[k] >= 0)
			close(errp[k]);
		if (sk[k] >= 0)
			close(sk[k]);
	}
	return ret;
}

int esky_tracee_spawn(const struct esky_spawn *sp, struct esky_tracee **out)
{
	struct esky_tracee *t;
	struct esky_stop st;
	int gate[2], errp[2], ret, child_err = 0;
	pid_t pid = -1, init = 0;

	if (pipe2(gate, O_CLOEXEC) < 0)
		return esky_error(-errno, "pipe: %s", strerror(errno));
	if (pipe2(errp, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out_close_gate;
	}
	if (sp->ns_pid > 0) {
		ret = spawn_in_namespace(sp, gate, errp, &init, &pid);
		if (ret) {
			esky_error(ret, "cannot make a PID namespace for %s (clone3: %s): user "
				   "namespaces are not allowed here", sp->path, strerror(-ret));
			goto out_close_err;
		}
		if (pid <= 0) {
			close(errp[1]);
			errp[1] = -1;
			if (read(errp[0], &child_err, sizeof(child_err)) != sizeof(child_err))
				child_err = EIO;
			ret = esky_error(-child_err, "cannot give %s its pid %d in a new PID "
					 "namespace: %s", sp->path, sp->ns_pid, strerror(child_err));
			waitpid(init, NULL, __WALL);
			goto out_close_err;
		}
	} else {
		pid = fork();
		if (pid < 0) {
			ret = esky_error(-errno, "cannot run %s: fork: %s", sp->path, strerror(errno));
			goto out_close_err;
		}
		if (pid == 0) {
			close(gate[1]);
			close(errp[0]);
			spawn_child(sp, gate[0], errp[1]);
		}
	}
	close(gate[0]);
	close(errp[1]);
	gate[0] = errp[1] = -1;
	t = tracee_new(pid);
	if (t) {
		t->exitkill = true;
		t->ns_init = init;
	}
	if (!t || ptrace(PTRACE_SEIZE, pid, 0, ESKY_PTRACE_OPTIONS) < 0) {
		ret = t ? -errno : -ENOMEM;
		esky_error(ret, "cannot trace %s: %s", sp->path, strerror(-ret));
		kill(pid, SIGKILL);
		waitpid(init > 0 ? init : pid, NULL, __WALL);
		if (t)
			t->ns_init = 0;
		esky_tracee_free(t);
		goto out_close_err;
	}
	close(gate[1]);
	gate[1] = -1;
	for (;;) {
		ret = esky_tracee_wait(t, &st, false);
		if (ret)
			break;
		if (st.kind == ESKY_STOP_EXEC)
			break;
		if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED) {
			ret = -ECHILD;
			break;
		}
		/* A signal before exec (SIGCONT, a terminal signal): deliver it. */
		esky_tracee_cont(t, st.kind == ESKY_STOP_SIGNAL ? st.sig : 0);
	}
	if (read(errp[0], &child_err, sizeof(child_err)) == sizeof(child_err) && child_err) {
		ret = esky_error(-child_err, "cannot run %s: %s", sp->path, strerror(child_err));
	} else if (ret) {
		esky_error(ret, "cannot run %s: the program ended before it started", sp->path);
	}
	if (ret) {
		esky_tracee_kill(t);
		esky_tracee_free(t);
		goto out_close_err;
	}
	*out = t;
	ret = 0;

out_close_err:
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
out_close_gate:
	if (gate[0] >= 0)
		close(gate[0]);
	if (gate[1] >= 0)
		close(gate[1]);
	return ret;
}

int esky_tracee_attach(pid_t pid, struct esky_tracee **out)
{
	struct esky_tracee *t = tracee_new(pid);
	struct esky_stop st;
	int ret;

	if (!t)
		return -ENOMEM;
	if (ptrace(PTRACE_SEIZE, pid, 0, ESKY_PTRACE_OPTIONS & ~PTRACE_O_EXITKILL) < 0) {
		ret = -errno;
		esky_tracee_free(t);
		if (ret == -EPERM)
			return esky_error(ret, "cannot attach to pid %d: not permitted (another "
					  "user's process, already traced, or ptrace_scope "
					  "forbids it)", pid);
		return esky_error(ret, "cannot attach to pid %d: %s", pid, strerror(-ret));
	}
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) {
		ret = esky_error(-errno, "cannot stop pid %d: %s", pid, strerror(errno));
		goto out_detach;
	}
	for (;;) {
		ret = esky_tracee_wait(t, &st, false);
		if (ret)
			goto out_detach;
		if (st.kind == ESKY_STOP_INTERRUPT || st.kind == ESKY_STOP_GROUP)
			break;
		if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED) {
			ret = esky_error(-ESRCH, "pid %d ended while esky attached", pid);
			esky_tracee_free(t);
			return ret;
		}
		/* A signal arrived first: deliver it, the interrupt stop follows. */
		if (ptrace(PTRACE_CONT, pid, 0, st.kind == ESKY_STOP_SIGNAL ? st.sig : 0) < 0) {
			ret = -errno;
			goto out_detach;
		}
	}
	*out = t;
	return 0;

out_detach:
	ptrace(PTRACE_DETACH, pid, 0, 0);
	esky_tracee_free(t);
	return ret;
}

int esky_tracee_attach_threads(pid_t pid, bool (*have)(void *ctx, pid_t tid),
			       int (*add)(void *ctx, struct esky_tracee *t), void *ctx)
{
	for (;;) {
		int *tids;
		size_t n;
		bool added = false;
		int ret = esky_proc_tasks(pid, &tids, &n);

		if (ret)
			return esky_error(ret, "pid %d: cannot list its threads: %s", pid,
					  strerror(-ret));
		for (size_t i = 0; i < n && !ret; i++) {
			struct esky_tracee *tt;

			if (tids[i] == pid || have(ctx, tids[i]))
				continue;
			ret = esky_tracee_attach(tids[i], &tt);
			if (ret == -ESRCH) {
				/* It ended meanwhile: not there. */
				esky_error_clear();
				ret = 0;
				continue;
			}
			if (!ret) {
				ret = add(ctx, tt);
				if (ret) {
					esky_tracee_detach(tt, 0);
					esky_tracee_free(tt);
				}
			}
			added = !ret;
		}
		free(tids);
		if (ret || !added)
			return ret;
	}
}

void esky_tracee_end_namespace(struct esky_tracee *t)
{
	t->ns_killed = t->ns_init > 0;
}

int esky_tracee_adopt(pid_t pid, struct esky_tracee **out)
{
	*out = tracee_new(pid);
	/* An auto-attached child inherited our options, EXITKILL included. */
	if (*out)
		(*out)->exitkill = true;
	return *out ? 0 : -ENOMEM;
}

int esky_tracee_peek_user(struct esky_tracee *t, size_t off, uint64_t *value)
{
	long v;

	errno = 0;
	v = ptrace(PTRACE_PEEKUSER, t->pid, (void *)off, 0);
	if (errno)
		return -errno;
	*value = (uint64_t)v;
	return 0;
}

int esky_tracee_poke_user(struct esky_tracee *t, size_t off, uint64_t value)
{
	return ptrace(PTRACE_POKEUSER, t->pid, (void *)off, (void *)value) < 0 ? -errno : 0;
}

int esky_tracee_detach(struct esky_tracee *t, int sig)
{
	if (ptrace(PTRACE_DETACH, t->pid, 0, sig) < 0)
		return -errno;
	return 0;
}

void esky_tracee_kill(struct esky_tracee *t)
{
	struct esky_stop st;

	if (t->gone)
		return;
	kill(t->pid, SIGKILL);
	while (!t->gone && esky_tracee_wait(t, &st, false) == 0)
		;
}

int esky_tracee_set_options(struct esky_tracee *t, unsigned extra)
{
	unsigned opts = (ESKY_PTRACE_OPTIONS & ~PTRACE_O_EXITKILL) |
			(t->exitkill ? PTRACE_O_EXITKILL : 0) | t->sticky_opts | extra;

	if (ptrace(PTRACE_SETOPTIONS, t->pid, 0, opts) < 0)
		return -errno;
	return 0;
}

int esky_tracee_follow_threads(struct esky_tracee *t, bool on)
{
	t->sticky_opts = on ? PTRACE_O_TRACECLONE : 0;
	return esky_tracee_set_options(t, 0);
}

int esky_tracee_set_exitkill(struct esky_tracee *t, bool on)
{
	t->exitkill = on;
	return esky_tracee_set_options(t, 0);
}

int esky_tracee_cont(struct esky_tracee *t, int sig)
{
	return ptrace(PTRACE_CONT, t->pid, 0, sig) < 0 ? -errno : 0;
}

int esky_tracee_step(struct esky_tracee *t, int sig)
{
	return ptrace(PTRACE_SINGLESTEP, t->pid, 0, sig) < 0 ? -errno : 0;
}

int esky_tracee_listen(struct esky_tracee *t)
{
	return ptrace(PTRACE_LISTEN, t->pid, 0, 0) < 0 ? -errno : 0;
}

int esky_tracee_interrupt(struct esky_tracee *t)
{
	return ptrace(PTRACE_INTERRUPT, t->pid, 0, 0) < 0 ? -errno : 0;
}

static void decode_status(struct esky_tracee *t, int status, struct esky_stop *st)
{
	int event = (unsigned)status >> 16, sig;

	memset(st, 0, sizeof(*st));
	if (WIFEXITED(status)) {
		st->kind = ESKY_STOP_EXITED;
		st->status = WEXITSTATUS(status);
		t->gone = true;
		return;
	}
	if (WIFSIGNALED(status)) {
		st->kind = ESKY_STOP_KILLED;
		st->sig = WTERMSIG(status);
		st->core = WCOREDUMP(status);
		t->gone = true;
		return;
	}
	sig = WSTOPSIG(status);
	switch (event) {
	case PTRACE_EVENT_STOP:
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
			st->kind = ESKY_STOP_GROUP;
			st->sig = sig;
		} else {
			st->kind = ESKY_STOP_INTERRUPT;
		}
		return;
	case PTRACE_EVENT_EXEC:
		st->kind = ESKY_STOP_EXEC;
		return;
	case PTRACE_EVENT_CLONE:
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK: {
		unsigned long msg = 0;

		ptrace(PTRACE_GETEVENTMSG, t->pid, 0, &msg);
		st->kind = ESKY_STOP_CLONE;
		st->new_pid = (pid_t)msg;
		return;
	}
	case PTRACE_EVENT_EXIT: {
		unsigned long msg = 0;

		ptrace(PTRACE_GETEVENTMSG, t->pid, 0, &msg);
		st->kind = ESKY_STOP_EXIT_EVENT;
		st->status = (int)msg;
		return;
	}
	default:
		break;
	}
	if (sig == (SIGTRAP | 0x80)) {
		st->kind = ESKY_STOP_SYSCALL;
		return;
	}
	st->kind = ESKY_STOP_SIGNAL;
	st->sig = sig;
	if (sig == SIGTRAP) {
		siginfo_t si;

		if (ptrace(PTRACE_GETSIGINFO, t->pid, 0, &si) == 0)
			st->si_code = si.si_code;
	}
}

int esky_tracee_wait(struct esky_tracee *t, struct esky_stop *st, bool nohang)
{
	int status;
	pid_t r;

	if (t->gone)
		return -ECHILD;
	do
		r = waitpid(t->pid, &status, __WALL | (nohang ? WNOHANG : 0));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == ECHILD)
			t->gone = true;
		return -errno;
	}
	if (r == 0)
		return -EAGAIN;
	decode_status(t, status, st);
	return 0;
}

int esky_tracee_get_regs(struct esky_tracee *t, esky_regs_t *regs)
{
	return ptrace(PTRACE_GETREGS, t->pid, 0, regs) < 0 ? -errno : 0;
}

int esky_tracee_set_regs(struct esky_tracee *t, const esky_regs_t *regs)
{
	return ptrace(PTRACE_SETREGS, t->pid, 0, regs) < 0 ? -errno : 0;
}

int esky_tracee_get_xstate(struct esky_tracee *t, void **buf, size_t *len)
{
	struct iovec iov;
	void *b = malloc(ARCH_XSTATE_MAX), *nb;

	if (!b)
		return -ENOMEM;
	memset(b, 0, ARCH_XSTATE_MAX);
	iov.iov_base = b;
	iov.iov_len = ARCH_XSTATE_MAX;
	if (ptrace(PTRACE_GETREGSET, t->pid, ARCH_NT_XSTATE, &iov) < 0) {
		int err = -errno;

		free(b);
		return err;
	}
	nb = realloc(b, iov.iov_len);
	*buf = nb ? nb : b;
	*len = iov.iov_len;
	return 0;
}

int esky_tracee_set_xstate(struct esky_tracee *t, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return ptrace(PTRACE_SETREGSET, t->pid, ARCH_NT_XSTATE, &iov) < 0 ? -errno : 0;
}

int esky_tracee_get_sigmask(struct esky_tracee *t, uint64_t *mask)
{
	return ptrace(PTRACE_GETSIGMASK, t->pid, sizeof(*mask), mask) < 0 ? -errno : 0;
}

int esky_tracee_set_sigmask(struct esky_tracee *t, uint64_t mask)
{
	return ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(mask), &mask) < 0 ? -errno : 0;
}

int esky_tracee_get_siginfo(struct esky_tracee *t, siginfo_t *si)
{
	return ptrace(PTRACE_GETSIGINFO, t->pid, 0, si) < 0 ? -errno : 0;
}

int esky_tracee_get_rseq(struct esky_tracee *t, struct esky_rseq_conf *conf)
{
	struct __ptrace_rseq_configuration c;
	long n;

	memset(conf, 0, sizeof(*conf));
	memset(&c, 0, sizeof(c));
	n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, sizeof(c), &c);
	if (n < 0)
		return errno == EIO || errno == EINVAL ? 0 : -errno;
	conf->ptr = c.rseq_abi_pointer;
	conf->len = c.rseq_abi_size;
	conf->flags = c.flags;
	conf->sig = c.signature;
	return 0;
}

int esky_tracee_peek_siginfo(struct esky_tracee *t, bool shared, siginfo_t **out, size_t *nout)
{
	siginfo_t *all = NULL;
	size_t n = 0;

	for (;;) {
		struct __ptrace_peeksiginfo_args args = {
			.off = n,
			.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
			.nr = 32,
		};
		siginfo_t *na = realloc(all, (n + 32) * sizeof(*all));
		long got;

		if (!na) {
			free(all);
			return -ENOMEM;
		}
		all = na;
		got = ptrace(PTRACE_PEEKSIGINFO, t->pid, &args, all + n);
		if (got < 0) {
			int err = -errno;

			free(all);
			return err;
		}
		n += (size_t)got;
		if (got < 32)
			break;
	}
	*out = all;
	*nout = n;
	return 0;
}

static int mem_fd(struct esky_tracee *t)
{
	char path[64];

	if (t->mem_fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", t->pid);
		t->mem_fd = open(path, O_RDWR | O_CLOEXEC);
		if (t->mem_fd < 0)
			t->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	return t->mem_fd < 0 ? -errno : t->mem_fd;
}

void esky_tracee_set_cow_shared(struct esky_tracee *t, bool on)
{
	t->cow_shared = on;
}

int esky_tracee_read_mem(struct esky_tracee *t, uint64_t addr, void *buf, size_t len)
{
	size_t done = 0;
	int fd;

	while (done < len && !t->cow_shared) {
		struct iovec local = { (char *)buf + done, len - done };
		struct iovec remote = { (void *)(uintptr_t)(addr + done), len - done };
		ssize_t n = process_vm_readv(t->pid, &local, 1, &remote, 1, 0);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done == len)
		return 0;
	/* PROT_NONE or write-only pages: /proc/PID/mem reads them (FOLL_FORCE). */
	fd = mem_fd(t);
	if (fd < 0)
		return fd;
	return esky_pread_all(fd, (char *)buf + done, len - done, (off_t)(addr + done)) ? -EFAULT
											   : 0;
}

int esky_tracee_read_ranges(struct esky_tracee *t, const struct esky_mem_range *r, size_t n,
			    size_t *bad)
{
	enum { BATCH = 1024 };
	struct iovec local[BATCH], remote[BATCH];
	size_t i = 0;

	while (i < n) {
		size_t cnt = 0, want = 0, k;
		ssize_t got = -1;

		for (k = i; k < n && cnt < BATCH; k++, cnt++) {
			local[cnt] = (struct iovec){ r[k].buf, r[k].len };
			remote[cnt] = (struct iovec){ (void *)(uintptr_t)r[k].addr, r[k].len };
			want += r[k].len;
		}
		if (!t->cow_shared)
			got = process_vm_readv(t->pid, local, (unsigned long)cnt, remote,
					       (unsigned long)cnt, 0);
		if (got == (ssize_t)want) {
			i += cnt;
			continue;
		}
		/* Short: the whole ranges it read, then the one it stopped in by read_mem. */
		for (k = 0; got > 0 && (size_t)got >= r[i + k].len; k++)
			got -= (ssize_t)r[i + k].len;
		i += k;
		{
			int ret = esky_tracee_read_mem(t, r[i].addr, r[i].buf, r[i].len);

			if (ret) {
				*bad = i;
				return ret;
			}
		}
		i++;
	}
	return 0;
}

int esky_tracee_write_mem(struct esky_tracee *t, uint64_t addr, const void *buf, size_t len)
{
	int fd = mem_fd(t);

	if (fd < 0)
		return fd;
	return esky_pwrite_all(fd, buf, len, (off_t)addr) ? -EFAULT : 0;
}

int esky_tracee_share_syscall_insn(struct esky_tracee *to, struct esky_tracee *from)
{
	int ret = from->syscall_insn ? 0 : esky_tracee_find_syscall_insn(from);

	if (!ret)
		to->syscall_insn = from->syscall_insn;
	return ret;
}

int esky_tracee_find_syscall_insn(struct esky_tracee *t)
{
	static const unsigned char insn[ARCH_SYSCALL_INSN_LEN] = ARCH_SYSCALL_INSN_BYTES;
	struct esky_vma *vmas;
	size_t n, pass;
	int ret;

	t->syscall_insn = 0;
	ret = esky_proc_read_maps(t->pid, false, &vmas, &n);
	if (ret)
		return ret;
	/* The vDSO first (never written by the program), then any code. */
	for (pass = 0; pass < 2 && !t->syscall_insn; pass++) {
		for (size_t i = 0; i < n && !t->syscall_insn; i++) {
			struct esky_vma *v = &vmas[i];
			size_t len = (size_t)(v->end - v->start);
			unsigned char *buf;
			void *hit;

			if (!(v->prot & PROT_EXEC) || v->start >= ARCH_TASK_SIZE)
				continue;
			if ((pass == 0) != (v->path && !strcmp(v->path, "[vdso]")))
				continue;
			if (len > (1u << 20))
				len = 1u << 20;
			buf = malloc(len);
			if (!buf)
				break;
			if (!esky_tracee_read_mem(t, v->start, buf, len)) {
				hit = memmem(buf, len, insn, sizeof(insn));
				if (hit)
					t->syscall_insn = v->start + (uint64_t)((unsigned char *)hit - buf);
			}
			free(buf);
		}
	}
	esky_vmas_free(vmas, n);
	return t->syscall_insn ? 0 : -ENOENT;
}

int esky_tracee_inject_begin(struct esky_tracee *t)
{
	int ret;

	if (!t->syscall_insn) {
		ret = esky_tracee_find_syscall_insn(t);
		if (ret)
			return esky_error(ret, "pid %d: no syscall instruction found to run "
					  "syscalls in it", t->pid);
	}
	ret = esky_tracee_get_regs(t, &t->saved_regs);
	if (!ret)
		ret = esky_tracee_get_sigmask(t, &t->saved_mask);
	/*
	 * From here to inject_end the program holds our registers and signal
	 * mask: an esky killed (SIGKILL) meanwhile would leave it detached in
	 * that state, to crash in our code or run on with every signal
	 * blocked (seen: SIGSEGV after a killed esky checkpoint PID). It dies
	 * with us for that long instead, even one that outlives its monitor.
	 */
	if (!ret && !t->exitkill) {
		t->exitkill = t->inject_exitkill = true;
		ret = esky_tracee_set_options(t, 0);
		if (ret)
			t->exitkill = t->inject_exitkill = false;
	}
	/* Block every signal so that none is delivered in the middle. */
	if (!ret)
		ret = esky_tracee_set_sigmask(t, ~0ULL);
	if (ret)
		return ret;
	t->injecting = true;
	t->injected = 0;
	t->syscall_child = 0;
	t->deferred_sig = 0;
	return 0;
}

pid_t esky_tracee_syscall_child(struct esky_tracee *t)
{
	return t->syscall_child;
}

/*
 * Resume with PTRACE_SYSCALL until the next syscall-entry (entry true) or
 * syscall-exit stop, noting clones. Other syscall stops are passed: at a
 * PTRACE_EVENT_EXEC stop, execve's own exit stop is still to come.
 */
static int run_to_syscall_stop(struct esky_tracee *t, bool entry, const esky_regs_t *regs)
{
	struct esky_stop st;
	int ret;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, t->pid, 0, 0) < 0)
			return -errno;
		ret = esky_tracee_wait(t, &st, false);
		if (ret)
			return ret;
		switch (st.kind) {
		case ESKY_STOP_SYSCALL: {
			struct __ptrace_syscall_info info = { 0 }; /* for valgrind, which does not know the request */

			if (ptrace(PTRACE_GET_SYSCALL_INFO, t->pid, sizeof(info), &info) < 0)
				return 0; /* before 5.3: trust the order */
			if (info.op == (entry ? PTRACE_SYSCALL_INFO_ENTRY : PTRACE_SYSCALL_INFO_EXIT))
				return 0;
			/* The earlier syscall stored its result in rax on the way out: set ours again. */
			if (regs && esky_tracee_set_regs(t, regs))
				return -ESRCH;
			break;
		}
		case ESKY_STOP_CLONE:
			t->syscall_child = st.new_pid;
			break;
		case ESKY_STOP_EXITED:
		case ESKY_STOP_KILLED:
			return -ESRCH;
		case ESKY_STOP_SIGNAL:
		case ESKY_STOP_GROUP:
			/* Only SIGSTOP gets through a full mask: send it again later. */
			t->deferred_sig = st.sig;
			break;
		default:
			break;
		}
	}
}

int esky_tracee_syscall(struct esky_tracee *t, long *ret, long nr, long a0, long a1, long a2,
			long a3, long a4, long a5)
{
	const long args[6] = { a0, a1, a2, a3, a4, a5 };
	esky_regs_t regs = t->saved_regs;
	int err;

	if (!t->injecting)
		return -EINVAL;
	arch_regs_set_syscall(&regs, t->syscall_insn, nr, args);
	err = esky_tracee_set_regs(t, &regs);
	if (err)
		return err;
	t->injected++;
	err = run_to_syscall_stop(t, true, &regs);
	if (!err)
		err = run_to_syscall_stop(t, false, NULL);
	if (!err)
		err = esky_tracee_get_regs(t, &regs);
	if (err)
		return err;
	if (regs.rip != t->syscall_insn + ARCH_SYSCALL_INSN_LEN)
		return -EPROTO;
	*ret = arch_regs_syscall_ret(&regs);
	return 0;
}

int esky_tracee_syscall_batch(struct esky_tracee *t, uint64_t code, uint64_t table,
			      struct esky_batch_call *calls, size_t n)
{
	_Static_assert(sizeof(struct esky_batch_call) == 64, "the batch code's entry size");
	uint8_t buf[ARCH_BATCH_CODE_MAX];
	size_t len = arch_batch_code(buf);
	esky_regs_t regs = t->saved_regs;
	struct esky_stop st;
	int ret;

	if (!t->injecting || !n)
		return -EINVAL;
	ret = esky_tracee_write_mem(t, code, buf, len);
	if (!ret)
		ret = esky_tracee_write_mem(t, table, calls, n * sizeof(*calls));
	if (ret)
		return ret;
	arch_regs_set_batch(&regs, code, table, n);
	ret = esky_tracee_set_regs(t, &regs);
	/*
	 * The breakpoint's SIGTRAP must not be blocked: a fault signal the
	 * task blocks is forced through with its handler reset to SIG_DFL,
	 * and the program's own SIGTRAP handler would be lost.
	 */
	if (!ret)
		ret = esky_tracee_set_sigmask(t, ~(1ULL << (SIGTRAP - 1)));
	if (ret)
		return ret;
	t->injected++;
	for (;;) {
		if (ptrace(PTRACE_CONT, t->pid, 0, 0) < 0)
			return -errno;
		ret = esky_tracee_wait(t, &st, false);
		if (ret)
			return ret;
		if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED)
			return -ESRCH;
		if (st.kind == ESKY_STOP_SIGNAL && st.sig == SIGTRAP && st.si_code == SI_KERNEL) {
			ret = esky_tracee_get_regs(t, &regs);
			if (ret)
				return ret;
			if (arch_regs_ip(&regs) == code + len)
				break;
			return -EFAULT;
		}
		if (st.kind == ESKY_STOP_SIGNAL &&
		    (st.sig == SIGSEGV || st.sig == SIGBUS || st.sig == SIGILL || st.sig == SIGTRAP))
			return -EFAULT; /* the code did not run as written: not passed on */
		if (st.kind == ESKY_STOP_SIGNAL || st.kind == ESKY_STOP_GROUP)
			t->deferred_sig = st.sig; /* SIGSTOP: sent again at the end */
		if (st.kind == ESKY_STOP_CLONE)
			t->syscall_child = st.new_pid;
	}
	ret = esky_tracee_set_sigmask(t, ~0ULL);
	if (!ret)
		ret = esky_tracee_read_mem(t, table, calls, n * sizeof(*calls));
	return ret;
}

/* Scratch: [data page][table: two pages][code page]. */
#define SCRATCH_TABLE_OFF ESKY_SCRATCH_DATA
#define SCRATCH_CODE_OFF (SCRATCH_TABLE_OFF + 8192u)
#define SCRATCH_LEN (SCRATCH_CODE_OFF + 4096u)
_Static_assert(ESKY_SCRATCH_CALLS * sizeof(struct esky_batch_call) <= 8192u, "the table fits");

static int scratch_syscall(struct esky_tracee *t, long *r, long nr, long a0, long a1, long a2,
			   long a3, long a4, long a5)
{
	int err = esky_tracee_syscall(t, r, nr, a0, a1, a2, a3, a4, a5);

	if (err)
		return esky_error(err, "pid %d: cannot run syscall %ld in it: %s", t->pid, nr,
				  strerror(-err));
	return 0;
}

int esky_tracee_scratch_map(struct esky_tracee *t, struct esky_scratch *s)
{
	long r;
	int ret = scratch_syscall(t, &r, SYS_mmap, 0, SCRATCH_LEN, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	s->addr = 0;
	s->exec = false;
	if (ret)
		return ret;
	if (r < 0 && r > -4096)
		return esky_error((int)r, "pid %d: cannot map scratch memory in it: %s", t->pid,
				  strerror((int)-r));
	s->addr = (uint64_t)r;
	ret = scratch_syscall(t, &r, SYS_mprotect, (long)(s->addr + SCRATCH_CODE_OFF), 4096,
			      PROT_READ | PROT_EXEC, 0, 0, 0);
	s->exec = !ret && r == 0;
	return ret;
}

int esky_tracee_scratch_calls(struct esky_tracee *t, const struct esky_scratch *s,
			      struct esky_batch_call *calls, size_t n)
{
	int ret = 0;

	if (n > ESKY_SCRATCH_CALLS)
		return -E2BIG;
	if (s->exec && n) {
		ret = esky_tracee_syscall_batch(t, s->addr + SCRATCH_CODE_OFF,
						s->addr + SCRATCH_TABLE_OFF, calls, n);
		if (ret != -EFAULT)
			return ret ? esky_error(ret, "pid %d: cannot run syscalls in it: %s", t->pid,
						strerror(-ret))
				   : 0;
		pr_debug("pid %d: batched syscalls did not run; one by one", t->pid);
	}
	for (size_t i = 0; i < n && !ret; i++) {
		long r;

		ret = scratch_syscall(t, &r, calls[i].nr, calls[i].a[0], calls[i].a[1], calls[i].a[2],
				      calls[i].a[3], calls[i].a[4], calls[i].a[5]);
		calls[i].ret = r;
	}
	return ret;
}

int esky_tracee_scratch_unmap(struct esky_tracee *t, struct esky_scratch *s)
{
	long r;
	int ret;

	if (!s->addr)
		return 0;
	ret = scratch_syscall(t, &r, SYS_munmap, (long)s->addr, SCRATCH_LEN, 0, 0, 0, 0);
	s->addr = 0;
	return ret;
}

int esky_tracee_inject_end(struct esky_tracee *t)
{
	struct esky_stop st;
	int ret;

	if (!t->injecting)
		return -EINVAL;
	t->injecting = false;
	ret = esky_tracee_set_regs(t, &t->saved_regs);
	if (ret)
		return ret;
	if (t->injected) {
		/*
		 * We are in the syscall-exit stop of the last injected call.
		 * Resuming from here would return to user space without the
		 * kernel's restart of the syscall the tracee was stopped in
		 * (that fix-up only runs on the signal path): a program blocked
		 * in read() would see -ERESTARTSYS (-512). Trap once more on
		 * the signal path instead; resuming from that stop restarts.
		 */
		ret = esky_tracee_interrupt(t);
		if (!ret)
			ret = esky_tracee_cont(t, 0);
		while (!ret) {
			ret = esky_tracee_wait(t, &st, false);
			if (ret || st.kind == ESKY_STOP_INTERRUPT || st.kind == ESKY_STOP_GROUP)
				break;
			if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED)
				return -ESRCH;
			ret = esky_tracee_cont(t, 0);
		}
		if (ret)
			return ret;
	}
	ret = esky_tracee_set_sigmask(t, t->saved_mask);
	/* Its own state again: it may outlive us as before (inject_begin). */
	if (!ret && t->inject_exitkill) {
		t->exitkill = t->inject_exitkill = false;
		ret = esky_tracee_set_options(t, 0);
	}
	if (t->deferred_sig)
		kill(t->pid, t->deferred_sig);
	return ret;
}
