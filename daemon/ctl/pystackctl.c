/* SPDX-License-Identifier: MIT */
/*
 * pystackctl: ask the store what crashed, and where.
 *
 * Root reads the store directly.  Anyone else asks pystackd over its query
 * socket, which answers with the same code (query.c) restricted to the
 * caller's uid, and hands over a core only as an open descriptor of the
 * caller's own crash.  pystackctl never parses a core; it only decompresses
 * one for dump and debug.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "escape.h"
#include "journal_answer.h"
#include "query.h"
#include "retention.h"
#include "store.h"
#include "util.h"
#include "zst_seekable.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct options {
        const char *config;
        struct query q;
        bool no_pager, no_color;
        const char *output;
        const char *debugger;
        bool with_binaries;
        struct journal_source journal;  /* --directory, --file, --merge: read journals, not the store */
        size_t n_files;
};

__attribute__((format(printf, 1, 2)))
static int die(const char *fmt, ...) {
        va_list ap;

        fputs("pystackctl: ", stderr);
        va_start(ap, fmt);
        esc_vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return EXIT_FAIL;
}

__attribute__((format(printf, 1, 2)))
static int usage(const char *fmt, ...) {
        va_list ap;

        fputs("pystackctl: ", stderr);
        va_start(ap, fmt);
        esc_vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see 'pystackctl --help')\n", stderr);
        return EXIT_USAGE;
}

static void help(void) {
        puts("Usage: pystackctl [OPTIONS] VERB [MATCH...]\n"
             "\n"
             "Find, read, dump and debug the Python crashes pystackd recorded.\n"
             "\n"
             "Verbs:\n"
             "  list                 one line per matching crash, oldest first\n"
             "  info                 everything known about the newest match\n"
             "  show                 its report (--native, --locals add frames and variables)\n"
             "  dump                 its core, decompressed, to stdout or -o FILE\n"
             "  debug                gdb (or --debugger=CMD) on its executable and core\n"
             "  analyze              analyse it again (after installing debug symbols)\n"
             "  groups               crashes grouped by signature\n"
             "  vacuum               apply the retention limits now (root)\n"
             "\n"
             "Matches: a number (PID), a word (command name), a path (executable), or\n"
             "ID=, PID=, COMM=, EXE=, UID=, SIG= (SIGSEGV, SEGV, 11), SIGNATURE=,\n"
             "CONTAINER= (the start of a container's id, or its name); with journals, HOST=\n"
             "and MACHINE_ID= too.\n"
             "\n"
             "Options:\n"
             "      --config=FILE     read FILE instead of " PYSTACK_CONF_DEFAULT "\n"
             "  -D, --directory=DIR   read the crashes pystackd wrote to the journal files in DIR\n"
             "                        (as systemd-journal-remote gathers a fleet's) instead of the store\n"
             "      --file=GLOB       the same, from the journal files GLOB names (repeatable)\n"
             "  -m, --merge           the same, from every journal of this system, local and remote\n"
             "      --no-index        with --directory or --file: read every file, not what the index\n"
             "                        in ~/.cache/pystackctl kept of those read before\n"
             "      --json            JSON output\n"
             "  -S, --since=TIME      crashes at or after TIME (\"2026-11-27 10:00\", \"today\", \"-1h\", \"2d ago\")\n"
             "  -U, --until=TIME      crashes at or before TIME\n"
             "  -r, --reverse         newest first\n"
             "  -n N                  the last N matches\n"
             "  -1                    the last match only\n"
             "  -o, --output=FILE     dump: write the core to FILE\n"
             "      --with-binaries   dump -o DIR: DIR/core and the files the process had mapped, as\n"
             "                        the handler kept them (root)\n"
             "      --debugger=CMD    debug: the debugger to run\n"
             "      --native          show: include native frames\n"
             "      --locals          show: include arguments and locals\n"
             "      --tasks           show: include the asyncio task tree (CPython 3.14+)\n"
             "      --no-pager        never page\n"
             "      --no-legend       no headings or summary lines\n"
             "      --no-color        no colours\n"
             "  -h, --help            show this help\n"
             "\n"
             "Exit status: 0 success, 1 no match or failure, 2 usage error. See pystackctl(1).");
}

/* ---- output through a pager, where a person reads ---- */

