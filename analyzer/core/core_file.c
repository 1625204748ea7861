/* SPDX-License-Identifier: MIT */
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core_file.h"
#include "util.h"
#include "zst_seekable.h"

/* ---- raw file byte source: the core is mapped, reads are copies ---- */

struct raw_source {
        const uint8_t *map;
        uint64_t size;
};

static int raw_pread(void *ctx, void *buf, size_t len, uint64_t off) {
        struct raw_source *r = ctx;

        if (!range_ok(off, len, r->size))
                return -EIO;
        memcpy(buf, r->map + off, len);
        return 0;
}

static const void *raw_view(void *ctx, size_t len, uint64_t off) {
        struct raw_source *r = ctx;

        return range_ok(off, len, r->size) ? r->map + off : NULL;
}

static void raw_close(void *ctx) {
        struct raw_source *r = ctx;

        if (r->map && r->size)
                munmap((void *)r->map, r->size);
        free(r);
}

/* ---- seekable zstd byte source: reads decompress only the frames they touch ---- */

static int zst_source_pread(void *ctx, void *buf, size_t len, uint64_t off) {
        return zst_reader_pread(ctx, buf, len, off);
}

/* Nothing to map: every consumer must go through pread. */
static const void *zst_source_view(void *ctx, size_t len, uint64_t off) {
        return NULL;
}

static void zst_source_close(void *ctx) {
        zst_reader_free(ctx);
}

static int zst_source_open(int fd, uint64_t file_size, struct byte_source *src, const char **error) {
        struct zst_reader *z;
        uint8_t tail[4];
        int r;

        r = zst_reader_open(fd, &z);
        if (r == -ENOMEM)
                return *error = "out of memory", r;
        if (r == -EBADMSG) {
                /* only the seekable magic at the very end tells a damaged table from none at all */
                static const uint8_t seekable_magic[4] = { 0xB1, 0xEA, 0x92, 0x8F };

                if (file_size >= 4 && pread(fd, tail, 4, file_size - 4) == 4 &&
                    memcmp(tail, seekable_magic, 4) == 0)
                        return *error = "a seekable zstd file with a corrupt seek table", r;
                return *error = "a zstd file without a seek table: decompress it first (zstd -d)", r;
        }
        if (r < 0)
                return *error = "cannot read the zstd file", r;
        /*
         * The ELF header is the first thing read, and a failed read there would be reported as
         * "not an ELF file": decode the first frame now (it stays cached) to name the real cause.
         */
        if (zst_reader_size(z) > 0 && (r = zst_reader_pread(z, tail, 1, 0)) < 0) {
                zst_reader_free(z);
                return *error = r == -ENOMEM ? "out of memory" : "a corrupt frame in the zstd file", r;
        }
        *src = (struct byte_source) {
                .size = zst_reader_size(z), .pread = zst_source_pread, .view = zst_source_view,
                .close = zst_source_close, .ctx = z,
        };
        return 0;
}

/* A raw core is mapped; a zstd one (by its magic) is read through the seek table. */
/* "/dev/fd/N": pystackd hands a sandboxed analyzer its core as an inherited descriptor */
static int open_core_path(const char *path) {
        return open_path_or_fd(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);   /* a FIFO must not stall us */
}

static int raw_source_open(const char *path, struct byte_source *src, const char **error) {
        _cleanup_close_ int fd = -1;
        struct raw_source *r;
        struct stat st;
        void *map = NULL;
        uint8_t head[4];

        fd = open_core_path(path);
        if (fd < 0) {
                *error = errno == ENOENT ? "no such file" :
                         errno == EBADF ? "no such open file descriptor" :
                         errno == EACCES ? "permission denied" : "cannot open file";
                return -errno;
        }
        if (fstat(fd, &st) < 0)
                return *error = "cannot stat file", -errno;
        if (S_ISDIR(st.st_mode))
                return *error = "is a directory", -EISDIR;
        if (!S_ISREG(st.st_mode))
                return *error = "not a regular file", -ENOEXEC;
        if (st.st_size >= (off_t)sizeof(head) && pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
            zst_is_zstd(head, sizeof(head)))
                return zst_source_open(fd, st.st_size, src, error);     /* the reader keeps its own fd */
        if (st.st_size > 0) {
                map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (map == MAP_FAILED)
                        return *error = "cannot map file", -errno;
        }
        r = calloc(1, sizeof(*r));
        if (!r) {
                if (map)
                        munmap(map, st.st_size);
                return *error = "out of memory", -ENOMEM;
        }
        r->map = map;
        r->size = st.st_size;
        *src = (struct byte_source) {
                .size = r->size, .pread = raw_pread, .view = raw_view, .close = raw_close, .ctx = r,
        };
        return 0;
}

