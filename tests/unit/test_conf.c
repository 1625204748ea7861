/* SPDX-License-Identifier: MIT */
/* Unit tests for pystack.conf parsing: the shipped file, every key, and refusals. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "tap.h"

static int parse(struct config *c, const char *text, char *err, size_t errsz) {
        config_free(c);
        config_defaults(c);
        return config_parse(c, text, strlen(text), "test.conf", err, errsz);
}

static char *slurp(const char *path) {
        FILE *f = fopen(path, "r");
        static char buf[1 << 16];
        size_t n;

        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        return buf;
}

int main(void) {
        struct config c = {};
        char err[256] = "", path[4096];
        const char *srcdir = getenv("srcdir");
        struct size_limit l;

        config_defaults(&c);
        tap_ok(!strcmp(c.directory, "/var/lib/pystack") && !strcmp(c.runtime_directory, "/run/pystack"),
               "defaults: the directories of the design");
        TAP_EQ_INT(c.compression_level, 7, "default CompressionLevel");
        TAP_EQ_INT(c.max_use.percent, 10, "default MaxUse 10%%");
        TAP_EQ_INT(c.keep_free.percent, 15, "default KeepFree 15%%");
        tap_ok(c.capture == CAPTURE_PYTHON, "default Processes=python");
        tap_ok(!c.socket_capture, "default Mode=pipe");

        snprintf(path, sizeof(path), "%s/etc/pystack.conf", srcdir ? srcdir : ".");
        char *shipped = slurp(path);
        tap_ok(shipped != NULL, "the shipped etc/pystack.conf is readable (%s)", path);
        TAP_EQ_INT(shipped ? parse(&c, shipped, err, sizeof(err)) : -1, 0, "the shipped file parses: %s", err);
        TAP_EQ_INT(c.rate_limit_burst, 10, "its commented keys leave the defaults");

        TAP_EQ_INT(parse(&c, "[Storage]\nDirectory=/srv/crashes   # why\nCompressionLevel=-3\n"
                             "MaxCoreSize=512M\nMaxUse=1G\nKeepFree=5%\n"
                             "[Capture]\nProcesses=all\nRateLimitBurst=0\nRateLimitIntervalSec=10\n"
                             "StoreEnvironment=yes\n[Daemon]\nRuntimeDirectory=/run/x\n", err, sizeof(err)),
                   0, "every key parses: %s", err);
        tap_ok(!strcmp(c.directory, "/srv/crashes"), "trailing comment stripped");
        TAP_EQ_INT(c.compression_level, -3, "negative level");
        tap_ok(c.max_core_size == 512ull << 20, "MaxCoreSize in MiB");
        tap_ok(c.max_use.bytes == 1ull << 30 && c.max_use.percent == 0, "MaxUse in bytes");
        tap_ok(c.keep_free.percent == 5, "KeepFree in percent");
        tap_ok(c.capture == CAPTURE_ALL && c.rate_limit_burst == 0 && c.rate_limit_interval == 10 &&
               c.store_environment && !strcmp(c.runtime_directory, "/run/x"), "capture and daemon keys");

        tap_ok(c.keep_binaries && c.max_binary_size == 512ull << 20 && c.max_binaries_per_crash == 2ull << 30 &&
               !c.binaries_exclude, "binaries: kept, 512M a file, 2G a crash, nothing excluded by default");
        TAP_EQ_INT(parse(&c, "[Capture]\nKeepBinaries=no\nMaxBinarySize=64M\nMaxBinariesPerCrash=1G\n"
                             "BinariesExclude=/opt/cuda/*  /usr/lib/*/libLLVM*.so*\n", err, sizeof(err)),
                   0, "the binaries keys parse: %s", err);
        tap_ok(!c.keep_binaries && c.max_binary_size == 64ull << 20 && c.max_binaries_per_crash == 1ull << 30 &&
               c.binaries_exclude && !strcmp(c.binaries_exclude[0], "/opt/cuda/*") &&
               !strcmp(c.binaries_exclude[1], "/usr/lib/*/libLLVM*.so*") && !c.binaries_exclude[2],
               "and take effect: two patterns");
        TAP_EQ_INT(parse(&c, "[Capture]\nMode=socket\n", err, sizeof(err)), 0, "Mode=socket parses: %s", err);
        tap_ok(c.socket_capture, "and takes effect");
        TAP_EQ_INT(parse(&c, "[Capture]\nMode=pipe\n", err, sizeof(err)), 0, "Mode=pipe parses: %s", err);
        tap_ok(!c.socket_capture, "and takes effect");
        TAP_EQ_INT(parse(&c, "[Capture]\nBinariesExclude=\n", err, sizeof(err)), 0, "an empty BinariesExclude");
        tap_ok(!c.binaries_exclude, "clears the patterns");
        TAP_EQ_INT(parse(&c, "[Storage]\nMaxAge=2w\n[Daemon]\nJournal=no\n[Analysis]\nWorkers=4\n"
                             "TimeoutSec=90s\nMemoryMax=512M\nMaxAttempts=5\nUser=nobody\nAnalyzer=/opt/pystack\n",
                             err, sizeof(err)), 0, "pystackd's keys parse: %s", err);
        tap_ok(c.max_age == 14 * 86400 && !c.journal && c.workers == 4 && c.timeout == 90 &&
               c.memory_max == 512ull << 20 && c.max_attempts == 5 && !strcmp(c.user, "nobody") &&
               !strcmp(c.analyzer, "/opt/pystack"), "pystackd's keys take effect");
        tap_ok(c.journal_report_max == 64u << 10 && !c.journal_locals,
               "the journal's report as JSON: 64K by default, without locals");
        TAP_EQ_INT(parse(&c, "[Daemon]\nJournalReportMax=1M\nJournalLocals=yes\n", err, sizeof(err)), 0,
                   "JournalReportMax, JournalLocals parse: %s", err);
        tap_ok(c.journal_report_max == 1u << 20 && c.journal_locals, "and take effect");
        TAP_EQ_INT(parse(&c, "[Daemon]\nJournalReportMax=0\n", err, sizeof(err)), 0, "JournalReportMax=0: none");
        tap_ok(c.journal_report_max == 0, "no PYSTACK_REPORT_JSON");
        uint64_t d = 0;
        tap_ok(parse_duration("90min", &d) == 0 && d == 5400 && parse_duration("3x", &d) == -EINVAL,
               "durations");

        static const struct { const char *text, *why, *says; } bad[] = {
                { "[Analysis]\nTimeoutSec=0\n", "a zero timeout", "bad value" },
                { "[Analysis]\nMemoryMax=1M\n", "too little memory for an analysis", "bad value" },
                { "[Analysis]\nUser=a/b\n", "a user name with a slash", "bad value" },
                { "[Storage]\nDirectory=relative\n", "a relative Directory", "bad value" },
                { "[Storage]\nDirectory=/a/../etc\n", "a Directory with ..", "bad value" },
                { "[Storage]\nCompressionLevel=42\n", "level out of range", "bad value" },
                { "[Storage]\nMaxCoreSize=10%\n", "a percentage where bytes are needed", "bad value" },
                { "[Storage]\nMaxUse=101%\n", "over 100%", "bad value" },
                { "[Storage]\nMaxUse=12Q\n", "an unknown suffix", "bad value" },
                { "[Storage]\nMaxUse=99999999999999999999G\n", "an overflowing size", "bad value" },
                { "[Capture]\nProcesses=some\n", "an unknown Processes value", "bad value" },
                { "[Capture]\nMode=fifo\n", "an unknown Mode value", "bad value" },
                { "[Capture]\nStoreEnvironment=maybe\n", "a bad boolean", "bad value" },
                { "[Capture]\nBinariesExclude=lib*.so\n", "a relative exclude pattern", "bad value" },
                { "[Capture]\nMaxBinarySize=5%\n", "a percentage for MaxBinarySize", "bad value" },
                { "[Daemon]\nJournalReportMax=512\n", "a JournalReportMax below 1K", "bad value" },
                { "[Daemon]\nJournalReportMax=17M\n", "a JournalReportMax above 16M", "bad value" },
                { "[Daemon]\nJournalReportMax=5%\n", "a percentage for JournalReportMax", "bad value" },
                { "[Storage]\nDirectroy=/x\n", "a misspelled key", "unknown key" },
                { "[Strage]\n", "an unknown section", "unknown section" },
                { "Directory=/x\n", "a key outside a section", "outside a section" },
                { "[Storage]\njust words\n", "a line without =", "expected Key=value" },
                { "[Storage\n", "a broken section header", "bad section header" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = 0;
                int r = parse(&c, bad[i].text, err, sizeof(err));
                tap_ok(r == -EINVAL && strstr(err, bad[i].says) && strstr(err, "test.conf:"),
                       "refused: %s (%s)", bad[i].why, err);
        }
        char longline[5000];
        memset(longline, 'x', sizeof(longline) - 1);
        longline[sizeof(longline) - 1] = 0;
        tap_ok(parse(&c, longline, err, sizeof(err)) == -EINVAL, "an over-long line is refused");
        tap_ok(config_parse(&c, "[Storage]\0Directory=/x\n", 22, "t", err, sizeof(err)) == -EINVAL,
               "a NUL byte is refused");
        tap_ok(parse_size("0", false, &l) == 0 && l.bytes == 0, "size 0");
        tap_ok(parse_size("", false, &l) == -EINVAL && parse_size("-1", false, &l) == -EINVAL, "empty and negative sizes");
        tap_ok(size_limit_bytes(&(struct size_limit) { .percent = 10 }, 1000) == 100, "percent of a file system");
        TAP_EQ_INT(config_load(&c, "/nonexistent/pystack.conf", true, err, sizeof(err)), 0, "a missing optional file is fine");
        tap_ok(config_load(&c, "/nonexistent/pystack.conf", false, err, sizeof(err)) == -ENOENT, "a missing required file is not");
        config_free(&c);
        return tap_done();
}
