/* SPDX-License-Identifier: MIT */
/*
 * Allocation-failure injection, for the test build only (configure --enable-alloc-faults; never
 * in a normal build, so never a switch in a program that runs as root on a real host).
 *
 * The link wraps (-Wl,--wrap=...) the allocating calls our own objects make -- malloc and its
 * kin, strdup, asprintf, and the libc calls that allocate a FILE, a DIR or a buffer for us --
 * and SQLite's allocations come here too, through sqlite3_config(SQLITE_CONFIG_MALLOC) around
 * its default methods.  Every one is counted; one of them can be made to fail as if memory
 * had run out (NULL or -1 with errno ENOMEM).  libdw, libelf, libzstd, libsystemd and libc
 * allocate on their own, out of reach: only our calls and SQLite's are counted.
 *
 * Chosen by the environment, read once at start and then removed from it, so that a program
 * this one starts is not failed as well:
 *   PYSTACK_ALLOC_FAIL=N          fail the N-th allocation (counting from 1)
 *   PYSTACK_ALLOC_FAIL_SITE=NAME  fail the first allocation made at site NAME (as reported)
 *   PYSTACK_ALLOC_FAIL_PERSIST=1  after that one, fail every later allocation too
 *   PYSTACK_ALLOC_REPORT=FILE     append to FILE "failed N SITE via CALLERS..." when one is
 *                                 failed (CALLERS: the executable's frames that led there), and
 *                                 at exit "total N" and a line "site NAME COUNT FIRST" per site
 * A site is where the allocation was asked for, as MODULE+0xOFFSET (the caller's return
 * address in its file, the same from run to run whatever ASLR does); SQLite's are
 * "sqlite3<-MODULE+0xOFFSET", named after the first of our frames that called into SQLite.
 *
 * The real calls are __real_*: the sanitizers' own when the build has them, so that ASan and
 * LSan see every allocation as before.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* SQLite's configuration entry, weak: the analyzer does not link SQLite, the daemon programs do */
struct sqlite3_mem_methods {
        void *(*xMalloc)(int);
        void (*xFree)(void *);
        void *(*xRealloc)(void *, int);
        int (*xSize)(void *);
        int (*xRoundup)(int);
        int (*xInit)(void *);
        void (*xShutdown)(void *);
        void *pAppData;
};
#define SQLITE_CONFIG_MALLOC 4
#define SQLITE_CONFIG_GETMALLOC 5
extern int sqlite3_config(int, ...) __attribute__((weak));

#define MAX_SITES 8192
#define SITE_NAME 112

struct site {
        uintptr_t addr;                 /* the return address in this run; 0: a free slot */
        bool sqlite;
        bool target;                    /* PYSTACK_ALLOC_FAIL_SITE names it */
        unsigned long count, first;     /* allocations made here; the number of the first */
        char name[SITE_NAME];
};

static struct site sites[MAX_SITES];
static size_t n_sites;
static bool sites_full;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long n_alloc;           /* allocations counted so far */
static unsigned long fail_at;           /* PYSTACK_ALLOC_FAIL, 0: none */
static char fail_site[SITE_NAME];       /* PYSTACK_ALLOC_FAIL_SITE, "": none */
static bool persist, failed_once;
static int report_fd = -1;
static pid_t owner;                     /* the process that reports at exit (not a forked child) */
static uintptr_t main_base;             /* where the executable is loaded */
static __thread bool inside;            /* in here already (backtrace's first call allocates) */
static struct sqlite3_mem_methods sqlite_real;

static void put(const char *s) {
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t w = write(report_fd, s, n);
                if (w <= 0)
                        return;
                s += w;
                n -= (size_t)w;
        }
}

static void name_address(uintptr_t addr, char *out, size_t size, const char *prefix) {
        Dl_info info;

        if (dladdr((void *)addr, &info) && info.dli_fname) {
                const char *base = strrchr(info.dli_fname, '/');
                snprintf(out, size, "%s%s+0x%lx", prefix, base ? base + 1 : info.dli_fname,
                         (unsigned long)(addr - (uintptr_t)info.dli_fbase));
        } else
                snprintf(out, size, "%s?+0x%lx", prefix, (unsigned long)addr);
}