/* ---- architectures ---- */

const struct core_arch core_arch_x86_64 = {
        .machine = EM_X86_64, .name = "x86-64",
        .prstatus_size = 336, .n_regs = CORE_REG_COUNT,
        .pc_reg = CORE_REG_RIP, .sp_reg = CORE_REG_RSP, .dwarf_sp = 7, .tp_reg = CORE_REG_FS_BASE,
        /* the thread pointer is struct pthread itself, whose tcbhead_t (704 bytes) comes first */
        .pthread_from_tp = 0, .pthread_tid = 0x2d0,
        .red_zone = 128,
};

const struct core_arch core_arch_aarch64 = {
        .machine = EM_AARCH64, .name = "aarch64",
        .prstatus_size = 392, .n_regs = 34,
        .pc_reg = CORE_A64_PC, .sp_reg = CORE_A64_SP, .dwarf_sp = 31, .tp_reg = -1,
        /* TLS variant I: tpidr_el0 points just past struct pthread (1856 bytes in glibc 2.34+), whose
         * 192-byte header and list head come before the tid */
        .pthread_from_tp = -0x740, .pthread_tid = 0xd0,
        .red_zone = 0,
};

const struct core_arch *core_arch_of(uint16_t machine) {
        return machine == EM_X86_64 ? &core_arch_x86_64 : machine == EM_AARCH64 ? &core_arch_aarch64 : NULL;
}

const char *core_machine_name(uint16_t machine, bool big_endian, bool is64) {
        static char other[32];

        switch (machine) {
        case EM_X86_64:
                return is64 ? "x86-64" : "x32";
        case EM_AARCH64:
                return big_endian ? "aarch64 big-endian" : is64 ? "aarch64" : "aarch64 ILP32";
        case EM_386:
                return "i386";
        case EM_ARM:
                return "32-bit arm";
        case EM_RISCV:
                return is64 ? "riscv64" : "riscv32";
        case EM_PPC64:
                return big_endian ? "ppc64" : "ppc64le";
        case EM_PPC:
                return "ppc";
        case EM_S390:
                return is64 ? "s390x" : "s390";
        case EM_MIPS:
                return is64 ? "mips64" : "mips";
        case EM_SPARCV9:
                return "sparc64";
#ifdef EM_LOONGARCH
        case EM_LOONGARCH:
                return "loongarch64";
#endif
        }
        snprintf(other, sizeof(other), "ELF machine %u", (unsigned)machine);
        return other;
}

/* ---- notes ---- */

/* Offsets in the kernel's structures (include/uapi/linux/elfcore.h), the same on both
 * architectures up to pr_reg; NT_PRSTATUS's size is the architecture's. */
#define PRSTATUS_CURSIG         12
#define PRSTATUS_PID            32
#define PRSTATUS_REG            112
#define PRPSINFO_SIZE           136
#define SIGINFO_SIZE            128

#ifndef NT_ARM_TLS
#define NT_ARM_TLS              0x401
#endif
#ifndef NT_ARM_PAC_MASK
#define NT_ARM_PAC_MASK         0x406
#endif

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

void core_thread_set_regs(const struct core_arch *a, struct core_thread *t, const uint64_t *pr_reg) {
        memset(t->regs, 0, sizeof(t->regs));
        memcpy(t->regs, pr_reg, a->n_regs * sizeof(*pr_reg));
        t->pc = t->regs[a->pc_reg];
        t->sp = t->regs[a->sp_reg];
        t->tp = a->tp_reg >= 0 ? t->regs[a->tp_reg] : 0;
}