static pid_t pager_pid = -1;

static void pager_start(const struct options *o) {
        int fds[2];
        const char *pager = NULL;
        bool secure = geteuid() == 0;

        if (o->no_pager || o->q.json || !isatty(STDOUT_FILENO))
                return;
        /* as root, never a program the environment names: only less, in its secure mode */
        if (!secure)
                pager = getenv("PAGER");
        if (pager && (!*pager || !strcmp(pager, "cat")))
                return;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return;
        pager_pid = fork();
        if (pager_pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pager_pid == 0) {
                dup2(fds[0], STDIN_FILENO);
                setenv("LESS", "FRSXMK", 0);
                if (secure || !pager) {
                        setenv("LESSSECURE", "1", 1);
                        execlp("less", "less", (char *)NULL);
                        _exit(127);
                }
                execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
                _exit(127);
        }
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
}

static void pager_end(void) {
        if (pager_pid <= 0)
                return;
        fflush(stdout);
        close(STDOUT_FILENO);
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* ---- talking to pystackd (everyone but root) ---- */

static int connect_daemon(const struct config *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/query", c->runtime_directory) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int send_query(int fd, const struct query *q) {
        char *wire = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&wire, &len);
        int r;

        if (!m)
                return -ENOMEM;
        r = query_to_wire(q, m);
        fclose(m);
        if (r == 0 && write(fd, wire, len) != (ssize_t)len)
                r = -EIO;
        free(wire);
        shutdown(fd, SHUT_WR);
        return r;
}

/* "OK\n" or "ERR <exit> <message>\n"; for the core verb the descriptor rides along. */
static int read_status(int fd, char *line, size_t size, int *core_fd) {
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = line, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        size_t n = 0;

        if (core_fd)
                *core_fd = -1;
        /* byte by byte up to the newline: what follows is the body */
        while (n + 1 < size) {
                iov.iov_base = line + n;
                ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (k <= 0)
                        return -EIO;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && core_fd)
                                memcpy(core_fd, CMSG_DATA(c), sizeof(int));
                mh.msg_control = NULL;
                mh.msg_controllen = 0;
                if (line[n] == '\n') {
                        line[n] = 0;
                        return 0;
                }
                n++;
        }
        return -EIO;
}

static int remote_error(const char *line) {
        int code = EXIT_FAIL;
        const char *msg = line;

        if (!strncmp(line, "ERR ", 4)) {
                code = atoi(line + 4) == EXIT_USAGE ? EXIT_USAGE : EXIT_FAIL;
                msg = strchr(line + 4, ' ');
                msg = msg ? msg + 1 : "pystackd refused the request";
        }
        fputs("pystackctl: ", stderr);
        esc_fputs(stderr, msg);
        fputc('\n', stderr);
        return code;
}

/* ---- dump and debug ---- */

static int copy_core(int core_fd, int out) {
        struct zst_reader *r;
        char *buf;
        int e;

        e = zst_reader_open(core_fd, &r);
        if (e < 0)
                return e;
        buf = malloc(1 << 20);
        if (!buf) {
                zst_reader_free(r);
                return -ENOMEM;
        }
        uint64_t size = zst_reader_size(r);
        for (uint64_t off = 0; off < size && e == 0;) {
                size_t n = (size_t)(size - off < (1u << 20) ? size - off : (1u << 20));
                e = zst_reader_pread(r, buf, n, off);
                for (size_t w = 0; e == 0 && w < n;) {
                        ssize_t k = write(out, buf + w, n - w);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                e = -errno;
                        else
                                w += (size_t)k;
                }
                off += n;
        }
        free(buf);
        zst_reader_free(r);
        return e;
}