/* After the failed site on its "failed" line, the frames of the executable that led there. */
static void put_callers(uintptr_t site) {
        void *frames[32];
        int n = backtrace(frames, (int)(sizeof(frames) / sizeof(frames[0]))), i = 0;
        char name[SITE_NAME];
        Dl_info info;

        while (i < n && (uintptr_t)frames[i] != site)
                i++;
        put(" via");
        for (int k = (i++, 0); i < n && k < 8; i++)
                if (dladdr(frames[i], &info) && (uintptr_t)info.dli_fbase == main_base) {
                        name_address((uintptr_t)frames[i], name, sizeof(name), " ");
                        put(name);
                        k++;
                }
        put("\n");
}

/* SQLite's allocations are named after the first frame of the executable that led there */
static uintptr_t first_own_frame(void) {
        void *frames[48];
        int n = backtrace(frames, (int)(sizeof(frames) / sizeof(frames[0])));
        Dl_info info;
        bool in_sqlite = false;

        /* past our own hooks (in the executable too), through SQLite, back into the executable */
        for (int i = 1; i < n; i++) {
                bool own = dladdr(frames[i], &info) && (uintptr_t)info.dli_fbase == main_base;
                if (own && in_sqlite)
                        return (uintptr_t)frames[i];
                in_sqlite |= !own;
        }
        return 0;
}

static struct site *site_of(uintptr_t addr, bool sqlite) {
        size_t h = (size_t)((addr ^ (sqlite ? 0x9e3779b9u : 0)) * 11400714819323198485ull >> 51) % MAX_SITES;

        for (size_t i = 0; i < MAX_SITES; i++, h = (h + 1) % MAX_SITES) {
                struct site *s = &sites[h];
                if (s->addr == addr && s->sqlite == sqlite)
                        return s;
                if (s->addr == 0) {
                        if (n_sites >= MAX_SITES * 3 / 4) {
                                sites_full = true;
                                return NULL;
                        }
                        s->addr = addr;
                        s->sqlite = sqlite;
                        name_address(addr, s->name, sizeof(s->name), sqlite ? "sqlite3<-" : "");
                        s->target = fail_site[0] && strcmp(s->name, fail_site) == 0;
                        n_sites++;
                        return s;
                }
        }
        return NULL;
}

/* Count one allocation asked for at addr; true when it is to fail. */
static bool should_fail(uintptr_t addr, bool sqlite) {
        bool fail = false;
        char line[SITE_NAME + 64];

        if (inside)
                return false;
        inside = true;
        if (sqlite && !(addr = first_own_frame()))
                addr = 1;       /* not called from the executable: one site for all of those */
        pthread_mutex_lock(&lock);
        unsigned long n = ++n_alloc;
        struct site *s = site_of(addr, sqlite);
        if (s && s->count++ == 0)
                s->first = n;
        if (persist && failed_once)
                fail = true;
        else if (!failed_once && ((fail_at && n == fail_at) || (s && s->target))) {
                fail = true;
                failed_once = true;
                if (report_fd >= 0) {
                        snprintf(line, sizeof(line), "failed %lu %s", n, s ? s->name : "?");
                        put(line);
                        put_callers(addr);
                }
        }
        pthread_mutex_unlock(&lock);
        inside = false;
        if (fail)
                errno = ENOMEM;
        return fail;
}

#define CALLER ((uintptr_t)__builtin_return_address(0))
#define WRAP(ret, name, ...) \
        ret __real_##name(__VA_ARGS__); \
        ret __wrap_##name(__VA_ARGS__) __attribute__((noinline)); \
        ret __wrap_##name(__VA_ARGS__)

WRAP(void *, malloc, size_t n) {
        return should_fail(CALLER, false) ? NULL : __real_malloc(n);
}

WRAP(void *, calloc, size_t n, size_t size) {
        return should_fail(CALLER, false) ? NULL : __real_calloc(n, size);
}

WRAP(void *, realloc, void *p, size_t n) {
        return should_fail(CALLER, false) ? NULL : __real_realloc(p, n);
}

WRAP(void *, reallocarray, void *p, size_t n, size_t size) {
        return should_fail(CALLER, false) ? NULL : __real_reallocarray(p, n, size);
}

WRAP(char *, strdup, const char *s) {
        return should_fail(CALLER, false) ? NULL : __real_strdup(s);
}

