/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for analyzer/core/target.c, the one memory-access interface:
 * synthetic x86-64 ELF cores written by the test into a temporary
 * directory (NT_PRSTATUS, NT_AUXV, NT_FILE notes and PT_LOAD segments),
 * with small ELF files on disk for the mappings the core does not dump.
 *
 * The process the main core describes, by address:
 *   0x400000-0x401000  prog, first page dumped (its build-id)
 *   0x401000-0x403000  prog, not dumped (p_filesz 0): read from prog
 *   0x500000-0x502000  two adjacent anonymous segments, then a hole
 *   0x510000-0x511000  the AT_EXECFN string
 *   0x600000-0x602000  p_memsz 0x2000, p_filesz 0x1000, nothing mapped
 *   0x700000-0x704000  libgap.so in four mappings, only the second has a segment
 *   0x800000-0x802000  libbad.so, whose build-id on disk is another one
 *   0x900000-0x902000  libshort.so, a file shorter than its mapping
 *   0xa00000-0xa01000  libmissing.so, absent from disk
 *   0xb00000-0xb02000  a library found by --lib-search-path
 *   0xc00000-0xc02000  a library found under --lib-search-root
 *   0xd00000-0xd02000  libmixed.so, one mapping with a segment for its second page only
 *   top of the address space: 0xfff bytes ending at UINT64_MAX
 * Every read is checked on the raw core and on a seekable zstd copy of it
 * (small frames, so reads cross frame boundaries).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_file.h"
#include "tap.h"
#include "target.h"
#include "util.h"
#include "zst_seekable.h"

#define PAGE 0x1000u

static char tmpdir[] = "/tmp/test-target-XXXXXX";

/* A path in the temporary directory; each call's string lives until the end (free_paths()). */
static char *paths[512];
static size_t n_paths;

static const char *tmp(const char *name) {
        char *p;

        if (n_paths == ELEMENTSOF(paths) || asprintf(&p, "%s/%s", tmpdir, name) < 0)
                abort();
        return paths[n_paths++] = p;
}

static void free_paths(void) {
        for (size_t i = 0; i < n_paths; i++)
                free(paths[i]);
}

/* What the core holds at addr, and what a file holds at off: never the same pattern. */
static uint8_t core_byte(uint64_t addr) {
        return (uint8_t)(addr ^ (addr >> 8) ^ (addr >> 16) ^ 0xa5);
}

static uint8_t file_byte(unsigned seed, uint64_t off) {
        return (uint8_t)(off * 13 + (off >> 8) * 7 + seed * 0x3b + 1);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        const uint8_t *p = data;

        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n <= 0) {
                        close(fd);
                        return -EIO;
                }
                p += n;
                len -= n;
        }
        return close(fd) < 0 ? -errno : 0;
}

/* ---- ELF files: a header, PT_LOAD of the whole file, PT_NOTE with a 20-byte build-id ---- */

#define ELF_NOTE_OFF 0x100
#define ELF_DATA_OFF 0x200

/* size bytes of an x86-64 ELF file whose build-id is made from seed; malloc'ed. */
static uint8_t *make_elf(unsigned seed, size_t size, uint16_t type, uint64_t vaddr) {
        uint8_t *b = calloc(1, size);
        Elf64_Ehdr eh = {
                .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
                .e_type = type, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                .e_entry = vaddr + PAGE, .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
                .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2, .e_shentsize = sizeof(Elf64_Shdr),
        };
        Elf64_Phdr ph[2] = {
                { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0, .p_vaddr = vaddr, .p_paddr = vaddr,
                  .p_filesz = size, .p_memsz = size, .p_align = PAGE },
                { .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = ELF_NOTE_OFF, .p_vaddr = vaddr + ELF_NOTE_OFF,
                  .p_paddr = vaddr + ELF_NOTE_OFF, .p_filesz = 12 + 4 + 20, .p_memsz = 12 + 4 + 20, .p_align = 4 },
        };

        if (!b)
                abort();
        for (size_t i = ELF_DATA_OFF; i < size; i++)
                b[i] = file_byte(seed, i);
        memcpy(b, &eh, sizeof(eh));
        memcpy(b + sizeof(eh), ph, sizeof(ph));
        put32(b + ELF_NOTE_OFF, 4);
        put32(b + ELF_NOTE_OFF + 4, 20);
        put32(b + ELF_NOTE_OFF + 8, NT_GNU_BUILD_ID);
        memcpy(b + ELF_NOTE_OFF + 12, "GNU", 4);
        for (int i = 0; i < 20; i++)
                b[ELF_NOTE_OFF + 16 + i] = (uint8_t)(seed * 31 + i);
        return b;
}

static uint8_t *write_elf(const char *path, unsigned seed, size_t size, uint16_t type, uint64_t vaddr) {
        uint8_t *b = make_elf(seed, size, type, vaddr);

        if (write_file(path, b, size) < 0) {
                printf("Bail out! cannot write %s\n", path);
                exit(1);
        }
        return b;
}