static int do_dump(const struct options *o, int core_fd) {
        int out = STDOUT_FILENO, r;

        if (o->output) {
                out = open(o->output, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return die("cannot create %s: %s", o->output, strerror(errno));
        } else if (isatty(STDOUT_FILENO))
                return die("refusing to write a core to a terminal: use -o FILE or redirect the output");
        r = copy_core(core_fd, out);
        if (o->output)
                close(out);
        if (r < 0) {
                if (o->output)
                        unlink(o->output);
                return die("cannot decompress the core: %s", strerror(-r));
        }
        return EXIT_OK;
}

static int do_debug(const struct options *o, int core_fd, const char *exe) {
        char dir[] = "/tmp/pystackctl.XXXXXX", path[PATH_MAX], exe_link[PATH_MAX] = "";
        int out, r, status = 0;
        pid_t pid;

        if (!mkdtemp(dir))
                return die("cannot create a temporary directory: %s", strerror(errno));
        snprintf(path, sizeof(path), "%s/core", dir);
        out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0) {
                rmdir(dir);
                return die("cannot create %s: %s", path, strerror(errno));
        }
        r = copy_core(core_fd, out);
        close(out);
        if (r < 0) {
                unlink(path);
                rmdir(dir);
                return die("cannot decompress the core: %s", strerror(-r));
        }
        /* the debugger prints the executable's name, which the crashed process chose: it gets a
         * plain name of ours, a link to the real file */
        if (exe && *exe) {
                snprintf(exe_link, sizeof(exe_link), "%s/exe", dir);
                if (symlink(exe, exe_link) < 0)
                        exe_link[0] = 0;
        }
        pid = fork();
        if (pid == 0) {
                const char *dbg = o->debugger ? o->debugger : "gdb";
                char cmd[PATH_MAX * 3];
                /* the debugger command may carry its own arguments; ours go last */
                snprintf(cmd, sizeof(cmd), "exec %s \"$0\" \"$1\"", dbg);
                execl("/bin/sh", "sh", "-c", cmd, exe_link, path, (char *)NULL);
                _exit(127);
        }
        if (pid > 0) {
                signal(SIGINT, SIG_IGN);   /* ^C belongs to the debugger */
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                signal(SIGINT, SIG_DFL);
        }
        unlink(path);
        if (exe_link[0])
                unlink(exe_link);
        rmdir(dir);
        if (pid < 0)
                return die("cannot run the debugger: %s", strerror(errno));
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? EXIT_OK : EXIT_FAIL;
}

/* ---- root: the store itself ---- */

/* dump --with-binaries: DIR/core and, for each file the handler kept, DIR/<the path the process
 * saw>, so that `pystack core DIR/core --lib-search-root=DIR` reads what the process ran. */
struct binaries_dump {
        int storage_fd, dir_fd;
        unsigned written;
        int error;
};

static int copy_fd_to(int in, int out) {
        char buf[65536];
        ssize_t n;

        while ((n = read(in, buf, sizeof(buf))) > 0)
                for (ssize_t w = 0; w < n;) {
                        ssize_t k = write(out, buf + w, (size_t)(n - w));
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                return -errno;
                        w += k;
                }
        return n < 0 ? -errno : 0;
}