WRAP(char *, strndup, const char *s, size_t n) {
        return should_fail(CALLER, false) ? NULL : __real_strndup(s, n);
}

WRAP(int, vasprintf, char **out, const char *fmt, va_list ap) {
        return should_fail(CALLER, false) ? -1 : __real_vasprintf(out, fmt, ap);
}

WRAP(int, asprintf, char **out, const char *fmt, ...) {
        va_list ap;
        int r;

        if (should_fail(CALLER, false))
                return -1;
        va_start(ap, fmt);
        r = __real_vasprintf(out, fmt, ap);
        va_end(ap);
        return r;
}

WRAP(FILE *, open_memstream, char **p, size_t *n) {
        return should_fail(CALLER, false) ? NULL : __real_open_memstream(p, n);
}

WRAP(FILE *, fopen, const char *path, const char *mode) {
        return should_fail(CALLER, false) ? NULL : __real_fopen(path, mode);
}

WRAP(FILE *, fdopen, int fd, const char *mode) {
        return should_fail(CALLER, false) ? NULL : __real_fdopen(fd, mode);
}

WRAP(DIR *, opendir, const char *path) {
        return should_fail(CALLER, false) ? NULL : __real_opendir(path);
}

WRAP(DIR *, fdopendir, int fd) {
        return should_fail(CALLER, false) ? NULL : __real_fdopendir(fd);
}

WRAP(int, scandir, const char *dir, struct dirent ***list, int (*filter)(const struct dirent *),
     int (*compar)(const struct dirent **, const struct dirent **)) {
        return should_fail(CALLER, false) ? -1 : __real_scandir(dir, list, filter, compar);
}

WRAP(char *, realpath, const char *path, char *resolved) {
        return should_fail(CALLER, false) ? NULL : __real_realpath(path, resolved);
}

WRAP(int, glob, const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g) {
        return should_fail(CALLER, false) ? GLOB_NOSPACE : __real_glob(pattern, flags, errfunc, g);
}

static void *sqlite_malloc(int n) {
        return should_fail(0, true) ? NULL : sqlite_real.xMalloc(n);
}

static void *sqlite_realloc(void *p, int n) {
        return should_fail(0, true) ? NULL : sqlite_real.xRealloc(p, n);
}

__attribute__((constructor))
static void alloc_faults_start(void) {
        const char *v;
        Dl_info info;
        void *frames[2];

        owner = getpid();
        if (dladdr((void *)alloc_faults_start, &info))
                main_base = (uintptr_t)info.dli_fbase;
        inside = true;
        backtrace(frames, 2);   /* its first call loads libgcc_s, which allocates */
        inside = false;
        if ((v = getenv("PYSTACK_ALLOC_FAIL")) && *v)
                fail_at = strtoul(v, NULL, 10);
        if ((v = getenv("PYSTACK_ALLOC_FAIL_SITE")) && *v)
                snprintf(fail_site, sizeof(fail_site), "%s", v);
        persist = (v = getenv("PYSTACK_ALLOC_FAIL_PERSIST")) && strcmp(v, "1") == 0;
        if ((v = getenv("PYSTACK_ALLOC_REPORT")) && *v)
                report_fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        unsetenv("PYSTACK_ALLOC_FAIL");
        unsetenv("PYSTACK_ALLOC_FAIL_SITE");
        unsetenv("PYSTACK_ALLOC_FAIL_PERSIST");
        unsetenv("PYSTACK_ALLOC_REPORT");
        if (sqlite3_config && sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_real) == 0) {
                struct sqlite3_mem_methods m = sqlite_real;
                m.xMalloc = sqlite_malloc;
                m.xRealloc = sqlite_realloc;
                sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
        }
}

__attribute__((destructor))
static void alloc_faults_report(void) {
        char line[SITE_NAME + 64];

        if (report_fd < 0 || getpid() != owner)
                return;
        pthread_mutex_lock(&lock);
        snprintf(line, sizeof(line), "total %lu%s\n", n_alloc, sites_full ? " (site table full)" : "");
        put(line);
        for (size_t i = 0; i < MAX_SITES; i++)
                if (sites[i].addr) {
                        snprintf(line, sizeof(line), "site %s %lu %lu\n", sites[i].name, sites[i].count,
                                 sites[i].first);
                        put(line);
                }
        pthread_mutex_unlock(&lock);
}