/* ---- cores ---- */

struct seg {
        uint64_t vaddr, memsz, filesz;
        const uint8_t *data;            /* filesz bytes, or NULL for core_byte() */
};

struct map {
        uint64_t start, end, pgoff;
        const char *path;
};

struct core_spec {
        struct seg segs[32];
        size_t n_segs;
        struct map maps[32];
        size_t n_maps;
        uint64_t auxv[16];              /* pairs, AT_NULL added */
        size_t n_auxv;
        bool no_file_note;
};

static uint8_t notes[1 << 16];
static size_t notes_len;

static void note(uint32_t type, const void *desc, uint32_t descsz) {
        put32(notes + notes_len, 5);
        put32(notes + notes_len + 4, descsz);
        put32(notes + notes_len + 8, type);
        memcpy(notes + notes_len + 12, "CORE\0\0\0", 8);
        notes_len += 20;
        memcpy(notes + notes_len, desc, descsz);
        notes_len += (descsz + 3) & ~3u;
}

/* The core file's bytes (malloc'ed), *size set. */
static uint8_t *build_core(const struct core_spec *s, size_t *size) {
        uint8_t prstatus[336] = {}, file[8192] = {};
        uint64_t auxv[18];
        size_t phnum = 1 + s->n_segs, off, flen;
        uint8_t *b;

        notes_len = 0;
        prstatus[12] = 11;                              /* SIGSEGV */
        put32(prstatus + 32, 4242);
        note(NT_PRSTATUS, prstatus, sizeof(prstatus));
        memcpy(auxv, s->auxv, 2 * s->n_auxv * sizeof(uint64_t));
        auxv[2 * s->n_auxv] = AT_NULL;
        auxv[2 * s->n_auxv + 1] = 0;
        note(NT_AUXV, auxv, (2 * s->n_auxv + 2) * sizeof(uint64_t));
        if (!s->no_file_note) {
                put64(file, s->n_maps);
                put64(file + 8, PAGE);
                flen = 16 + 24 * s->n_maps;
                for (size_t i = 0; i < s->n_maps; i++) {
                        put64(file + 16 + 24 * i, s->maps[i].start);
                        put64(file + 24 + 24 * i, s->maps[i].end);
                        put64(file + 32 + 24 * i, s->maps[i].pgoff);
                }
                for (size_t i = 0; i < s->n_maps; i++) {
                        size_t l = strlen(s->maps[i].path) + 1;
                        memcpy(file + flen, s->maps[i].path, l);
                        flen += l;
                }
                note(NT_FILE, file, flen);
        }

        /* headers, notes, then each segment's bytes at a page boundary */
        off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr) + notes_len;
        *size = (off + PAGE - 1) & ~(size_t)(PAGE - 1);
        for (size_t i = 0; i < s->n_segs; i++)
                *size += (s->segs[i].filesz + PAGE - 1) & ~(size_t)(PAGE - 1);
        b = calloc(1, *size);
        if (!b)
                abort();

        Elf64_Ehdr eh = {
                .e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
                .e_type = ET_CORE, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
                .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
                .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = phnum,
        };
        Elf64_Phdr ph = {
                .p_type = PT_NOTE, .p_offset = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr),
                .p_filesz = notes_len,
        };

        memcpy(b, &eh, sizeof(eh));
        memcpy(b + sizeof(eh), &ph, sizeof(ph));
        memcpy(b + ph.p_offset, notes, notes_len);
        off = (off + PAGE - 1) & ~(size_t)(PAGE - 1);
        for (size_t i = 0; i < s->n_segs; i++) {
                const struct seg *g = &s->segs[i];

                ph = (Elf64_Phdr) {
                        .p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = off, .p_vaddr = g->vaddr,
                        .p_filesz = g->filesz, .p_memsz = g->memsz, .p_align = PAGE,
                };
                memcpy(b + sizeof(eh) + (1 + i) * sizeof(ph), &ph, sizeof(ph));
                for (uint64_t k = 0; k < g->filesz; k++)
                        b[off + k] = g->data ? g->data[k] : core_byte(g->vaddr + k);
                off += (g->filesz + PAGE - 1) & ~(size_t)(PAGE - 1);
        }
        return b;
}

static void add_seg(struct core_spec *s, uint64_t vaddr, uint64_t memsz, uint64_t filesz, const uint8_t *data) {
        s->segs[s->n_segs++] = (struct seg) { vaddr, memsz, filesz, data };
}

static void add_map(struct core_spec *s, uint64_t start, uint64_t end, uint64_t pgoff, const char *path) {
        s->maps[s->n_maps++] = (struct map) { start, end, pgoff, path };
}

