/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * elf_image: an ELF executable or shared library on disk (libelf), opened
 * to supply what a core leaves out: symbols, sections, the build-id, and the
 * bytes of read-only segments the kernel did not dump.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_image;

#include "build_id.h"
#include "json.h"

/* Open path; -errno (-ENOEXEC when not a 64-bit little-endian x86-64 or aarch64 ELF). */
int elf_image_open(const char *path, struct elf_image **ret);
void elf_image_free(struct elf_image *e);

const char *elf_image_path(const struct elf_image *e);

/* The open file (owned by the image): libdwfl gets a duplicate, never the path to reopen. */
int elf_image_fd(const struct elf_image *e);

/* The GNU build-id; length 0 when the file has none. */
size_t elf_image_build_id(const struct elf_image *e, const uint8_t **id);

/* The page-aligned p_vaddr of the first PT_LOAD: load bias = mapping base - this. */
uint64_t elf_image_first_load_vaddr(const struct elf_image *e);

/* Its ELF machine: EM_X86_64 or EM_AARCH64; its entry point (e_entry). */
uint16_t elf_image_machine(const struct elf_image *e);
uint64_t elf_image_entry(const struct elf_image *e);

/* Its program headers of one type (PT_LOAD, PT_INTERP, PT_DYNAMIC...), in file order: the first
 * max are copied to out; returns how many there are. */
struct elf_segment {
        uint64_t vaddr, memsz, offset, filesz;
};
size_t elf_image_segments(struct elf_image *e, uint32_t type, struct elf_segment *out, size_t max);

/*
 * Look up n symbol names in one pass over .dynsym, then (unless `dynamic_only`)
 * .symtab for those still missing (n <= ELF_IMAGE_MAX_LOOKUP).  values[i] is
 * set (link-time address) for each found name, and left alone otherwise.
 * Returns how many were found.  .symtab is usually ten times .dynsym.
 */
#define ELF_IMAGE_MAX_LOOKUP 32
size_t elf_image_symbols(struct elf_image *e, bool dynamic_only, const char *const *names, uint64_t *values,
                         uint64_t *sizes, size_t n);

/* The link-time address and size of section `name`; -ENOENT when absent. */
int elf_image_section(struct elf_image *e, const char *name, uint64_t *addr, uint64_t *size);

/*
 * The file's FDO package metadata note (package_note.h), from its SHT_NOTE sections, or from
 * its PT_NOTE segments when it has no section headers; at most ELF_IMAGE_MAX_NOTE_AREAS of
 * them are looked at.  1 and *ret (the caller frees it), 0 when the file has none, or
 * -E2BIG/-EBADMSG/-ENOMEM for the one it has (package_note_parse()).  Reads only the note
 * areas, through the file already open.
 */
#define ELF_IMAGE_MAX_NOTE_AREAS 256
int elf_image_package(struct elf_image *e, struct json_doc **ret);

/* Read len bytes at file offset off; 0 or -EIO. */
int elf_image_pread(struct elf_image *e, void *buf, size_t len, uint64_t off);
