/* SPDX-License-Identifier: MIT */
/*
 * The seccomp builder of daemon/common/sandbox.c, each profile installed in a forked child:
 * what the list allows runs, each argument rule holds (ioctl's command, prlimit64's and tgkill's
 * pid, socket's family, clone's flags, execveat's descriptor), what it does not list kills the
 * child with SIGSYS, and so does a call made with x32's numbers (x86-64); clone3 fails with
 * ENOSYS.  Then the sizes the README quotes (per architecture), and DEBUGINFOD_URLS's ports.
 * Under qemu-user (a cross build's `make check`), which has no seccomp(2), the filters' cases are
 * one SKIP saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "sandbox.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#if defined(__x86_64__)
#define N_ANALYZER 46
#define N_ANALYZER_NET 66
#elif defined(__aarch64__)
#define N_ANALYZER 45
#define N_ANALYZER_NET 61
#endif

/* What became of a child that installed profile p and then ran fn: "exit N" or "signal N". */
static int in_child(enum sandbox_profile p, int exec_fd, int (*fn)(void)) {
        pid_t pid = fork();
        int status;

        if (pid == 0) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sandbox_seccomp(p, exec_fd) < 0)
                        _exit(100);
                /* the system call itself: a sanitizer's _exit() makes calls of its own (sigaltstack) */
                syscall(SYS_exit_group, fn());
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

#define KILLED_BY_SIGSYS (1000 + SIGSYS)

static int do_read_write(void) {
        char buf[1];
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        return fd >= 0 && read(fd, buf, 1) == 0 && write(fd, "x", 1) == 1 && close(fd) == 0 ? 0 : 1;
}
static int do_ptrace(void) { syscall(SYS_ptrace, 0, 0, 0, 0); return 0; }
static int do_fork(void) {
#ifdef SYS_fork
        syscall(SYS_fork);
#else
        fork();         /* aarch64 has no fork(2): glibc's fork() is a clone(SIGCHLD) */
#endif
        return 0;
}
static int do_socket(void) { return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1; }
static int do_socket_packet(void) { return socket(AF_PACKET, SOCK_RAW, 0) < 0 && errno == EAFNOSUPPORT ? 0 : 1; }
static int do_ioctl_tcgets(void) { struct termios t; return ioctl(0, TCGETS, &t) < 0 && errno != ENOTTY; }
static int do_ioctl_other(void) { int n; ioctl(0, FIONREAD, &n); return 0; }
static int do_prlimit_self(void) { struct rlimit r; return syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &r) != 0; }
static int do_prlimit_other(void) { struct rlimit r; syscall(SYS_prlimit64, 1, RLIMIT_NOFILE, NULL, &r); return 0; }
static int do_tgkill_self(void) { return syscall(SYS_tgkill, getpid(), getpid(), 0) != 0; }
static int do_tgkill_other(void) { syscall(SYS_tgkill, getppid(), getppid(), 0); return 0; }
/* x86-64: x32's number of getpid; elsewhere a number of no call */
static int do_x32(void) { syscall(0x40000000 | SYS_getpid); return 0; }
static int do_mount(void) { syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL); return 0; }
static int do_clone3(void) {
        struct clone_args a = { .exit_signal = SIGCHLD };
        return syscall(SYS_clone3, &a, sizeof(a)) < 0 && errno == ENOSYS ? 0 : 1;
}
static int do_clone_process(void) { syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); return 0; }
static int do_execve(void) {
        char *argv[] = { "true", NULL }, *envp[] = { NULL };
        syscall(SYS_execve, "/bin/true", argv, envp);
        return 1;
}
static int exec_fd = -1;
static int do_execveat_fd(void) {
        char *argv[] = { "true", NULL }, *envp[] = { NULL };
        syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
        return 1;
}
#if !SANITIZED
static int do_abort(void) { abort(); }
#endif
/* the query worker's: descriptors 3 and 4 are the two ends of one socket pair (set up by main) */
static int do_query_sockets(void) {
        char c;
        struct iovec iov = { .iov_base = &c, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        return write(3, "x", 1) == 1 && recvmsg(4, &mh, 0) == 1 && c == 'x' && send(4, "y", 1, 0) == 1 &&
               read(3, &c, 1) == 1 && c == 'y' && sendmsg(3, &mh, 0) == 1 ? 0 : 1;
}
static int do_read_other(void) { char c; syscall(SYS_read, 4, &c, 0); return 0; }
static int do_write_other(void) { syscall(SYS_write, 1, "", 0); return 0; }
static int do_send_other(void) { syscall(SYS_sendto, 3, "", 0, 0, NULL, 0); return 0; }
static int do_open(void) { syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY); return 0; }
static int do_mmap_rw(void) {
        return mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED;
}
static int do_mmap_exec(void) { mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); return 0; }