/* Write a seekable zstd copy of b with frames of `frame` bytes. */
static int write_zst(const char *path, const uint8_t *b, size_t size, size_t frame) {
        struct zst_writer *w;
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r;

        if (fd < 0)
                return -errno;
        r = zst_writer_new(fd, 1, 1, frame, &w);
        if (r == 0) {
                /* uneven pieces */
                for (size_t off = 0; off < size && r == 0; off += 777)
                        r = zst_writer_write(w, b + off, MIN((size_t)777, size - off));
                if (r == 0)
                        r = zst_writer_finish(w, NULL);
                zst_writer_free(w);
        }
        close(fd);
        return r;
}

/* ---- the files of the main core ---- */

#define PROG_SIZE (3 * PAGE)
#define GAP_SIZE (4 * PAGE)
#define SHORT_SIZE (PAGE + PAGE / 2)

static uint8_t *prog, *libgap, *libbad_core, *libsearch, *libroot, *libshort, *libmixed;
static char execfn[PATH_MAX + 1];
static uint8_t execfn_page[PAGE];
static const char *search_path, *root_path;

static void make_files(void) {
        prog = write_elf(tmp("prog"), 1, PROG_SIZE, ET_EXEC, 0x400000);
        free(write_elf(tmp("prog-copy"), 1, PROG_SIZE, ET_EXEC, 0x400000));
        free(write_elf(tmp("prog-other"), 2, PROG_SIZE, ET_EXEC, 0x400000));
        if (symlink("prog", tmp("prog-link")) < 0 || write_file(tmp("notelf"), "#!/bin/sh\n", 10) < 0) {
                printf("Bail out! cannot write %s\n", tmpdir);
                exit(1);
        }
        libgap = write_elf(tmp("libgap.so"), 3, GAP_SIZE, ET_DYN, 0);
        libbad_core = make_elf(4, PAGE, ET_DYN, 0);     /* what the core recorded */
        free(write_elf(tmp("libbad.so"), 5, 2 * PAGE, ET_DYN, 0));
        libshort = write_elf(tmp("libshort.so"), 6, SHORT_SIZE, ET_DYN, 0);
        libmixed = write_elf(tmp("libmixed.so"), 11, 2 * PAGE, ET_DYN, 0);
        mkdir(tmp("search"), 0700);
        libsearch = write_elf(tmp("search/libsearch.so"), 7, 2 * PAGE, ET_DYN, 0);
        mkdir(tmp("root"), 0700);
        mkdir(tmp("root/pystack-test-root-only"), 0700);
        libroot = write_elf(tmp("root/pystack-test-root-only/libroot.so"), 8, 2 * PAGE, ET_DYN, 0);
        search_path = tmp("search");
        root_path = tmp("root");
        snprintf(execfn, sizeof(execfn), "%s", tmp("prog-link"));
        memcpy(execfn_page + 0x100, execfn, strlen(execfn) + 1);
}

#define HIGH (UINT64_MAX - 0xfff)       /* a segment of 0xfff bytes: it ends at UINT64_MAX, exclusive */

static void main_spec(struct core_spec *s) {
        memset(s, 0, sizeof(*s));
        add_seg(s, 0x400000, PAGE, PAGE, prog);
        add_seg(s, 0x401000, 2 * PAGE, 0, NULL);
        add_seg(s, 0x500000, PAGE, PAGE, NULL);
        add_seg(s, 0x501000, PAGE, PAGE, NULL);
        add_seg(s, 0x510000, PAGE, PAGE, execfn_page);
        add_seg(s, 0x600000, 2 * PAGE, PAGE, NULL);
        add_seg(s, 0x701000, PAGE, PAGE, NULL);                 /* libgap's page 1, as the process changed it */
        add_seg(s, 0x800000, PAGE, PAGE, libbad_core);
        add_seg(s, 0x801000, PAGE, 0, NULL);
        add_seg(s, 0x900000, 2 * PAGE, 0, NULL);
        add_seg(s, 0xa00000, PAGE, 0, NULL);
        add_seg(s, 0xb00000, PAGE, PAGE, libsearch);
        add_seg(s, 0xb01000, PAGE, 0, NULL);
        add_seg(s, 0xc00000, 2 * PAGE, 0, NULL);
        add_seg(s, 0xd01000, PAGE, PAGE, NULL);                 /* inside a larger mapping */
        add_seg(s, HIGH, 0xfff, 0xfff, NULL);

        add_map(s, 0x400000, 0x401000, 0, tmp("prog"));
        add_map(s, 0x401000, 0x403000, 1, tmp("prog"));
        add_map(s, 0x700000, 0x701000, 0, tmp("libgap.so"));
        add_map(s, 0x701000, 0x702000, 1, tmp("libgap.so"));
        add_map(s, 0x702000, 0x703000, 2, tmp("libgap.so"));
        add_map(s, 0x703000, 0x704000, 3, tmp("libgap.so"));
        add_map(s, 0x800000, 0x801000, 0, tmp("libbad.so"));
        add_map(s, 0x801000, 0x802000, 1, tmp("libbad.so"));
        add_map(s, 0x900000, 0x902000, 0, tmp("libshort.so"));
        add_map(s, 0xa00000, 0xa01000, 0, tmp("libmissing.so"));
        add_map(s, 0xb00000, 0xb01000, 0, "/nonexistent-pystack-test/libsearch.so");
        add_map(s, 0xb01000, 0xb02000, 1, "/nonexistent-pystack-test/libsearch.so");
        add_map(s, 0xc00000, 0xc02000, 0, "/pystack-test-root-only/libroot.so");
        add_map(s, 0xd00000, 0xd02000, 0, tmp("libmixed.so"));

        s->auxv[0] = AT_ENTRY;
        s->auxv[1] = 0x401000;
        s->auxv[2] = AT_EXECFN;
        s->auxv[3] = 0x510100;
        s->n_auxv = 2;
}

