/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * package_note: the package a file came from, as its FDO package metadata note says
 * (https://systemd.io/ELF_PACKAGE_METADATA/): the ELF note of owner "FDO" and type
 * 0xcafe1a7e, usually in section .note.package, whose descriptor is a NUL-terminated JSON
 * object such as {"type":"deb","name":"foo","version":"1.2-3",...}.
 *
 * The file may be anyone's, so the note is taken only when it is small (its JSON at most
 * PACKAGE_NOTE_MAX_JSON bytes), NUL-terminated within its descriptor, and one JSON object
 * that json.h's reader accepts with no key twice in any object (a reader would otherwise
 * see whichever copy it keeps).  The result is the parsed document: whoever prints it
 * writes it again (json_fput), never the file's bytes.
 *
 * Nothing here reads a file: the callers hand over the note data libelf gave them.
 */

#include <libelf.h>
#include <stddef.h>

#include "json.h"

#ifndef NT_FDO_PACKAGING_METADATA              /* <elf.h> has it since glibc 2.37 */
#define NT_FDO_PACKAGING_METADATA 0xcafe1a7e
#endif
#define PACKAGE_NOTE_MAX_JSON 4096

/*
 * A package note's descriptor, len bytes as the file holds them (the JSON, its NUL, then
 * padding).  0 and *ret, a JSON object; -E2BIG when the JSON before the NUL is longer than
 * PACKAGE_NOTE_MAX_JSON; -EBADMSG when there is no NUL, or it is not one JSON object, or an
 * object holds a key twice; -ENOMEM.  Reads at most PACKAGE_NOTE_MAX_JSON + 1 bytes.
 */
int package_note_parse(const void *desc, size_t len, struct json_doc **ret);

/*
 * The first package note among notes (libelf's data of an SHT_NOTE section or a PT_NOTE
 * segment: d_type ELF_T_NHDR or ELF_T_NHDR8), looking at most at PACKAGE_NOTE_MAX_SCAN
 * notes: 1 and *ret, 0 when there is none, else package_note_parse()'s error for it.  A
 * note whose sizes run past the data ends the scan (gelf_getnote checks them).
 */
#define PACKAGE_NOTE_MAX_SCAN 1024
int package_note_find(Elf_Data *notes, struct json_doc **ret);