/* Each profile installed in a child: what it lets run, what kills. */
static void filters(void) {
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_read_write), 0, "analyzer: open, read, write, close run");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_ptrace), KILLED_BY_SIGSYS, "analyzer: ptrace kills with SIGSYS");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_fork), KILLED_BY_SIGSYS, "analyzer: fork kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_clone_process), KILLED_BY_SIGSYS, "analyzer: clone kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_socket), KILLED_BY_SIGSYS, "analyzer: socket kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_mount), KILLED_BY_SIGSYS, "analyzer: mount kills");
#if defined(__x86_64__)
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_x32), KILLED_BY_SIGSYS, "analyzer: an x32 call kills");
#else
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_x32), KILLED_BY_SIGSYS, "analyzer: an unknown call number kills");
#endif
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_ioctl_tcgets), 0, "analyzer: ioctl TCGETS runs");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_ioctl_other), KILLED_BY_SIGSYS, "analyzer: ioctl FIONREAD kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_prlimit_self), 0, "analyzer: prlimit64 of itself runs");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_prlimit_other), KILLED_BY_SIGSYS,
                   "analyzer: prlimit64 of pid 1 kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_tgkill_self), 0, "analyzer: tgkill of itself runs");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_tgkill_other), KILLED_BY_SIGSYS,
                   "analyzer: tgkill of its parent kills");
#if SANITIZED
        /* a sanitizer's abort() reports first (getppid, prlimit64 of others): not what runs confined */
        tap_skip("analyzer: abort() in a sanitizer build runs the sanitizer's report");
#else
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_abort), 1000 + SIGABRT, "analyzer: abort() dies of SIGABRT");
#endif
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, -1, do_execve), KILLED_BY_SIGSYS, "analyzer: execve kills");
        exec_fd = open("/bin/true", O_PATH | O_CLOEXEC);
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, exec_fd, do_execveat_fd), 0,
                   "analyzer: execveat of the descriptor it was given runs /bin/true");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER, exec_fd + 1, do_execveat_fd), KILLED_BY_SIGSYS,
                   "analyzer: execveat of another descriptor kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER_NET, -1, do_socket), 0, "analyzer+debuginfod: an AF_INET socket");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER_NET, -1, do_socket_packet), 0,
                   "analyzer+debuginfod: AF_PACKET fails with EAFNOSUPPORT");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER_NET, -1, do_clone3), 0, "analyzer+debuginfod: clone3 fails with ENOSYS");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER_NET, -1, do_clone_process), KILLED_BY_SIGSYS,
                   "analyzer+debuginfod: clone of a process (no CLONE_THREAD) kills");
        TAP_EQ_INT(in_child(SANDBOX_ANALYZER_NET, -1, do_ptrace), KILLED_BY_SIGSYS,
                   "analyzer+debuginfod: ptrace kills");
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) < 0 || dup2(sp[0], 3) != 3 || dup2(sp[1], 4) != 4)
                return (void)tap_ok(0, "a socket pair on 3 and 4");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_query_sockets), 0,
                   "query: read from 3, write and sendmsg to 3, send and recvmsg on 4 run");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_mmap_rw), 0, "query: mmap of read-write memory runs");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_read_other), KILLED_BY_SIGSYS, "query: read from 4 kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_write_other), KILLED_BY_SIGSYS, "query: write to 1 kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_send_other), KILLED_BY_SIGSYS, "query: sendto on 3 kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_open), KILLED_BY_SIGSYS, "query: openat kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_mmap_exec), KILLED_BY_SIGSYS, "query: executable memory kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_socket), KILLED_BY_SIGSYS, "query: socket kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_fork), KILLED_BY_SIGSYS, "query: fork kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_execve), KILLED_BY_SIGSYS, "query: execve kills");
        TAP_EQ_INT(in_child(SANDBOX_QUERY, -1, do_ptrace), KILLED_BY_SIGSYS, "query: ptrace kills");
        close(3);
        close(4);
}