/* ---- checking reads ---- */

static uint8_t want[2 * PAGE + 64], got[2 * PAGE + 64];

static void want_core(size_t at, uint64_t addr, size_t len) {
        for (size_t i = 0; i < len; i++)
                want[at + i] = core_byte(addr + i);
}

static void want_from(size_t at, const uint8_t *file, uint64_t off, size_t len) {
        memcpy(want + at, file + off, len);
}

/* A read that must succeed with want[0..len). */
static void read_ok(struct target *t, const char *label, const char *what, uint64_t addr, size_t len) {
        int r;

        memset(got, 0xee, sizeof(got));
        r = target_read(t, addr, got, len);
        if (!tap_ok(r == 0 && memcmp(got, want, len) == 0, "%s: %s (%#llx, %zu bytes)", label, what,
                    (unsigned long long)addr, len)) {
                size_t i = 0;

                while (r == 0 && i < len && got[i] == want[i])
                        i++;
                printf("#   returned %d; first difference at byte %zu\n", r, i);
        }
}

static void read_fails(struct target *t, const char *label, const char *what, uint64_t addr, size_t len, int err) {
        int r = target_read(t, addr, got, len);

        if (!tap_ok(r == err, "%s: %s (%#llx, %zu bytes) is %s", label, what, (unsigned long long)addr, len,
                    err == -EFAULT ? "-EFAULT" : err == -E2BIG ? "-E2BIG" : "an error"))
                printf("#   returned %d\n", r);
}

