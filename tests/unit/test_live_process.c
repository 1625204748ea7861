/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for analyzer/core/live_process.c: a running process read as a core.
 *
 * A forked child fills three pages with a pattern, makes the middle one unreadable (a guard
 * page, as a JIT's mappings have) and waits.  The test reads it stopped and running: its thread
 * and registers, its memory on each side of the guard and across it (refused as a whole), that
 * it is traced while stopped and not after, that a stopped (SIGSTOP) process stays stopped; and
 * the refusals: no such process, a zombie, a kernel thread.
 *
 * Built twice: as test_live_process, reading with process_vm_readv, and as
 * test_live_process_mem with LIVE_FORCE_PROC_MEM, the test build's switch to the /proc/PID/mem
 * way (which a kernel or seccomp policy that refuses process_vm_readv leaves).
 *
 * Under qemu-user (a cross build's `make check`), which emulates no ptrace of another process,
 * the stopped cases are one SKIP that says so; the running ones run (qemu's own thread listed too).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_file.h"
#include "live_process.h"
#include "tap.h"
#include "util.h"

/* the kernel's page size: 4 KiB on x86-64, 4, 16 or 64 KiB on aarch64 */
static size_t page;

static pid_t child_with_pages(uint8_t **pages) {
        int p[2];
        pid_t pid;
        char c;

        *pages = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (*pages == MAP_FAILED || pipe(p) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                /* the child's own bytes: the parent's copy of the pages stays zero */
                for (size_t i = 0; i < 3 * page; i++)
                        (*pages)[i] = (uint8_t)(i * 7 + 1);
                mprotect(*pages + page, page, PROT_NONE);
                write(p[1], "r", 1);
                for (;;)
                        pause();
        }
        close(p[1]);
        if (pid < 0 || read(p[0], &c, 1) != 1)
                pid = -1;
        close(p[0]);
        return pid;
}

static pid_t tracer_of(pid_t pid, char *state) {
        char path[64], line[256];
        pid_t tracer = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!(f = fopen(path, "re")))
                return -1;
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, "TracerPid:", 10))
                        tracer = atoi(line + 10);
                if (!strncmp(line, "State:", 6))
                        sscanf(line + 6, " %c", state);
        }
        fclose(f);
        return tracer;
}

/* Whether this process holds /proc/pid/mem open: the read went that way. */
static bool holds_proc_mem(pid_t pid) {
        char want[64], fd[64], target[PATH_MAX];

        snprintf(want, sizeof(want), "/proc/%d/mem", (int)pid);
        for (int i = 0; i < 1024; i++) {
                snprintf(fd, sizeof(fd), "/proc/self/fd/%d", i);
                ssize_t n = readlink(fd, target, sizeof(target) - 1);
                if (n > 0 && (target[n] = 0, !strcmp(target, want)))
                        return true;
        }
        return false;
}

static bool pattern_ok(const uint8_t *b, size_t off, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (b[i] != (uint8_t)((off + i) * 7 + 1))
                        return false;
        return true;
}

/* The child read stopped (traced, its registers read), resumed, and stopped by SIGSTOP before. */
static void stopped(pid_t pid, struct core_file *c, uint8_t *buf, uint64_t at) {
        const char *error = NULL;
        char state = '?';
        int r;

        tap_ok(c->n_threads == 1 && c->threads[0].tid == pid && c->threads[0].pc != 0 && c->threads[0].sp != 0 &&
               c->threads[0].regs[c->arch->pc_reg] == c->threads[0].pc,
               "one thread, the child's, with its registers (%s)", c->arch->name);
        pid_t tracer = tracer_of(pid, &state);
        tap_ok(tracer == getpid() && state == 't', "traced by us and stopped while read (%c)", state);
        tap_ok(c->live_pid == pid && c->live_stopped && c->process.present && c->process.pid == pid &&
               c->n_segments > 0 && c->n_mappings > 0 && c->n_auxv > 0,
               "its segments, file mappings, auxiliary vector and process facts");
        memset(buf, 0, 3 * page);
        tap_ok(c->src.pread(c->src.ctx, buf, page, at) == 0 && pattern_ok(buf, 0, page),
               "the page before the guard: the child's bytes");
        tap_ok(c->src.pread(c->src.ctx, buf, page, at + 2 * page) == 0 && pattern_ok(buf, 2 * page, page),
               "the page after the guard");
#ifdef LIVE_FORCE_PROC_MEM
        /* /proc/PID/mem reads with FOLL_FORCE: a PROT_NONE page's bytes are there to read */
        tap_ok(c->src.pread(c->src.ctx, buf, 100, at + 2 * page - 50) == 0 && pattern_ok(buf, 2 * page - 50, 100),
               "a read across the guard page: /proc/PID/mem reads it (FOLL_FORCE)");
#else
        tap_ok(c->src.pread(c->src.ctx, buf, 100, at + 2 * page - 50) == -EFAULT,
               "a read into the guard page is refused as a whole");
#endif
        tap_ok(c->src.pread(c->src.ctx, buf, 10, at + page - 10) == 0 && pattern_ok(buf, page - 10, 10),
               "a read that ends where the guard begins");
        tap_ok(c->src.pread(c->src.ctx, buf, 8, UINT64_MAX - 4) == -EFAULT, "an address past the end: refused");
#ifdef LIVE_FORCE_PROC_MEM
        tap_ok(holds_proc_mem(pid), "the reads went through /proc/PID/mem (the test build's switch)");
#else
        tap_ok(!holds_proc_mem(pid), "the reads went through process_vm_readv, not /proc/PID/mem");
#endif
        core_file_resume(c);
        tracer = tracer_of(pid, &state);
        tap_ok(tracer == 0 && state != 't', "after resume: not traced, not stopped (%c)", state);
        tap_ok(c->src.pread(c->src.ctx, buf, page, at) == 0 && pattern_ok(buf, 0, page),
               "after resume the memory is still read (no longer as one moment)");
        core_file_resume(c);
        core_file_free(c);

        /* stopped by SIGSTOP before: it stays stopped after the read */
        kill(pid, SIGSTOP);
        for (int i = 0; i < 1000 && (tracer_of(pid, &state), state != 'T'); i++)
                usleep(1000);
        r = core_file_open_process(pid, true, &c, &error);
        tap_ok(r == 0 && c->n_threads == 1, "a process stopped by SIGSTOP is read (%s)", r ? error : "ok");
        core_file_free(c);
        /* detached, it goes back into its group stop (running for a moment on its way) */
        for (int i = 0; i < 1000 && (tracer = tracer_of(pid, &state), state != 'T'); i++)
                usleep(1000);
        tap_ok(tracer == 0 && state == 'T', "and stays stopped, untraced, after (%c)", state);
        kill(pid, SIGCONT);
}