static int parse_prstatus(struct core_file *c, const uint8_t *d, size_t n, size_t *allocated) {
        const struct core_arch *a = c->arch;
        struct core_thread *t;
        uint64_t pr_reg[CORE_MAX_REGS];

        if (n < a->prstatus_size)
                return -EBADMSG;
        if (c->n_threads >= CORE_MAX_THREADS)
                return -EBADMSG;
        if (grow_array(&c->threads, allocated, c->n_threads + 1, sizeof(*c->threads)) < 0)
                return -ENOMEM;
        t = &c->threads[c->n_threads++];
        int16_t cursig;
        memcpy(&cursig, d + PRSTATUS_CURSIG, 2);
        t->cursig = cursig;
        t->tid = (int32_t)rd32(d + PRSTATUS_PID);
        memcpy(pr_reg, d + PRSTATUS_REG, a->n_regs * sizeof(*pr_reg));
        core_thread_set_regs(a, t, pr_reg);
        return 0;
}

/* aarch64's per-thread notes follow that thread's NT_PRSTATUS. */
static void parse_arm_tls(struct core_file *c, const uint8_t *d, size_t n) {
        /* 8 bytes: tpidr_el0; newer kernels add tpidr2 (SME) after it */
        if (c->arch->machine == EM_AARCH64 && n >= 8 && c->n_threads > 0)
                c->threads[c->n_threads - 1].tp = rd64(d);
}

static void parse_arm_pac_mask(struct core_file *c, const uint8_t *d, size_t n) {
        /* struct user_pac_mask { data_mask, insn_mask }: return addresses are instructions'.  A mask
         * that would clear the low 32 bits of an address is not one the kernel makes: ignored. */
        if (c->arch->machine == EM_AARCH64 && n >= 16 && !c->pac_insn_mask && !(rd64(d + 8) & 0xffffffffu))
                c->pac_insn_mask = rd64(d + 8);
}

static void parse_prpsinfo(struct core_file *c, const uint8_t *d, size_t n) {
        struct core_process *p = &c->process;

        if (n < PRPSINFO_SIZE)
                return;
        p->present = true;
        p->state = (char)d[1];
        p->zombie = d[2] != 0;
        p->nice = (int8_t)d[3];
        p->uid = rd32(d + 16);
        p->gid = rd32(d + 20);
        p->pid = (int32_t)rd32(d + 24);
        p->ppid = (int32_t)rd32(d + 28);
        p->pgrp = (int32_t)rd32(d + 32);
        p->sid = (int32_t)rd32(d + 36);
        memcpy(p->fname, d + 40, 16);
        p->fname[16] = 0;
        memcpy(p->psargs, d + 56, 80);
        p->psargs[80] = 0;
}

static void parse_siginfo(struct core_file *c, const uint8_t *d, size_t n) {
        struct core_signal *s = &c->signal;

        if (n < SIGINFO_SIZE)
                return;
        s->present = true;
        s->signo = (int32_t)rd32(d);
        s->err = (int32_t)rd32(d + 4);
        s->code = (int32_t)rd32(d + 8);
        s->addr = rd64(d + 16);
        s->pid = (int32_t)rd32(d + 16);
        s->uid = rd32(d + 20);
}

static int parse_auxv(struct core_file *c, const uint8_t *d, size_t n) {
        size_t pairs = n / 16;

        if (c->auxv)
                return 0;       /* only the first counts */
        c->auxv = malloc(MAX(pairs, (size_t)1) * 16);
        if (!c->auxv)
                return -ENOMEM;
        memcpy(c->auxv, d, pairs * 16);
        c->n_auxv = pairs;
        return 0;
}

/*
 * NT_FILE: count, page size, count × {start, end, page offset}, then count
 * NUL-terminated names.  The names are left in place (the notes buffer is
 * owned by the core) after checking each one ends inside the note.
 */