static void reads(struct target *t, const char *label) {
        uint64_t v, w;

        /* anonymous memory */
        want_core(0, 0x500010, 64);
        read_ok(t, label, "inside a segment", 0x500010, 64);
        want_core(0, 0x500ff0, 32);
        read_ok(t, label, "across two adjacent segments", 0x500ff0, 32);
        want_core(0, 0x500000, 2 * PAGE);
        read_ok(t, label, "two whole segments", 0x500000, 2 * PAGE);
        want_core(0, 0x501ff8, 8);
        read_ok(t, label, "the last bytes of a segment", 0x501ff8, 8);
        read_fails(t, label, "a read past a segment's end", 0x501ffc, 8, -EFAULT);
        read_fails(t, label, "a read starting at a segment's end", 0x502000, 1, -EFAULT);
        read_fails(t, label, "a read in a hole", 0x503000, 8, -EFAULT);
        read_fails(t, label, "a read from a hole into a segment", 0x5ffff8, 16, -EFAULT);
        read_fails(t, label, "a read below every segment", 0x1000, 8, -EFAULT);
        want_core(0, 0x500008, 8);
        memcpy(&w, want, 8);
        tap_ok(target_read_u64(t, 0x500008, &v) == 0 && v == w, "%s: target_read_u64", label);
        tap_ok(target_read(t, 0x503000, got, 0) == 0, "%s: nothing to read in a hole: 0", label);

        /* p_filesz < p_memsz, no file mapped there: the undumped part is not there, not zeros */
        want_core(0, 0x600ff8, 8);
        read_ok(t, label, "the dumped part of a partial segment", 0x600ff8, 8);
        read_fails(t, label, "across the end of a partial segment's dumped part", 0x600ffc, 8, -EFAULT);
        read_fails(t, label, "the undumped part of a partial segment", 0x601000, 8, -EFAULT);
        read_fails(t, label, "the last byte of a partial segment", 0x601fff, 1, -EFAULT);

        /* the executable: first page from the core, the rest from the file */
        want_from(0, prog, 0, 64);
        read_ok(t, label, "the executable's dumped first page", 0x400000, 64);
        want_from(0, prog, PAGE, 64);
        read_ok(t, label, "the executable's undumped page, from the file", 0x401000, 64);
        want_from(0, prog, PAGE - 16, 32);
        read_ok(t, label, "from the core into the file", 0x400ff0, 32);
        want_from(0, prog, PAGE, 2 * PAGE);
        read_ok(t, label, "two undumped pages", 0x401000, 2 * PAGE);
        want_from(0, prog, PROG_SIZE - 8, 8);
        read_ok(t, label, "the executable's last bytes", 0x402ff8, 8);
        read_fails(t, label, "past the executable's mapping", 0x402ffc, 8, -EFAULT);

        /* a library with one dumped page: the core first, the file for the rest */
        want_from(0, libgap, 0, 16);
        read_ok(t, label, "a mapping without a segment, from the file", 0x700000, 16);
        want_core(0, 0x701000, 16);
        read_ok(t, label, "a dumped page of a file mapping: the core's bytes, not the file's", 0x701000, 16);
        want_core(0, 0x701ff8, 8);
        want_from(8, libgap, 2 * PAGE, 8);
        read_ok(t, label, "from a dumped page into an undumped mapping", 0x701ff8, 16);
        /* the core first even when the read began where the core has no segment at all */
        want_from(0, libgap, PAGE - 8, 8);
        want_core(8, 0x701000, 8);
        read_ok(t, label, "from a mapping without a segment into a dumped page: the core's bytes", 0x700ff8, 16);
        /* every byte is there: the read may cross from one mapping of the file to the next */
        want_from(0, libgap, 3 * PAGE - 8, 16);
        read_ok(t, label, "across two mappings without a segment", 0x702ff8, 16);
        want_from(0, libgap, 2 * PAGE, 2 * PAGE);
        read_ok(t, label, "two whole mappings without a segment", 0x702000, 2 * PAGE);
        read_fails(t, label, "past a library's last mapping", 0x703ffc, 8, -EFAULT);
        /* one mapping, of which the core has the second page only */
        want_from(0, libmixed, PAGE - 8, 8);
        want_core(8, 0xd01000, 8);
        read_ok(t, label, "from the file into a segment inside the same mapping: the core's bytes", 0xd00ff8, 16);

        /* a library whose file is another build: refused, its undumped bytes are not there */
        want_from(0, libbad_core, 0, 64);
        read_ok(t, label, "a refused library's dumped page", 0x800000, 64);
        read_fails(t, label, "a refused library's undumped page", 0x801000, 8, -EFAULT);
        read_fails(t, label, "from a refused library's dumped page into its undumped one", 0x800ff8, 16, -EFAULT);

        /* a file shorter than its mapping (SIGBUS in the process) */
        want_from(0, libshort, SHORT_SIZE - 8, 8);
        read_ok(t, label, "a short file's last bytes", 0x900000 + SHORT_SIZE - 8, 8);
        read_fails(t, label, "across a short file's end", 0x900000 + SHORT_SIZE - 4, 8, -EFAULT);
        read_fails(t, label, "past a short file's end", 0x900000 + SHORT_SIZE, 8, -EFAULT);

        read_fails(t, label, "a library missing from disk", 0xa00000, 8, -EFAULT);

        want_from(0, libsearch, PAGE, 32);
        read_ok(t, label, "a library found by --lib-search-path", 0xb01000, 32);
        want_from(0, libroot, PAGE + 16, 32);
        read_ok(t, label, "a library found under --lib-search-root", 0xc01010, 32);

        /* the top of the address space */
        want_core(0, HIGH, 16);
        read_ok(t, label, "the highest segment", HIGH, 16);
        want_core(0, UINT64_MAX - 8, 8);
        read_ok(t, label, "the highest segment's last bytes", UINT64_MAX - 8, 8);
        read_fails(t, label, "the last byte of the address space", UINT64_MAX, 1, -EFAULT);
        read_fails(t, label, "a read ending at 2^64", UINT64_MAX - 7, 8, -EFAULT);
        read_fails(t, label, "a read wrapping around 2^64", UINT64_MAX - 7, 16, -EFAULT);
        read_fails(t, label, "a read wrapping around into low memory", UINT64_MAX - 0xfff, 0x500020, -EFAULT);

        /* size limit: refused before any address is looked at */
        read_fails(t, label, "a read larger than TARGET_MAX_READ", 0x500000, (size_t)TARGET_MAX_READ + 1, -E2BIG);
        read_fails(t, label, "a huge read", 0x500000, SIZE_MAX, -E2BIG);
}

/* The same reads from a given offset of an undumped file page, twice: the image is opened once. */
static void caching(struct target *t, const char *label) {
        struct module *m = target_module_at(t, 0x701000);
        uint8_t first[64], again[64];
        struct elf_image *img;

        tap_ok(target_read(t, 0x700100, first, sizeof(first)) == 0 &&
               target_read(t, 0x700100, again, sizeof(again)) == 0 && memcmp(first, again, sizeof(first)) == 0,
               "%s: repeated reads return the same bytes", label);
        img = m ? target_module_image(t, m) : NULL;
        tap_ok(img && target_module_image(t, m) == img && m->state == 1, "%s: a module's image is opened once",
               label);
}

/* ---- the main core, raw and compressed ---- */

