/* SPDX-License-Identifier: MIT */
/*
 * pystack: the analyzer's command line.
 *
 *   pystack core CORE [EXECUTABLE] [options]
 *   pystack remote PID [options]
 *
 * Exit codes are the analysis_status values (doc/report-schema.md).
 */
#include <getopt.h>
#include <stdarg.h>
#include <string.h>

#include "analysis.h"
#include "config.h"
#include "escape.h"
#include "report.h"

static void help(FILE *out) {
        fputs("Usage: pystack core CORE [EXECUTABLE] [OPTIONS]\n"
              "       pystack remote PID [OPTIONS]\n"
              "\n"
              "Print what every thread of a crashed Python process was running, from its core file,\n"
              "or of a running one (remote), which is stopped while it is read and then runs on.\n"
              "\n"
              "  CORE                     an ELF core file of a Python process, x86-64 or aarch64\n"
              "  EXECUTABLE               the Python executable (default: the one named in the core)\n"
              "  PID                      a running Python process (of this user, or any as root; in a\n"
              "                           container, by its PID here: its files are read through\n"
              "                           /proc/PID/root)\n"
              "\n"
              "Options:\n"
              "      --no-block           remote: read without stopping the process (fast; the stacks\n"
              "                           may not hold together; no native frames)\n"
              "      --json               print one JSON document (schema: doc/report-schema.md)\n"
              "      --with-text          with --json: the text report too, as the field \"text\"\n"
              "      --native             add the C/C++/Rust frames, merged with the Python frames\n"
              "      --native-all         the same, with the interpreter's own frames and threads\n"
              "                           that run no Python\n"
              "      --native-last        only the native frames below the last Python frame\n"
              "      --locals             show each Python frame's arguments and local variables\n"
              "      --tasks              add every asyncio task as a tree of who awaits whom, with each\n"
              "                           task's coroutine stack (CPython 3.14 and later)\n"
              "      --max-string-length=N  characters of a str or bytes value before \"...\" (80)\n"
              "      --max-items=N        items of a container before \"...\" (10)\n"
              "      --max-depth=N        nesting of containers before \"...\" (3)\n"
              "      --exhaustive         scan memory for the interpreter when symbols do not find it\n"
              "      --lib-search-path=P  look for the core's libraries by name in the directories of P\n"
              "                           (colon-separated); for cores from another machine\n"
              "      --lib-search-root=D  look for the core's libraries under directory D\n"
              "      --binary=WHERE=FILE  the file the process mapped at WHERE (the address of its\n"
              "                           first mapping, 0x..., or the path the core names) is FILE,\n"
              "                           kept at the crash: used first, if its build-id matches\n"
              "      --no-color           never colour the output (the default off a terminal)\n"
              "      --no-source          do not print source lines under Python frames\n"
              "      --source-root=D      read source lines only under directory D, as if it were /\n"
              "                           (the crashed process's root: a container's); none elsewhere\n"
              "  -h, --help               show this help\n"
              "  -V, --version            show the version\n"
              "\n"
              "Supported: CPython 2.7 and 3.6 to 3.15 (3.13+ through _Py_DebugOffsets); cores of x86-64\n"
              "and aarch64 on either host (remote: the host's own).\n"
              "A value is never longer than 1024 bytes; a NULL slot reads <invalid object at 0x0>.\n"
              "\n"
              "Exit status: 0 report printed; 1 internal error; 2 usage error; 3 the core cannot be\n"
              "read (not an ELF core, truncated, corrupt, other architecture), or the process (gone,\n"
              "a zombie, not allowed, traced by another); 4 the executable is missing or does not\n"
              "match the core; 5 no Python interpreter found.\n", out);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("pystack: ", stderr);
        va_start(ap, fmt);
        esc_vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see 'pystack --help')\n", stderr);
        return ANALYSIS_USAGE;
}

static int add_search_path(struct strv *paths, const char *arg) {
        _cleanup_free_ char *copy = strdup(arg);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
                if (*p && strv_addf(paths, "%s", p) < 0)
                        return -ENOMEM;
        return 0;
}