static int parse_file_note(struct core_file *c, const uint8_t *d, size_t n) {
        uint64_t count, page;
        const uint8_t *names, *end = d + n;

        if (c->mappings)
                return 0;
        if (n < 16)
                return -EBADMSG;
        count = rd64(d);
        page = rd64(d + 8);
        if (count > CORE_MAX_MAPPINGS || count > (n - 16) / 24)
                return -EBADMSG;
        if (page == 0 || page > (1u << 30) || (page & (page - 1)))
                return -EBADMSG;
        c->mappings = calloc(MAX(count, (uint64_t)1), sizeof(*c->mappings));
        if (!c->mappings)
                return -ENOMEM;
        names = d + 16 + count * 24;
        for (uint64_t i = 0; i < count; i++) {
                const uint8_t *e = d + 16 + i * 24;
                const uint8_t *nul = memchr(names, 0, end - names);
                struct core_mapping *m = &c->mappings[i];

                if (!nul)
                        return -EBADMSG;
                m->start = rd64(e);
                m->end = rd64(e + 8);
                if (rd64(e + 16) > UINT64_MAX / page || m->end < m->start)
                        return -EBADMSG;
                m->file_offset = rd64(e + 16) * page;
                m->path = (const char *)names;
                names = nul + 1;
        }
        c->n_mappings = count;
        c->page_size = page;
        return 0;
}

int core_parse_notes(struct core_file *c, const uint8_t *notes, size_t size, const char **error) {
        size_t off = 0, threads_allocated = 0;
        int r;

        if (!c->arch)
                c->arch = &core_arch_x86_64;
        while (off < size) {
                uint32_t namesz, descsz, type;
                size_t name_off, desc_off, next;

                if (size - off < 12)
                        return *error = "truncated note header", -EBADMSG;
                namesz = rd32(notes + off);
                descsz = rd32(notes + off + 4);
                type = rd32(notes + off + 8);
                name_off = off + 12;
                /* sizes are 32-bit, so these sums cannot overflow a 64-bit size_t */
                desc_off = name_off + (((size_t)namesz + 3) & ~(size_t)3);
                next = desc_off + (((size_t)descsz + 3) & ~(size_t)3);
                if (desc_off > size || descsz > size - desc_off)
                        return *error = "note runs past the end of the notes", -EBADMSG;

                const uint8_t *desc = notes + desc_off;
                bool core_name = namesz == 5 && memcmp(notes + name_off, "CORE", 5) == 0;

                if (core_name) {
                        switch (type) {
                        case NT_PRSTATUS:
                                r = parse_prstatus(c, desc, descsz, &threads_allocated);
                                if (r == -ENOMEM)
                                        return *error = "out of memory", r;
                                if (r < 0)
                                        return *error = "bad NT_PRSTATUS note", r;
                                break;
                        case NT_PRPSINFO:
                                parse_prpsinfo(c, desc, descsz);
                                break;
                        case NT_SIGINFO:
                                parse_siginfo(c, desc, descsz);
                                break;
                        case NT_AUXV:
                                if (parse_auxv(c, desc, descsz) < 0)
                                        return *error = "out of memory", -ENOMEM;
                                break;
                        case NT_FILE:
                                r = parse_file_note(c, desc, descsz);
                                if (r == -ENOMEM)
                                        return *error = "out of memory", r;
                                if (r < 0)
                                        return *error = "bad NT_FILE note", r;
                                break;
                        }
                } else if (namesz == 6 && memcmp(notes + name_off, "LINUX", 6) == 0) {
                        if (type == NT_ARM_TLS)
                                parse_arm_tls(c, desc, descsz);
                        else if (type == NT_ARM_PAC_MASK)
                                parse_arm_pac_mask(c, desc, descsz);
                }
                off = MIN(next, size);
        }
        if (c->n_threads == 0)
                return *error = "no threads (NT_PRSTATUS) in the core", -EBADMSG;
        return 0;
}

/* ---- program headers ---- */