static void check_modules(struct target *t, const char *label) {
        struct module *exe = target_module_at(t, 0x400800);
        struct module *gap = target_module_at(t, 0x702800);
        struct module *bad = target_module_at(t, 0x800000);
        struct module *missing = target_module_at(t, 0xa00000);
        bool warned_bad = false, warned_missing = false;

        TAP_EQ_INT(t->n_modules, 8, "%s: one module per file", label);
        tap_ok(exe && t->exe == exe && exe->start == 0x400000 && exe->end == 0x403000 && exe->base == 0x400000,
               "%s: the executable is the module holding AT_ENTRY", label);
        tap_ok(gap && gap->start == 0x700000 && gap->end == 0x704000 && gap->base == 0x700000,
               "%s: a module spans all its mappings", label);
        tap_ok(target_module_at(t, 0x500000) == NULL && target_module_at(t, 0x704000) == NULL,
               "%s: anonymous memory and a module's end are in no module", label);
        tap_ok(t->exe_display && strcmp(t->exe_display, execfn) == 0,
               "%s: the executable shown is AT_EXECFN's path (%s)", label, t->exe_display ? t->exe_display : "NULL");
        TAP_EQ_INT(target_module_bias(t, exe), 0, "%s: an executable linked at its address has no bias", label);
        TAP_EQ_INT(target_module_bias(t, gap), 0x700000, "%s: a library's bias is its base", label);
        tap_ok(bad && target_module_image(t, bad) == NULL && bad->state == -EBADMSG,
               "%s: another build of a library is refused (-EBADMSG)", label);
        tap_ok(missing && target_module_image(t, missing) == NULL && missing->state == -ENOENT,
               "%s: a missing library is -ENOENT", label);
        for (size_t i = 0; i < t->warnings.n; i++) {
                warned_bad |= strstr(t->warnings.v[i], "libbad.so") && strstr(t->warnings.v[i], "build-id");
                warned_missing |= !!strstr(t->warnings.v[i], "libmissing.so");
        }
        tap_ok(warned_bad, "%s: the refused library is named in a warning", label);
        tap_ok(!warned_missing, "%s: a missing library is no warning (those are for refused ones)", label);
}

static void main_core(void) {
        struct core_spec s;
        struct target_options opts = { .lib_search_root = root_path };
        struct core_file *c = NULL;
        struct target *t = NULL;
        const char *err = "";
        uint8_t *b;
        size_t size;

        strv_addf(&opts.lib_search_paths, "%s", search_path);
        main_spec(&s);
        b = build_core(&s, &size);
        if (write_file(tmp("core"), b, size) < 0 || write_zst(tmp("core.zst"), b, size, 1000) < 0) {
                printf("Bail out! cannot write the cores\n");
                exit(1);
        }

        const char *core_paths[] = { tmp("core"), tmp("core.zst") };
        const char *labels[] = { "raw core", "zstd core" };
        for (size_t k = 0; k < 2; k++) {
                int r = core_file_open(core_paths[k], &c, &err);

                if (!tap_ok(r == 0, "%s: opens (%s)", labels[k], r ? err : "ok"))
                        continue;
                tap_ok(!c->truncated && c->n_segments == s.n_segs, "%s: every segment", labels[k]);
                tap_ok((c->src.view(c->src.ctx, 1, 0) != NULL) == (k == 0),
                       "%s: %s", labels[k], k == 0 ? "mapped" : "read through the seek table, never mapped");
                r = target_open(c, &opts, &t, &err);
                if (tap_ok(r == 0, "%s: target opens (%s)", labels[k], r ? err : "ok")) {
                        reads(t, labels[k]);
                        check_modules(t, labels[k]);
                        caching(t, labels[k]);
                }
                target_free(t);
                core_file_free(c);
                t = NULL;
                c = NULL;
        }

        /* a file replaced after first use: the image opened first keeps answering */
        if (core_file_open(tmp("core"), &c, &err) == 0 && target_open(c, &opts, &t, &err) == 0) {
                uint8_t before[32], after[32];
                uint8_t *other = make_elf(9, GAP_SIZE, ET_DYN, 0);
                bool read_before = target_read(t, 0x702000, before, sizeof(before)) == 0;

                unlink(tmp("libgap.so"));
                write_file(tmp("libgap.so"), other, GAP_SIZE);
                tap_ok(read_before && target_read(t, 0x702000, after, sizeof(after)) == 0 &&
                       memcmp(before, after, sizeof(before)) == 0 && memcmp(after, libgap + 2 * PAGE, 32) == 0,
                       "a file replaced on disk after first use: the same bytes as before");
                free(other);
                write_file(tmp("libgap.so"), libgap, GAP_SIZE);

                /* and a missing one, once looked for, stays missing (no second search) */
                bool missing = target_read(t, 0xa00000, before, 8) == -EFAULT;
                uint8_t *appears = make_elf(10, PAGE, ET_DYN, 0);
                write_file(tmp("libmissing.so"), appears, PAGE);
                tap_ok(missing && target_read(t, 0xa00000, before, 8) == -EFAULT,
                       "a library missing at first use is not looked for again");
                unlink(tmp("libmissing.so"));
                free(appears);
        } else
                tap_ok(0, "raw core reopens: %s", err);
        target_free(t);
        core_file_free(c);
        t = NULL;
        c = NULL;

        /* a fresh target finds a file that appeared since */
        if (core_file_open(tmp("core"), &c, &err) == 0 && target_open(c, &opts, &t, &err) == 0) {
                uint8_t *appears = make_elf(10, PAGE, ET_DYN, 0);
                uint8_t v[8];

                write_file(tmp("libmissing.so"), appears, PAGE);
                tap_ok(target_read(t, 0xa00000, v, 8) == 0 && memcmp(v, appears, 8) == 0,
                       "a library that appeared is found by the next target");
                unlink(tmp("libmissing.so"));
                free(appears);
        } else
                tap_ok(0, "raw core reopens: %s", err);
        target_free(t);
        core_file_free(c);
        t = NULL;
        c = NULL;

        /* a core cut short in the middle of a segment: what is there reads, the rest does not */
        size_t cut = 0;
        for (size_t i = 0; i < s.n_segs; i++) {
                Elf64_Phdr ph;
                memcpy(&ph, b + sizeof(Elf64_Ehdr) + (1 + i) * sizeof(ph), sizeof(ph));
                if (ph.p_vaddr == 0x501000)
                        cut = ph.p_offset + 0x800;
        }
        if (write_file(tmp("core-cut"), b, cut) == 0 && write_zst(tmp("core-cut.zst"), b, cut, 4096) == 0) {
                const char *cut_paths[] = { tmp("core-cut"), tmp("core-cut.zst") };
                const char *cut_labels[] = { "truncated raw core", "truncated zstd core" };

                for (size_t k = 0; k < 2; k++) {
                        if (core_file_open(cut_paths[k], &c, &err) < 0 || target_open(c, &opts, &t, &err) < 0) {
                                tap_ok(0, "%s opens: %s", cut_labels[k], err);
                                target_free(t);
                                core_file_free(c);
                                t = NULL;
                                c = NULL;
                                continue;
                        }
                        tap_ok(c->truncated, "%s: known to be truncated", cut_labels[k]);
                        want_core(0, 0x501000, 0x800);
                        read_ok(t, cut_labels[k], "what was written of the cut segment", 0x501000, 0x800);
                        read_fails(t, cut_labels[k], "across the cut", 0x5017f8, 16, -EFAULT);
                        read_fails(t, cut_labels[k], "after the cut", 0x501800, 8, -EFAULT);
                        read_fails(t, cut_labels[k], "a segment wholly after the cut", HIGH, 8, -EFAULT);
                        want_from(0, prog, PAGE, 16);
                        read_ok(t, cut_labels[k], "file-backed memory still reads", 0x401000, 16);
                        target_free(t);
                        core_file_free(c);
                        t = NULL;
                        c = NULL;
                }
        } else
                tap_ok(0, "truncated cores written");
        free(b);
        strv_clear(&opts.lib_search_paths);
}