/* The threads /proc lists for pid: the child's one, and qemu-user's own when it runs the test. */
static size_t tasks_of(pid_t pid) {
        char path[64];
        size_t n = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        if (!(d = opendir(path)))
                return 0;
        for (struct dirent *e; (e = readdir(d));)
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

/* The child read while it runs: no registers, not traced. */
static void running(pid_t pid, uint8_t *buf, uint64_t at) {
        struct core_file *c = NULL;
        const char *error = NULL;
        char state = '?';
        int r = core_file_open_process(pid, false, &c, &error);
        pid_t tracer = tracer_of(pid, &state);

        tap_ok(r == 0 && c->n_threads == tasks_of(pid) && c->threads[0].tid == pid && c->threads[0].pc == 0 &&
               !c->live_stopped && tracer == 0, "read without stopping: its threads listed, no registers, not traced "
               "(%s)", r ? error : "ok");
        tap_ok(r == 0 && c->src.pread(c->src.ctx, buf, page, at + 2 * page) == 0 && pattern_ok(buf, 2 * page, page),
               "and its memory read");
        core_file_free(c);
}

static void test_stopped_and_running(void) {
        uint8_t *pages = NULL;
        _cleanup_free_ uint8_t *buf = malloc(3 * page);
        pid_t pid = buf ? child_with_pages(&pages) : -1;
        struct core_file *c = NULL;
        const char *error = NULL;
        uint64_t at = (uint64_t)(uintptr_t)pages;

        if (!tap_ok(pid > 0, "a child with a guard page between two readable ones"))
                return;
        int r = core_file_open_process(pid, true, &c, &error);
        if (r == -ENOSYS)
                /* qemu-user, running a test built for another architecture, emulates no ptrace of another process */
                tap_skip("ptrace is not implemented here (%s): reading a stopped process needs a real kernel", error);
        else if (tap_ok(r == 0, "the child opened, stopped (%s)", r ? error : "ok"))
                stopped(pid, c, buf, at);
        running(pid, buf, at);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static void test_refusals(void) {
        struct core_file *c = NULL;
        const char *error = NULL;
        pid_t z = fork();
        int r;

        if (z == 0)
                _exit(0);
        /* a zombie until reaped */
        for (int i = 0; i < 1000; i++) {
                char state = '?';
                tracer_of(z, &state);
                if (state == 'Z')
                        break;
                usleep(1000);
        }
        r = core_file_open_process(z, true, &c, &error);
        tap_ok(r == -ESRCH && c == NULL && strstr(error, "zombie"), "a zombie: %s", error);
        waitpid(z, NULL, 0);
        r = core_file_open_process(z, true, &c, &error);
        tap_ok(r == -ESRCH && strstr(error, "no process"), "a process gone: %s", error);
        r = core_file_open_process(2, true, &c, &error);
        tap_ok(r == -ESRCH && strstr(error, "kernel thread"), "a kernel thread (kthreadd): %s", error);
}

int main(void) {
        page = (size_t)sysconf(_SC_PAGESIZE);
        test_stopped_and_running();
        test_refusals();
        return tap_done();
}