static int dump_binary(const struct crash_binary *b, void *userdata) {
        struct binaries_dump *d = userdata;
        char rel[PATH_MAX], src[128], *p, *slash;
        int parent, in, out, r;

        /* an absolute path without "." or ".." components, below DIR; a name from the store only */
        if (!b->hash || strlen(b->hash) != 64 || strspn(b->hash, "0123456789abcdef") != 64 || !b->path ||
            b->path[0] != '/' || strstr(b->path, "/../") || strstr(b->path, "/./") ||
            (strlen(b->path) >= 3 && !strcmp(b->path + strlen(b->path) - 3, "/..")) ||
            (size_t)snprintf(rel, sizeof(rel), "%s", b->path + 1) >= sizeof(rel))
                return 0;
        parent = dup(d->dir_fd);
        for (p = rel; parent >= 0 && (slash = strchr(p, '/')); p = slash + 1) {
                *slash = 0;
                if (!*p) {
                        *slash = '/';
                        continue;
                }
                if (mkdirat(parent, p, 0755) < 0 && errno != EEXIST) {
                        close(parent);
                        parent = -1;
                        break;
                }
                int next = openat(parent, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(parent);
                parent = next;
                *slash = '/';
        }
        if (parent < 0)
                return d->error = -errno, 0;
        snprintf(src, sizeof(src), "binaries/%s", b->hash);
        in = openat(d->storage_fd, src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        out = openat(parent, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        r = in < 0 || out < 0 ? -errno : copy_fd_to(in, out);
        if (in >= 0)
                close(in);
        if (out >= 0)
                close(out);
        close(parent);
        if (r < 0)
                d->error = r;
        else
                d->written++;
        return 0;
}

static int dump_with_binaries(const struct options *o, sqlite3 *db, const char *storage, int64_t id, int core_fd) {
        struct binaries_dump d = { .storage_fd = -1, .dir_fd = -1 };
        int out, r;

        if (mkdir(o->output, 0700) < 0)
                return die("cannot create the directory %s: %s", o->output, strerror(errno));
        d.dir_fd = open(o->output, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        d.storage_fd = open(storage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        out = d.dir_fd < 0 ? -1 : openat(d.dir_fd, "core", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        r = out < 0 || d.storage_fd < 0 ? -errno : copy_core(core_fd, out);
        if (out >= 0)
                close(out);
        if (r == 0)
                r = store_list_binaries(db, id, dump_binary, &d);
        if (d.dir_fd >= 0)
                close(d.dir_fd);
        if (d.storage_fd >= 0)
                close(d.storage_fd);
        if (r < 0 || d.error < 0)
                return die("cannot write %s: %s", o->output, strerror(-(r < 0 ? r : d.error)));
        printf("%s/core and %u file%s the process had mapped: pystack core %s/core --lib-search-root=%s\n",
               o->output, d.written, d.written == 1 ? "" : "s", o->output, o->output);
        return EXIT_OK;
}


static int run_local(struct options *o, const struct config *c) {
        char path[PATH_MAX], err[512];
        struct stat st;
        sqlite3 *db;
        int r, storage_fd;

        snprintf(path, sizeof(path), "%s/pystack.db", c->directory);
        if (stat(path, &st) < 0)
                return die("no store at %s (is pystack-coredump installed and has anything crashed?)", path);
        if (store_open(c->directory, &db, err, sizeof(err)) < 0)
                return die("cannot open the store: %s", err);

        if (o->q.verb == VERB_VACUUM) {
                unsigned removed = 0;
                storage_fd = open(c->directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                r = storage_fd < 0 ? -errno : retention_apply(db, storage_fd, c, &removed);
                if (storage_fd >= 0)
                        close(storage_fd);
                store_close(db);
                if (r < 0)
                        return die("vacuum failed: %s", strerror(-r));
                if (o->q.json)
                        printf("{\"removed\":%u}\n", removed);
                else
                        printf("Removed %u core%s.\n", removed, removed == 1 ? "" : "s");
                return EXIT_OK;
        }
        if (o->q.verb == VERB_DUMP || o->q.verb == VERB_DEBUG) {
                int64_t id;
                char *core_path = NULL, *exe = NULL;

                r = query_find_newest(db, &o->q, -1, &id, &core_path, &exe);
                if (r < 0) {
                        int status = die("cannot read the store: %s", r == -ENOMEM ? "out of memory" : store_errmsg(db));
                        store_close(db);
                        return status;
                }
                if (!(o->with_binaries && r > 0 && core_path))
                        store_close(db);
                if (r == 0) {
                        free(core_path);
                        free(exe);
                        return die("No crashes match.");
                }
                if (!core_path) {
                        free(exe);
                        if (o->with_binaries)
                                store_close(db);
                        return die("crash %lld has no stored core (see pystackctl info ID=%lld)", (long long)id,
                                   (long long)id);
                }
                snprintf(path, sizeof(path), "%s/%s", c->directory, core_path);
                int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                free(core_path);
                if (fd < 0) {
                        free(exe);
                        if (o->with_binaries)
                                store_close(db);
                        return die("the core of crash %lld is missing: %s", (long long)id, path);
                }
                if (o->with_binaries) {
                        r = dump_with_binaries(o, db, c->directory, id, fd);
                        store_close(db);
                        close(fd);
                        free(exe);
                        return r;
                }
                r = o->q.verb == VERB_DUMP ? do_dump(o, fd) : do_debug(o, fd, exe);
                close(fd);
                free(exe);
                return r;
        }
        pager_start(o);
        /* cores/ is root's 0700: root may search it */
        snprintf(path, sizeof(path), "%s/cores", c->directory);
        int cores_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        struct query_store qs = { .db = db, .dir = c->directory, .cores_fd = cores_fd };
        r = query_run(&qs, &o->q, -1, stdout, err, sizeof(err));
        if (cores_fd >= 0)
                close(cores_fd);
        store_close(db);
        if (r == 0 && o->q.verb == VERB_ANALYZE)
                notify_daemon(c->runtime_directory, "ANALYZE", NULL, 0);
        fflush(stdout);
        pager_end();
        if (r != 0)
                return die("%s", err);
        return EXIT_OK;
}

static int run_remote(struct options *o, const struct config *c) {
        char line[1024];
        int fd, r, core_fd = -1;

        fd = connect_daemon(c);
        if (fd < 0)
                return die("cannot reach pystackd at %s/query: %s (is it running?)", c->runtime_directory,
                           strerror(-fd));
        struct query wire = o->q;
        if (wire.verb == VERB_DUMP || wire.verb == VERB_DEBUG)
                wire.verb = VERB_CORE;
        if (send_query(fd, &wire) < 0 || read_status(fd, line, sizeof(line), &core_fd) < 0) {
                close(fd);
                return die("pystackd closed the connection");
        }
        if (strncmp(line, "OK", 2) != 0) {
                close(fd);
                if (core_fd >= 0)
                        close(core_fd);
                return remote_error(line);
        }
        if (o->q.verb == VERB_DUMP || o->q.verb == VERB_DEBUG) {
                char exe[PATH_MAX] = "";
                /* after OK: the executable's path, one line */
                if (read_status(fd, exe, sizeof(exe), NULL) < 0)
                        exe[0] = 0;
                close(fd);
                if (core_fd < 0)
                        return die("pystackd sent no core");
                r = o->q.verb == VERB_DUMP ? do_dump(o, core_fd) : do_debug(o, core_fd, exe[0] ? exe : NULL);
                close(core_fd);
                return r;
        }
        pager_start(o);
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
                        break;
        close(fd);
        fflush(stdout);
        pager_end();
        return EXIT_OK;
}

int main(int argc, char **argv) {
        enum { OPT_CONFIG = 256, OPT_JSON, OPT_DEBUGGER, OPT_NATIVE, OPT_LOCALS, OPT_NO_PAGER, OPT_NO_LEGEND,
               OPT_NO_COLOR, OPT_WITH_BINARIES, OPT_FILE, OPT_NO_INDEX, OPT_TASKS };
        static const struct option options[] = {
                { "config", required_argument, NULL, OPT_CONFIG },
                { "json", no_argument, NULL, OPT_JSON },
                { "since", required_argument, NULL, 'S' },
                { "until", required_argument, NULL, 'U' },
                { "reverse", no_argument, NULL, 'r' },
                { "output", required_argument, NULL, 'o' },
                { "debugger", required_argument, NULL, OPT_DEBUGGER },
                { "native", no_argument, NULL, OPT_NATIVE },
                { "locals", no_argument, NULL, OPT_LOCALS },
                { "tasks", no_argument, NULL, OPT_TASKS },
                { "no-pager", no_argument, NULL, OPT_NO_PAGER },
                { "no-legend", no_argument, NULL, OPT_NO_LEGEND },
                { "no-color", no_argument, NULL, OPT_NO_COLOR },
                { "with-binaries", no_argument, NULL, OPT_WITH_BINARIES },
                { "directory", required_argument, NULL, 'D' },
                { "file", required_argument, NULL, OPT_FILE },
                { "merge", no_argument, NULL, 'm' },
                { "no-index", no_argument, NULL, OPT_NO_INDEX },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct options o = { .config = PYSTACK_CONF_DEFAULT };
        struct config cfg;
        char err[512];
        const char *verb = NULL;
        int64_t now = clock_usec(CLOCK_REALTIME);
        int c, r;

        query_init(&o.q);
        opterr = 0;
        /* options anywhere; the first other word is the verb, the rest matches */
        while (optind < argc) {
                c = getopt_long(argc, argv, "+:S:U:rn:1o:hD:m", options, NULL);
                if (c < 0) {
                        const char *arg = argv[optind++];
                        if (!verb) {
                                verb = arg;
                                int v = query_verb_from_name(arg);
                                if (v < 0)
                                        return usage("unknown verb '%s'", arg);
                                o.q.verb = (enum query_verb)v;
                        } else if (query_add_match(&o.q, arg, err, sizeof(err)) < 0)
                                return usage("%s", err);
                        continue;
                }
                switch (c) {
                case OPT_CONFIG: o.config = optarg; break;
                case OPT_JSON: o.q.json = true; break;
                case 'S':
                case 'U': {
                        int64_t t;
                        if (parse_time(optarg, now, &t) < 0)
                                return usage("cannot understand the time '%s'", optarg);
                        if (c == 'S')
                                o.q.since = t;
                        else
                                o.q.until = t;
                        break;
                }
                case 'r': o.q.reverse = true; break;
                case 'n': {
                        char *end;
                        long long v = strtoll(optarg, &end, 10);
                        if (!*optarg || *end || v <= 0)
                                return usage("-n takes a positive number: '%s'", optarg);
                        o.q.limit = v;
                        break;
                }
                case '1': o.q.limit = 1; break;
                case 'o': o.output = optarg; break;
                case OPT_DEBUGGER: o.debugger = optarg; break;
                case OPT_NATIVE: o.q.native = true; break;
                case OPT_LOCALS: o.q.locals = true; break;
                case OPT_TASKS: o.q.tasks = true; break;
                case OPT_NO_PAGER: o.no_pager = true; break;
                case OPT_NO_LEGEND: o.q.no_legend = true; break;
                case OPT_NO_COLOR: o.no_color = true; break;
                case OPT_WITH_BINARIES: o.with_binaries = true; break;
                case 'D': o.journal.directory = optarg; break;
                case OPT_FILE: {
                        char **f = realloc(o.journal.files, (o.n_files + 2) * sizeof(*f));
                        if (!f)
                                return die("out of memory");
                        f[o.n_files++] = optarg;
                        f[o.n_files] = NULL;
                        o.journal.files = f;
                        break;
                }
                case 'm': o.journal.merge = true; break;
                case OPT_NO_INDEX: o.journal.no_index = true; break;
                case 'h': help(); return EXIT_OK;
                case ':': return usage("option '%s' needs a value", argv[optind - 1]);
                default: return usage("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (!verb)
                return usage("missing verb: list, info, show, dump, debug, analyze, groups or vacuum");
        if (o.q.since > o.q.until)
                return usage("--since is after --until");
        if (o.output && o.q.verb != VERB_DUMP)
                return usage("-o goes with dump");
        if (o.with_binaries && (o.q.verb != VERB_DUMP || !o.output))
                return usage("--with-binaries goes with dump -o DIR");
        if (o.with_binaries && geteuid() != 0)
                return die("dump --with-binaries: only root, for now (the binaries are in root's store)");
        bool journal = o.journal.directory || o.journal.files || o.journal.merge;
        if ((!!o.journal.directory + !!o.journal.files + o.journal.merge) > 1)
                return usage("--directory, --file and --merge are one each: choose one");
        if (!journal && query_needs_journal(&o.q))
                return usage("HOST= and MACHINE_ID= go with --directory, --file or --merge");
        if (o.journal.no_index && !o.journal.directory && !o.journal.files)
                return usage("--no-index goes with --directory or --file (only their files are indexed)");
        if (journal) {
                if (o.with_binaries || o.output || o.debugger)
                        return usage("the core stays on its host: -o, --with-binaries and --debugger are not "
                                     "for journals");
                o.q.hosts = true;
                if (o.q.verb == VERB_LIST || o.q.verb == VERB_INFO || o.q.verb == VERB_SHOW ||
                    o.q.verb == VERB_GROUPS)
                        pager_start(&o);
                r = journal_run(&o.journal, &o.q, stdout, err, sizeof(err));
                fflush(stdout);
                pager_end();
                free(o.journal.files);
                return r == 0 ? EXIT_OK : die("%s", err);
        }
        if (o.q.verb == VERB_VACUUM && geteuid() != 0)
                return die("vacuum: only root may remove cores");

        if (config_defaults(&cfg) < 0)
                return die("out of memory");
        r = config_load(&cfg, o.config, !strcmp(o.config, PYSTACK_CONF_DEFAULT), err, sizeof(err));
        if (r < 0) {
                config_free(&cfg);
                return die("%s", err);
        }
        signal(SIGPIPE, SIG_IGN);
        r = geteuid() == 0 ? run_local(&o, &cfg) : run_remote(&o, &cfg);
        config_free(&cfg);
        return r;
}
