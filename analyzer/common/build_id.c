/* SPDX-License-Identifier: MIT */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "build_id.h"
#include "util.h"

int elf_build_id_from_header(const uint8_t *buf, size_t size, const uint8_t **id, size_t *len) {
        Elf64_Ehdr eh;

        if (size < sizeof(eh))
                return -ENOENT;
        memcpy(&eh, buf, sizeof(eh));
        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_phentsize != sizeof(Elf64_Phdr))
                return -ENOENT;
        for (size_t i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                uint64_t pos = eh.e_phoff + i * sizeof(ph);

                if (!range_ok(pos, sizeof(ph), size))
                        return -ENOENT;
                memcpy(&ph, buf + pos, sizeof(ph));
                if (ph.p_type != PT_NOTE || !range_ok(ph.p_offset, ph.p_filesz, size))
                        continue;
                /* walk the notes of this segment, bounded by its size */
                uint64_t off = ph.p_offset, end = ph.p_offset + ph.p_filesz;
                while (end - off >= 12) {
                        uint32_t namesz, descsz, type;
                        memcpy(&namesz, buf + off, 4);
                        memcpy(&descsz, buf + off + 4, 4);
                        memcpy(&type, buf + off + 8, 4);
                        uint64_t name_off = off + 12;
                        uint64_t desc_off = name_off + (((uint64_t)namesz + 3) & ~3ull);
                        uint64_t next = desc_off + (((uint64_t)descsz + 3) & ~3ull);
                        if (desc_off > end || descsz > end - desc_off)
                                break;
                        if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(buf + name_off, "GNU", 4) == 0 &&
                            descsz > 0 && descsz <= BUILD_ID_MAX) {
                                *id = buf + desc_off;
                                *len = descsz;
                                return 0;
                        }
                        off = next;
                }
        }
        return -ENOENT;
}