/* Whether seccomp(2) exists here: qemu-user, which runs a cross build's tests, emulates none (and
 * refuses PR_SET_SECCOMP with EINVAL, as a kernel would a bad filter). */
static bool seccomp_exists(void) {
        uint32_t action = SECCOMP_RET_KILL_PROCESS;

        return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0 || errno != ENOSYS;
}

int main(void) {
        uint16_t ports[8];
        int n;

        if (seccomp_exists())
                filters();
        else
                tap_skip("seccomp(2) is not implemented here (ENOSYS; qemu-user emulates none): the filters' cases "
                         "need a real kernel");
        TAP_EQ_INT(sandbox_seccomp(_SANDBOX_PROFILE_MAX, -1), -EINVAL, "an unknown profile is refused");

        /* the figures the README quotes: change them there when a list changes.  aarch64 has no
         * arch_prctl, pause (ppoll instead), poll, rmdir or unlink: 45 and 61 */
        TAP_EQ_INT(sandbox_seccomp_count(SANDBOX_ANALYZER), N_ANALYZER, "the analyzer's list: %d system calls",
                   N_ANALYZER);
        TAP_EQ_INT(sandbox_seccomp_count(SANDBOX_ANALYZER_NET), N_ANALYZER_NET,
                   "the analyzer+debuginfod list: %d system calls (%d more)", N_ANALYZER_NET,
                   N_ANALYZER_NET - N_ANALYZER);
        /* sigaltstack: a sanitizer build's _exit() */
        TAP_EQ_INT(sandbox_seccomp_count(SANDBOX_QUERY), 25 + SANITIZED, "the query worker's list: %d system calls",
                   25 + SANITIZED);
        for (unsigned i = 0; i < sandbox_seccomp_count(SANDBOX_ANALYZER_NET) + sandbox_seccomp_count(SANDBOX_QUERY);
             i++) {
                unsigned n_net = sandbox_seccomp_count(SANDBOX_ANALYZER_NET);
                const char *name = i < n_net ? sandbox_seccomp_name(SANDBOX_ANALYZER_NET, i) :
                                               sandbox_seccomp_name(SANDBOX_QUERY, i - n_net);
                static const char *const never[] = { "ptrace", "process_vm_readv", "process_vm_writev", "mount",
                                                     "keyctl", "bpf", "perf_event_open", "io_uring_setup",
                                                     "userfaultfd", "execve", "fork", "vfork", "kill",
                                                     "setuid", "unshare", "setns", "pidfd_open", "memfd_create" };
                for (size_t k = 0; k < sizeof(never) / sizeof(*never); k++)
                        if (!strcmp(name, never[k]))
                                tap_ok(0, "%s is not in any list", name);
        }
        tap_ok(1, "none of ptrace, process_vm_*, mount, keyctl, bpf, perf_event_open, io_uring, userfaultfd, "
               "execve, fork, kill, setuid, unshare, setns, pidfd_open, memfd_create is listed");

        n = sandbox_debuginfod_ports("http://127.0.0.1:8002", ports, 8);
        tap_ok(n == 1 && ports[0] == 8002, "ports: http://127.0.0.1:8002 -> 8002");
        n = sandbox_debuginfod_ports("https://debuginfod.debian.net  http://[::1]/x", ports, 8);
        tap_ok(n == 3 && ports[0] == 443 && ports[1] == 80 && ports[2] == 53,
               "ports: a named https server, a bracketed IPv6 one -> 443, 80, and 53 for the resolver");
        tap_ok(sandbox_debuginfod_ports("file:///srv/debug", ports, 8) == -EINVAL, "ports: file:// is refused");
        tap_ok(sandbox_debuginfod_ports("http://h:99999", ports, 8) == -EINVAL, "ports: port 99999 is refused");
        tap_ok(sandbox_debuginfod_ports("http://u@h:1", ports, 8) == -EINVAL, "ports: a user in the URL is refused");
        return tap_done();
}