static int cmp_segment(const void *a, const void *b) {
        const struct core_segment *x = a, *y = b;

        return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* e_type and e_machine sit at 16 and 18 in either class, in the file's byte order. */
static int check_machine(struct core_file *c, const char **error) {
        static char msg[128];
        uint8_t head[20];
        bool big, is64;
        uint16_t type, machine;

        if (c->src.size < sizeof(head) || c->src.pread(c->src.ctx, head, sizeof(head), 0) < 0)
                return *error = "not an ELF file (too short)", -ENOEXEC;
        if (memcmp(head, ELFMAG, SELFMAG) != 0)
                return *error = "not an ELF file", -ENOEXEC;
        if ((head[EI_CLASS] != ELFCLASS32 && head[EI_CLASS] != ELFCLASS64) ||
            (head[EI_DATA] != ELFDATA2LSB && head[EI_DATA] != ELFDATA2MSB))
                return *error = "not an ELF file (unknown class or byte order)", -ENOEXEC;
        big = head[EI_DATA] == ELFDATA2MSB;
        is64 = head[EI_CLASS] == ELFCLASS64;
        type = big ? (uint16_t)(head[16] << 8 | head[17]) : (uint16_t)(head[17] << 8 | head[16]);
        machine = big ? (uint16_t)(head[18] << 8 | head[19]) : (uint16_t)(head[19] << 8 | head[18]);
        if (type != ET_CORE)
                return *error = "an ELF file but not a core dump", -ENOEXEC;
        c->arch = is64 && !big ? core_arch_of(machine) : NULL;
        if (!c->arch) {
                snprintf(msg, sizeof(msg), "a core of another architecture (%s): pystack reads x86-64 and aarch64 cores",
                         core_machine_name(machine, big, is64));
                return *error = msg, -ENOEXEC;
        }
        return 0;
}

static int read_headers(struct core_file *c, const char **error) {
        Elf64_Ehdr eh;
        uint64_t notes_total = 0;
        int r;

        r = check_machine(c, error);
        if (r < 0)
                return r;
        if (c->src.pread(c->src.ctx, &eh, sizeof(eh), 0) < 0)
                return *error = "truncated ELF header", -EBADMSG;
        if (eh.e_phentsize != sizeof(Elf64_Phdr))
                return *error = "corrupt program header size", -EBADMSG;

        /* e_phnum == PN_XNUM: the real count is in section 0's sh_info (many mappings) */
        uint64_t phnum = eh.e_phnum;
        if (phnum == PN_XNUM) {
                Elf64_Shdr sh;
                if (eh.e_shoff == 0 || c->src.pread(c->src.ctx, &sh, sizeof(sh), eh.e_shoff) < 0)
                        return *error = "truncated section header", -EBADMSG;
                phnum = sh.sh_info;
        }
        if (phnum == 0 || phnum > CORE_MAX_SEGMENTS)
                return *error = "corrupt program header count", -EBADMSG;
        if (!range_ok(eh.e_phoff, phnum * sizeof(Elf64_Phdr), c->src.size))
                return *error = "truncated program headers", -EBADMSG;

        _cleanup_free_ Elf64_Phdr *ph = malloc(phnum * sizeof(Elf64_Phdr));
        if (!ph)
                return *error = "out of memory", -ENOMEM;
        if (c->src.pread(c->src.ctx, ph, phnum * sizeof(Elf64_Phdr), eh.e_phoff) < 0)
                return *error = "truncated program headers", -EBADMSG;

        c->segments = calloc(phnum, sizeof(*c->segments));
        if (!c->segments)
                return *error = "out of memory", -ENOMEM;

        for (uint64_t i = 0; i < phnum; i++) {
                if (ph[i].p_type == PT_NOTE) {
                        if (ph[i].p_filesz > CORE_MAX_NOTES_SIZE - notes_total)
                                return *error = "notes too large", -EBADMSG;
                        notes_total += ph[i].p_filesz;
                } else if (ph[i].p_type == PT_LOAD) {
                        struct core_segment *s = &c->segments[c->n_segments++];

                        if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_vaddr + ph[i].p_memsz < ph[i].p_vaddr)
                                return *error = "corrupt memory segment", -EBADMSG;
                        *s = (struct core_segment) {
                                .vaddr = ph[i].p_vaddr, .memsz = ph[i].p_memsz,
                                .offset = ph[i].p_offset, .filesz = ph[i].p_filesz,
                                .flags = ph[i].p_flags,
                        };
                        if (s->offset + s->filesz >= s->offset)
                                c->expected_size = MAX(c->expected_size, s->offset + s->filesz);
                        /* a core cut short keeps what it has: the rest reads as not dumped */
                        if (!range_ok(s->offset, s->filesz, c->src.size)) {
                                s->filesz = s->offset < c->src.size ? c->src.size - s->offset : 0;
                                c->truncated = true;
                        }
                }
        }
        if (notes_total == 0)
                return *error = "no notes in the core", -EBADMSG;

        qsort(c->segments, c->n_segments, sizeof(*c->segments), cmp_segment);
        for (size_t i = 1; i < c->n_segments; i++)
                if (c->segments[i].vaddr < c->segments[i - 1].vaddr + c->segments[i - 1].memsz)
                        return *error = "overlapping memory segments", -EBADMSG;

        c->notes = malloc(notes_total);
        if (!c->notes)
                return *error = "out of memory", -ENOMEM;
        for (uint64_t i = 0; i < phnum; i++) {
                if (ph[i].p_type != PT_NOTE)
                        continue;
                if (!range_ok(ph[i].p_offset, ph[i].p_filesz, c->src.size) ||
                    c->src.pread(c->src.ctx, c->notes + c->notes_size, ph[i].p_filesz, ph[i].p_offset) < 0)
                        return *error = "truncated notes", -EBADMSG;
                c->notes_size += ph[i].p_filesz;
        }
        r = core_parse_notes(c, c->notes, c->notes_size, error);
        return r;
}

