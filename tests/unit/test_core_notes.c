/* SPDX-License-Identifier: MIT */
/* Unit tests for core note parsing: well-formed notes decode, hostile ones are refused. */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core_file.h"
#include "tap.h"

static uint8_t buf[4096];
static size_t len;

/* Where each note of build_valid() ends, and what it is: what a prefix of the blob holds. */
static struct { size_t end; uint32_t type; bool core; } notes[16];
static size_t n_notes;

static void note(uint32_t type, const char *name, const void *desc, uint32_t descsz) {
        uint32_t namesz = strlen(name) + 1;

        memcpy(buf + len, &namesz, 4);
        memcpy(buf + len + 4, &descsz, 4);
        memcpy(buf + len + 8, &type, 4);
        len += 12;
        memcpy(buf + len, name, namesz);
        len += (namesz + 3) & ~3u;
        memcpy(buf + len, desc, descsz);
        len += (descsz + 3) & ~3u;
        if (n_notes < 16)
                /* its data ends before the padding, which a parser may not need at the very end */
                notes[n_notes++] = (typeof(notes[0])) { len - ((descsz + 3) & ~3u) + descsz, type,
                                                        !strcmp(name, "CORE") };
}

/* How many whole notes of `type` (owner CORE) lie within the first cut bytes. */
static size_t whole(uint32_t type, size_t cut) {
        size_t n = 0;

        for (size_t i = 0; i < n_notes; i++)
                n += notes[i].core && notes[i].type == type && notes[i].end <= cut;
        return n;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void build_valid(void) {
        uint8_t prstatus[336] = {}, prpsinfo[136] = {}, siginfo[128] = {}, file[16 + 2 * 24 + 34] = {};
        uint64_t auxv[4] = { AT_ENTRY, 0x401000, AT_NULL, 0 };

        len = 0;
        n_notes = 0;
        prstatus[12] = SIGSEGV;                         /* pr_cursig */
        put32(prstatus + 32, 4242);                     /* pr_pid */
        put64(prstatus + 112 + 8 * CORE_REG_RIP, 0xdeadbeef);
        put64(prstatus + 112 + 8 * CORE_REG_FS_BASE, 0x7f0000001000);
        note(NT_PRSTATUS, "CORE", prstatus, sizeof(prstatus));
        put32(prstatus + 32, 4243);
        prstatus[12] = 0;
        note(NT_PRSTATUS, "CORE", prstatus, sizeof(prstatus));

        prpsinfo[1] = 'R';
        prpsinfo[2] = 1;
        prpsinfo[3] = (uint8_t)-5;
        put32(prpsinfo + 16, 1000);
        put32(prpsinfo + 20, 100);
        put32(prpsinfo + 24, 4242);
        put32(prpsinfo + 28, 1);
        memcpy(prpsinfo + 40, "python3.11-long-name", 16);  /* fills all 16 bytes, no NUL */
        memcpy(prpsinfo + 56, "python3 -c pass", 15);
        note(NT_PRPSINFO, "CORE", prpsinfo, sizeof(prpsinfo));

        put32(siginfo, SIGSEGV);
        put32(siginfo + 8, 1);                          /* SEGV_MAPERR */
        put64(siginfo + 16, 0x10);
        note(NT_SIGINFO, "CORE", siginfo, sizeof(siginfo));
        note(NT_AUXV, "CORE", auxv, sizeof(auxv));

        put64(file, 2);
        put64(file + 8, 4096);
        put64(file + 16, 0x400000); put64(file + 24, 0x401000); put64(file + 32, 0);
        put64(file + 40, 0x401000); put64(file + 48, 0x402000); put64(file + 56, 1);
        memcpy(file + 64, "/usr/bin/python3\0/usr/bin/python3", 34);
        note(NT_FILE, "CORE", file, sizeof(file));
        /* a note of another owner with the same type number must be ignored */
        note(NT_PRSTATUS, "LINUX", prstatus, 16);
}

static int parse(struct core_file *c, const char **err) {
        memset(c, 0, sizeof(*c));
        return core_parse_notes(c, buf, len, err);
}

/* The first cut bytes alone, in a buffer of exactly that size: a read past it is a sanitizer's
 * (or valgrind's) error, not a silent read of the rest of buf. */
static int parse_cut(struct core_file *c, size_t cut, const char **err) {
        uint8_t *copy = malloc(cut ? cut : 1);
        int r;

        memcpy(copy, buf, cut);
        memset(c, 0, sizeof(*c));
        r = core_parse_notes(c, copy, cut, err);
        free(copy);
        return r;
}

static void release(struct core_file *c) {
        free(c->threads);
        free(c->auxv);
        free(c->mappings);
        memset(c, 0, sizeof(*c));
}

int main(void) {
        struct core_file c;
        const char *err = NULL;

        build_valid();
        TAP_EQ_INT(parse(&c, &err), 0, "valid notes parse");
        TAP_EQ_INT(c.n_threads, 2, "two threads");
        TAP_EQ_INT(c.threads[0].tid, 4242, "first thread tid");
        TAP_EQ_INT(c.threads[0].cursig, SIGSEGV, "cursig of the crashed thread");
        tap_ok(c.threads[0].regs[CORE_REG_RIP] == 0xdeadbeef, "rip decoded");
        tap_ok(c.threads[0].regs[CORE_REG_FS_BASE] == 0x7f0000001000, "fs_base decoded");
        tap_ok(core_crashed_thread(&c) == &c.threads[0], "crashed thread found");
        tap_ok(c.process.present && c.process.state == 'R' && c.process.zombie, "process state");
        TAP_EQ_INT(c.process.nice, -5, "negative niceness");
        TAP_EQ_INT(c.process.uid, 1000, "uid");
        tap_ok(strlen(c.process.fname) == 16, "a 16-byte comm without NUL stays bounded");
        tap_ok(strcmp(c.process.psargs, "python3 -c pass") == 0, "psargs");
        tap_ok(c.signal.present && c.signal.signo == SIGSEGV && c.signal.addr == 0x10, "siginfo");
        tap_ok(core_auxv(&c, AT_ENTRY) == 0x401000 && core_auxv(&c, AT_PHDR) == 0, "auxv lookup");
        TAP_EQ_INT(c.n_mappings, 2, "NT_FILE mappings");
        tap_ok(c.n_mappings == 2 && c.mappings[1].file_offset == 4096 &&
               strcmp(c.mappings[1].path, "/usr/bin/python3") == 0, "mapping offset in bytes and path");
        tap_ok(core_mapping_at(&c, 0x401800) == &c.mappings[1] && !core_mapping_at(&c, 0x402000),
               "mapping lookup is half-open");
        release(&c);

        /* every truncation of a valid blob is refused, or parsed as exactly the whole notes it
         * holds (what a cut note would have said is not made up); never read past */
        size_t full = len, refused = 0, parsed = 0;
        int clean = 1;
        for (size_t cut = 0; cut < full; cut++) {
                int r = parse_cut(&c, cut, &err);

                if (r == -EBADMSG)
                        refused++;
                else if (r != 0)
                        clean = 0;
                else {
                        parsed++;
                        if (c.n_threads != whole(NT_PRSTATUS, cut) ||
                            c.process.present != (whole(NT_PRPSINFO, cut) == 1) ||
                            c.signal.present != (whole(NT_SIGINFO, cut) == 1) ||
                            c.n_mappings != (whole(NT_FILE, cut) ? 2u : 0u) ||
                            (c.n_threads >= 1 && c.threads[0].tid != 4242) ||
                            (c.n_threads == 2 && c.threads[1].tid != 4243)) {
                                clean = 0;
                                tap_ok(0, "cut at %zu: %zu threads, process %d, signal %d, %zu mappings", cut,
                                       c.n_threads, c.process.present, c.signal.present, c.n_mappings);
                        }
                }
                release(&c);
        }
        len = full;
        tap_ok(refused > 0 && parsed > 0, "truncations: %zu refused, %zu parsed as their whole notes", refused,
               parsed);
        tap_ok(clean, "every truncation is refused or parsed as exactly the notes it holds");

        /* a descsz pointing past the end */
        build_valid();
        put32(buf + 4, 0xfffffff0);
        TAP_EQ_INT(parse(&c, &err), -EBADMSG, "huge descsz refused");
        tap_ok(err && strstr(err, "past the end"), "error says why: %s", err ? err : "(null)");
        release(&c);

        /* NT_FILE claiming more entries than fit */
        build_valid();
        {
                uint8_t file[16 + 24 + 8] = {};
                len = 0;
                uint8_t prstatus[336] = {};
                note(NT_PRSTATUS, "CORE", prstatus, sizeof(prstatus));
                put64(file, 1000000);
                put64(file + 8, 4096);
                note(NT_FILE, "CORE", file, sizeof(file));
                TAP_EQ_INT(parse(&c, &err), -EBADMSG, "NT_FILE count larger than the note refused");
                release(&c);
                /* a name without its NUL */
                len = 0;
                note(NT_PRSTATUS, "CORE", prstatus, sizeof(prstatus));
                put64(file, 1);
                memset(file + 40, 'x', 8);
                note(NT_FILE, "CORE", file, sizeof(file));
                TAP_EQ_INT(parse(&c, &err), -EBADMSG, "NT_FILE name without NUL refused");
                release(&c);
                /* page size not a power of two */
                len = 0;
                note(NT_PRSTATUS, "CORE", prstatus, sizeof(prstatus));
                put64(file, 0);
                put64(file + 8, 3000);
                note(NT_FILE, "CORE", file, 16);
                TAP_EQ_INT(parse(&c, &err), -EBADMSG, "NT_FILE odd page size refused");
                release(&c);
                /* a short NT_PRSTATUS */
                len = 0;
                note(NT_PRSTATUS, "CORE", prstatus, 100);
                TAP_EQ_INT(parse(&c, &err), -EBADMSG, "short NT_PRSTATUS refused");
                release(&c);
                /* no threads at all */
                len = 0;
                note(NT_AUXV, "CORE", file, 16);
                TAP_EQ_INT(parse(&c, &err), -EBADMSG, "a core without threads refused");
                release(&c);
        }
        {
                /* aarch64: a 392-byte NT_PRSTATUS (x0-x30, sp, pc, pstate at 112), then the thread's
                 * NT_ARM_TLS and NT_ARM_PAC_MASK (owner LINUX) */
                uint8_t a64[392] = {}, tls[16] = {}, pac[16] = {};

                len = 0;
                n_notes = 0;
                a64[12] = SIGABRT;
                put32(a64 + 32, 77);
                for (int i = 0; i < 34; i++)
                        put64(a64 + 112 + 8 * i, 0x1000 + i);
                note(NT_PRSTATUS, "CORE", a64, sizeof(a64));
                put64(tls, 0x5500001740);
                note(0x401, "LINUX", tls, 8);
                put64(pac, 0x007f000000000000ull);
                put64(pac + 8, 0x007f000000000000ull);
                note(0x406, "LINUX", pac, sizeof(pac));
                put32(a64 + 32, 78);
                a64[12] = 0;
                note(NT_PRSTATUS, "CORE", a64, sizeof(a64));
                memset(&c, 0, sizeof(c));
                c.arch = &core_arch_aarch64;
                TAP_EQ_INT(core_parse_notes(&c, buf, len, &err), 0, "aarch64 notes parse");
                tap_ok(c.n_threads == 2 && c.threads[0].tid == 77 && c.threads[1].tid == 78, "aarch64: two threads");
                tap_ok(c.n_threads == 2 && c.threads[0].regs[30] == 0x1000 + 30 && c.threads[0].sp == 0x1000 + 31 &&
                       c.threads[0].pc == 0x1000 + 32 && c.threads[0].regs[CORE_A64_PSTATE] == 0x1000 + 33,
                       "aarch64: x30, sp, pc and pstate where user_pt_regs has them");
                tap_ok(c.n_threads == 2 && c.threads[0].tp == 0x5500001740 && c.threads[1].tp == 0,
                       "aarch64: NT_ARM_TLS is the thread pointer of the thread before it, and only of it");
                tap_ok(c.n_threads == 2 && core_thread_pthread(c.arch, &c.threads[0]) == 0x5500001000,
                       "aarch64: glibc's pthread_t is 0x740 below tpidr_el0");
                tap_ok(c.pac_insn_mask == 0x007f000000000000ull, "aarch64: NT_ARM_PAC_MASK's instruction mask");
                release(&c);
                /* an x86-64-sized NT_PRSTATUS is too short for aarch64 */
                len = 0;
                note(NT_PRSTATUS, "CORE", a64, 336);
                memset(&c, 0, sizeof(c));
                c.arch = &core_arch_aarch64;
                TAP_EQ_INT(core_parse_notes(&c, buf, len, &err), -EBADMSG, "aarch64: a 336-byte NT_PRSTATUS refused");
                release(&c);
                /* the aarch64 notes mean nothing in an x86-64 core */
                len = 0;
                note(NT_PRSTATUS, "CORE", a64, 336);
                note(0x401, "LINUX", tls, 8);
                note(0x406, "LINUX", pac, sizeof(pac));
                TAP_EQ_INT(parse(&c, &err), 0, "x86-64 notes with aarch64's LINUX notes parse");
                tap_ok(c.n_threads == 1 && c.threads[0].tp == c.threads[0].regs[CORE_REG_FS_BASE] &&
                       c.pac_insn_mask == 0, "x86-64: the thread pointer is fs_base; NT_ARM_* ignored");
                release(&c);
        }
        tap_ok(core_arch_of(EM_X86_64) == &core_arch_x86_64 && core_arch_of(EM_AARCH64) == &core_arch_aarch64 &&
               !core_arch_of(EM_RISCV) && !core_arch_of(EM_386), "the architectures read");
        tap_ok(!strcmp(core_machine_name(EM_RISCV, false, true), "riscv64") &&
               !strcmp(core_machine_name(EM_PPC64, false, true), "ppc64le") &&
               !strcmp(core_machine_name(EM_S390, true, true), "s390x") &&
               !strcmp(core_machine_name(EM_386, false, false), "i386") &&
               !strcmp(core_machine_name(9999, false, true), "ELF machine 9999"), "other architectures named");
        tap_ok(signal_name(SIGABRT) && strcmp(signal_name(SIGABRT), "SIGABRT") == 0, "signal names");
        tap_ok(signal_name(0) == NULL && signal_name(200) == NULL && signal_name(-3) == NULL, "unknown signals");
        return tap_done();
}