static void print_error(const char *core_path, const char *error) {
        fputs("pystack: ", stderr);
        esc_fputs(stderr, core_path);
        fputs(": ", stderr);
        esc_fputs(stderr, error ? error : "analysis failed");
        fputc('\n', stderr);
}

enum { OPT_JSON = 256, OPT_EXHAUSTIVE, OPT_LIB_PATH, OPT_LIB_ROOT, OPT_NO_COLOR, OPT_NO_SOURCE,
       OPT_NATIVE, OPT_NATIVE_ALL, OPT_NATIVE_LAST, OPT_LOCALS, OPT_MAX_STRING, OPT_MAX_ITEMS,
       OPT_MAX_DEPTH, OPT_WITH_TEXT, OPT_BINARY, OPT_SOURCE_ROOT, OPT_NO_BLOCK, OPT_TASKS };

/* What the command line asks for. */
struct cli {
        struct analysis_options opts;
        struct report_options ropts;
        bool json, with_text;
        const char *core_path;
        pid_t pid;                      /* remote: the process, else 0 */
        bool no_block;
        char root[64];                  /* remote: /proc/PID/root */
};

/* -1 when the analysis should run, else the exit status (help, version, a usage error). */
static int parse_cli(int argc, char **argv, struct cli *cli) {
        static const struct option options[] = {
                { "json", no_argument, NULL, OPT_JSON },
                { "with-text", no_argument, NULL, OPT_WITH_TEXT },
                { "exhaustive", no_argument, NULL, OPT_EXHAUSTIVE },
                { "lib-search-path", required_argument, NULL, OPT_LIB_PATH },
                { "lib-search-root", required_argument, NULL, OPT_LIB_ROOT },
                { "binary", required_argument, NULL, OPT_BINARY },
                { "no-color", no_argument, NULL, OPT_NO_COLOR },
                { "no-source", no_argument, NULL, OPT_NO_SOURCE },
                { "source-root", required_argument, NULL, OPT_SOURCE_ROOT },
                { "native", no_argument, NULL, OPT_NATIVE },
                { "native-all", no_argument, NULL, OPT_NATIVE_ALL },
                { "native-last", no_argument, NULL, OPT_NATIVE_LAST },
                { "locals", no_argument, NULL, OPT_LOCALS },
                { "max-string-length", required_argument, NULL, OPT_MAX_STRING },
                { "max-items", required_argument, NULL, OPT_MAX_ITEMS },
                { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
                { "no-block", no_argument, NULL, OPT_NO_BLOCK },
                { "tasks", no_argument, NULL, OPT_TASKS },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        cli->opts = (struct analysis_options) {
                .max_frames = ANALYSIS_DEFAULT_MAX_FRAMES,
                .locals_limits = {
                        .max_string = LOCALS_DEFAULT_MAX_STRING,
                        .max_items = LOCALS_DEFAULT_MAX_ITEMS,
                        .max_depth = LOCALS_DEFAULT_MAX_DEPTH,
                        .max_repr = LOCALS_DEFAULT_MAX_REPR,
                },
        };
        cli->ropts = (struct report_options) { .color = isatty(STDOUT_FILENO), .source = true };
        int c;

        opterr = 0;  /* our own one-line messages */
        /* "core" first, then CORE and EXECUTABLE; options anywhere */
        const char *positional[2];
        size_t n_positional = 0;
        const char *subcommand = NULL;
        while (optind < argc) {
                c = getopt_long(argc, argv, "+:hV", options, NULL);
                if (c < 0) {
                        const char *arg = argv[optind++];
                        if (!subcommand) {
                                if (strcmp(arg, "core") != 0 && strcmp(arg, "remote") != 0)
                                        return usage_error("unknown subcommand '%s'", arg);
                                subcommand = arg;
                        } else if (n_positional == (strcmp(subcommand, "core") ? 1u : 2u))
                                return usage_error("unexpected argument '%s'", arg);
                        else
                                positional[n_positional++] = arg;
                        continue;
                }
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case 'V':
                        puts("pystack " PACKAGE_VERSION);
                        return 0;
                case OPT_JSON:
                        cli->json = true;
                        break;
                case OPT_WITH_TEXT:
                        cli->with_text = true;
                        break;
                case OPT_EXHAUSTIVE:
                        cli->opts.exhaustive = true;
                        break;
                case OPT_LIB_PATH:
                        if (add_search_path(&cli->opts.target.lib_search_paths, optarg) < 0)
                                return usage_error("out of memory");
                        break;
                case OPT_LIB_ROOT:
                        cli->opts.target.lib_search_root = optarg;
                        break;
                case OPT_BINARY: {
                        /* WHERE=FILE, split at the last '=': a mapped path may hold one, FILE not */
                        const char *eq = strrchr(optarg, '=');
                        if (!eq || eq == optarg || !eq[1])
                                return usage_error("--binary wants WHERE=FILE, not '%s'", optarg);
                        if (cli->opts.target.binaries.n >= 2 * TARGET_MAX_BINARIES)
                                return usage_error("more than %d --binary options", TARGET_MAX_BINARIES);
                        if (strv_addf(&cli->opts.target.binaries, "%.*s", (int)(eq - optarg), optarg) < 0 ||
                            strv_addf(&cli->opts.target.binaries, "%s", eq + 1) < 0)
                                return usage_error("out of memory");
                        break;
                }
                case OPT_NO_COLOR:
                        cli->ropts.color = false;
                        break;
                case OPT_NO_SOURCE:
                        cli->ropts.source = false;
                        break;
                case OPT_SOURCE_ROOT:
                        cli->ropts.source_root = optarg;
                        break;
                case OPT_NATIVE:
                        cli->opts.native = NATIVE_ON;
                        break;
                case OPT_NATIVE_ALL:
                        cli->opts.native = NATIVE_ALL;
                        break;
                case OPT_NATIVE_LAST:
                        cli->opts.native = NATIVE_LAST;
                        break;
                case OPT_LOCALS:
                        cli->opts.locals = true;
                        break;
                case OPT_NO_BLOCK:
                        cli->no_block = true;
                        break;
                case OPT_TASKS:
                        cli->opts.tasks = true;
                        break;
                case OPT_MAX_STRING:
                case OPT_MAX_ITEMS:
                case OPT_MAX_DEPTH: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (!*optarg || *end || v == 0 || v > 1000000)
                                return usage_error("%s needs a number from 1 to 1000000", argv[optind - 1]);
                        if (c == OPT_MAX_STRING)
                                cli->opts.locals_limits.max_string = v;
                        else if (c == OPT_MAX_ITEMS)
                                cli->opts.locals_limits.max_items = v;
                        else
                                cli->opts.locals_limits.max_depth = v;
                        break;
                }
                case ':':
                        return usage_error("option '%s' needs a value", argv[optind - 1]);
                default:
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (!subcommand)
                return usage_error("missing subcommand: use 'pystack core CORE' or 'pystack remote PID'");
        if (!strcmp(subcommand, "remote")) {
                char *end;
                long pid;

                if (n_positional == 0)
                        return usage_error("missing PID: use 'pystack remote PID'");
                errno = 0;
                pid = strtol(positional[0], &end, 10);
                if (errno || *end || end == positional[0] || pid <= 0 || pid > INT32_MAX)
                        return usage_error("'%s' is not a process id", positional[0]);
                if (cli->no_block && cli->opts.native != NATIVE_OFF)
                        return usage_error("native frames need the process stopped: not with --no-block");
                if (cli->opts.target.binaries.n || cli->opts.target.lib_search_paths.n ||
                    cli->opts.target.lib_search_root)
                        return usage_error("--binary, --lib-search-path and --lib-search-root are for cores");
                cli->pid = (pid_t)pid;
                snprintf(cli->root, sizeof(cli->root), "/proc/%ld/root", pid);
                /* its files and sources as the process sees them: a container's */
                cli->opts.target.root = cli->root;
                if (!cli->ropts.source_root)
                        cli->ropts.source_root = cli->root;
        } else {
                if (n_positional == 0)
                        return usage_error("missing CORE: use 'pystack core CORE'");
                if (cli->no_block)
                        return usage_error("--no-block is for a running process (pystack remote)");
                cli->core_path = positional[0];
                if (n_positional == 2)
                        cli->opts.target.executable = positional[1];
        }
        if (cli->json)
                cli->ropts.color = false;
        return -1;
}


/* Warnings go to stderr after a text report (a JSON report carries them). */
static void print_warnings(const struct analysis *a) {
        const struct strv *w[] = { &a->target->warnings, &a->warnings };

        for (size_t k = 0; k < ELEMENTSOF(w); k++)
                for (size_t i = 0; i < w[k]->n; i++) {
                        fputs("pystack: warning: ", stderr);
                        esc_fputs(stderr, w[k]->v[i]);
                        fputc('\n', stderr);
                }
}

/* The report asked for on stdout: 0, or -errno. */
static int print_report(const struct analysis *a, struct cli *cli) {
        _cleanup_free_ char *text = NULL;
        struct report_options ropts = cli->ropts;

        if (!cli->json) {
                int r = report_text(stdout, a, &ropts);
                print_warnings(a);
                return r;
        }
        if (cli->with_text) {
                /* the text report too, for a consumer that files both (pystackd's journal entry) */
                struct report_options topts = ropts;
                size_t len = 0;
                FILE *mem = open_memstream(&text, &len);

                topts.color = false;
                if (!mem)
                        return -ENOMEM;
                int r = report_text(mem, a, &topts);
                if (fclose(mem) != 0 || r < 0)
                        return -ENOMEM;
                ropts.text = text;
        }
        /* in memory first: a report an allocation failure left incomplete is not printed */
        _cleanup_free_ char *json = NULL;
        size_t json_len = 0;
        FILE *mem = open_memstream(&json, &json_len);
        if (!mem)
                return -ENOMEM;
        int r = report_json(mem, a, &ropts);
        if (fclose(mem) != 0 || r == -ENOMEM)
                return -ENOMEM;
        if (r < 0)
                return r;
        if (fwrite(json, 1, json_len, stdout) != json_len || fflush(stdout) != 0)
                return -EIO;
        return 0;
}

int main(int argc, char **argv) {
        struct cli cli = {};
        struct analysis *a = NULL;
        const char *error = NULL;
        enum analysis_status st;
        int r;

        r = parse_cli(argc, argv, &cli);
        if (r >= 0)
                return r;
        char what[32];
        if (cli.pid) {
                snprintf(what, sizeof(what), "process %d", (int)cli.pid);
                st = analysis_run_process(cli.pid, !cli.no_block, &cli.opts, &a, &error);
        } else
                st = analysis_run(cli.core_path, &cli.opts, &a, &error);
        /* a truncated core still gets the report of what remains, then the error */
        bool partial = st == ANALYSIS_BAD_CORE && a && a->n_threads > 0;
        if (st != ANALYSIS_OK && !partial) {
                if (cli.pid && st == ANALYSIS_BAD_CORE) {
                        /* the message names the process */
                        fputs("pystack: ", stderr);
                        esc_fputs(stderr, error);
                        fputc('\n', stderr);
                } else
                        print_error(cli.pid ? what : cli.core_path, error);
                analysis_free(a);
                strv_clear(&cli.opts.target.lib_search_paths);
                strv_clear(&cli.opts.target.binaries);
                return st;
        }
        r = print_report(a, &cli);
        if (partial)
                print_error(cli.core_path, error);
        analysis_free(a);
        strv_clear(&cli.opts.target.lib_search_paths);
        strv_clear(&cli.opts.target.binaries);
        if (r == -ENOMEM) {
                fputs("pystack: out of memory\n", stderr);
                return ANALYSIS_INTERNAL;
        }
        if (r < 0) {
                fputs("pystack: cannot write the report\n", stderr);
                return ANALYSIS_INTERNAL;
        }
        return st;
}