/* ---- target_open's outcomes ---- */

static int open_spec(const struct core_spec *s, const struct target_options *opts, struct core_file **c,
                     struct target **t, const char **err) {
        size_t size;
        uint8_t *b = build_core(s, &size);
        int r = write_file(tmp("core-open"), b, size);

        free(b);
        *c = NULL;
        *t = NULL;
        if (r == 0)
                r = core_file_open(tmp("core-open"), c, err);
        if (r < 0) {
                *err = "the test's core does not open";
                return -1000;
        }
        return target_open(*c, opts, t, err);
}

/* Whether one of the target's warnings says what. */
static bool warned(const struct target *t, const char *what) {
        for (size_t i = 0; i < t->warnings.n; i++)
                if (strstr(t->warnings.v[i], what))
                        return true;
        return false;
}

static void close_target(struct core_file **c, struct target **t) {
        target_free(*t);
        core_file_free(*c);
        *t = NULL;
        *c = NULL;
}

static void opening(void) {
        struct core_spec s;
        struct target_options opts = {};
        struct core_file *c;
        struct target *t;
        const char *err = "";
        int r;
        uint8_t v[16];

        /* no NT_FILE (qemu-user's cores): the executable is AT_EXECFN's, its extent and its undumped
         * pages come from its own program headers, and a warning says so */
        main_spec(&s);
        s.no_file_note = true;
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == 0 && t->exe && strcmp(t->exe->path, tmp("prog-link")) == 0 && t->n_modules == 1 &&
               warned(t, "NT_FILE"), "no NT_FILE note: the executable is AT_EXECFN's, with a warning (%d, %s)",
               r, err);
        if (r == 0) {
                want_core(0, 0x500000, 16);
                read_ok(t, "no NT_FILE", "anonymous memory", 0x500000, 16);
                want_from(0, prog, PAGE, 16);
                read_ok(t, "no NT_FILE", "undumped pages from the executable", 0x401000, 16);
        }
        close_target(&c, &t);

        /* ... or the one given */
        opts.executable = tmp("prog-copy");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == 0 && t->exe && strcmp(t->exe->path, tmp("prog-copy")) == 0,
               "no NT_FILE note, an executable given: it is used (%d, %s)", r, err);
        close_target(&c, &t);
        opts.executable = NULL;

        /* ... and none at all when AT_EXECFN is unreadable and there is no command line */
        s.auxv[3] = 0x503000;
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == -ENOENT && strstr(err, "names no executable"),
               "no NT_FILE note, no AT_EXECFN: -ENOENT (%d, %s)", r, err);
        close_target(&c, &t);

        /* the executable named in the core is not on disk */
        main_spec(&s);
        s.maps[0].path = s.maps[1].path = tmp("absent-prog");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == -ENOENT && strstr(err, "absent-prog") && strstr(err, "not found"),
               "executable not found: -ENOENT (%d, %s)", r, err);
        close_target(&c, &t);

        /* another build of it */
        main_spec(&s);
        s.maps[0].path = s.maps[1].path = tmp("prog-other");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == -EBADMSG && strstr(err, "build-id"), "executable of another build: -EBADMSG (%d, %s)", r, err);
        close_target(&c, &t);

        /* not an ELF file at all */
        main_spec(&s);
        s.maps[0].path = s.maps[1].path = tmp("notelf");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok((r == -EBADMSG || r == -ENOEXEC) && strstr(err, "not an ELF executable of the core's architecture"),
               "executable not an ELF file: refused (%d, %s)", r, err);
        close_target(&c, &t);

        /* given on the command line: used when its build-id matches, refused when not */
        main_spec(&s);
        opts.executable = tmp("prog-copy");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == 0 && t->exe_display && strcmp(t->exe_display, tmp("prog-copy")) == 0,
               "an executable given with the same build-id: used (%d)", r);
        if (r == 0) {
                want_from(0, prog, PAGE, 16);
                read_ok(t, "given executable", "undumped pages from it", 0x401000, 16);
                tap_ok(t->exe->image && strcmp(elf_image_path(t->exe->image), tmp("prog-copy")) == 0,
                       "given executable: its image is the given file");
        }
        close_target(&c, &t);
        opts.executable = tmp("prog-other");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == -EBADMSG && strstr(err, "prog-other"), "an executable given of another build: -EBADMSG (%d, %s)",
               r, err);
        close_target(&c, &t);
        opts.executable = tmp("absent-prog");
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == -ENOENT, "an executable given that does not exist: -ENOENT (%d, %s)", r, err);
        close_target(&c, &t);
        opts.executable = NULL;

        /* AT_EXECFN pointing nowhere: the path from NT_FILE is shown */
        main_spec(&s);
        s.auxv[3] = 0x503000;
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == 0 && t->exe_display && strcmp(t->exe_display, tmp("prog")) == 0,
               "AT_EXECFN unreadable: the executable's own path is shown");
        close_target(&c, &t);

        /* no AT_ENTRY: the first mapping is the executable */
        main_spec(&s);
        s.auxv[0] = AT_PHDR;
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == 0 && t->exe == &t->modules[0] && strcmp(t->exe->path, tmp("prog")) == 0,
               "no AT_ENTRY: the first mapping is the executable");
        if (r == 0)
                tap_ok(target_read(t, 0x401000, v, 16) == 0 && memcmp(v, prog + PAGE, 16) == 0,
                       "no AT_ENTRY: its undumped pages read");
        close_target(&c, &t);

        /* two files behind one name (a path renamed over while mapped, then mapped again; both
         * deleted since): a module each, from its own offset-0 mapping, so that each is found by the
         * address of its first mapping (--binary=0xADDR) and its own build-id page */
        main_spec(&s);
        for (uint64_t at = 0xe00000; at < 0xe04000; at += PAGE)
                add_map(&s, at, at + PAGE, (at - 0xe00000) / PAGE % 2, "/gone/libtwice.so (deleted)");
        r = open_spec(&s, &opts, &c, &t, &err);
        if (r == 0) {
                struct module *one = target_module_at(t, 0xe01800), *two = target_module_at(t, 0xe02800);

                tap_ok(t->n_modules == 10 && one && two && one != two && one->start == 0xe00000 &&
                       one->end == 0xe02000 && two->start == 0xe02000 && two->end == 0xe04000 && two->base == 0xe02000,
                       "two files under one name: two modules (%zu modules)", t->n_modules);
        } else
                tap_ok(false, "two files under one name: opens (%d, %s)", r, err);
        close_target(&c, &t);

        /* the executable's first page not dumped: no build-id to check against, the file is used */
        main_spec(&s);
        s.segs[0].filesz = 0;
        r = open_spec(&s, &opts, &c, &t, &err);
        tap_ok(r == 0 && target_read(t, 0x400000, v, 16) == 0 && memcmp(v, prog, 16) == 0,
               "no build-id in the core: the named file is used, first page included");
        close_target(&c, &t);
}

int main(void) {
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        make_files();
        main_core();
        opening();

        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmpdir);
        free(prog);
        free(libgap);
        free(libbad_core);
        free(libsearch);
        free(libroot);
        free(libshort);
        free(libmixed);
        free_paths();
        return tap_done();
}