int core_file_open(const char *path, struct core_file **ret, const char **error) {
        struct core_file *c;
        const char *dummy;
        int r;

        if (!error)
                error = &dummy;
        c = calloc(1, sizeof(*c));
        if (!c)
                return *error = "out of memory", -ENOMEM;
        r = raw_source_open(path, &c->src, error);
        if (r < 0) {
                free(c);
                return r;
        }
        r = read_headers(c, error);
        if (r < 0) {
                core_file_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void core_file_free(struct core_file *c) {
        if (!c)
                return;
        if (c->src.close)
                c->src.close(c->src.ctx);
        free(c->threads);
        free(c->auxv);
        free(c->segments);
        free(c->mappings);
        free(c->notes);
        free(c);
}

uint64_t core_auxv(const struct core_file *c, uint64_t key) {
        for (size_t i = 0; i < c->n_auxv; i++)
                if (c->auxv[2 * i] == key)
                        return c->auxv[2 * i + 1];
        return 0;
}

const struct core_thread *core_crashed_thread(const struct core_file *c) {
        if (c->live_pid)
                return NULL;
        for (size_t i = 0; i < c->n_threads; i++)
                if (c->threads[i].cursig != 0)
                        return &c->threads[i];
        return c->n_threads ? &c->threads[0] : NULL;
}

const struct core_mapping *core_mapping_at(const struct core_file *c, uint64_t addr) {
        for (size_t i = 0; i < c->n_mappings; i++)
                if (addr >= c->mappings[i].start && addr < c->mappings[i].end)
                        return &c->mappings[i];
        return NULL;
}

const char *signal_name(int signo) {
        static const char *const names[] = {
                [SIGHUP] = "SIGHUP", [SIGINT] = "SIGINT", [SIGQUIT] = "SIGQUIT",
                [SIGILL] = "SIGILL", [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",
                [SIGBUS] = "SIGBUS", [SIGFPE] = "SIGFPE", [SIGKILL] = "SIGKILL",
                [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
                [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
                [SIGSTKFLT] = "SIGSTKFLT", [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",
                [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",
                [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG", [SIGXCPU] = "SIGXCPU",
                [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
                [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR",
                [SIGSYS] = "SIGSYS",
        };

        if (signo <= 0 || (size_t)signo >= ELEMENTSOF(names))
                return NULL;
        return names[signo];
}
