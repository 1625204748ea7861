/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <gelf.h>
#include <string.h>

#include "package_note.h"
#include "util.h"

/* Bounded by the reader's JSON_MAX_DEPTH; an object's keys compared pairwise (a 4 KiB
 * document has at most some 800 of them). */
static bool has_duplicate_keys(const struct json_value *v) {
        if (v->type == JSON_ARRAY) {
                for (size_t i = 0; i < v->n; i++)
                        if (has_duplicate_keys(&v->items[i]))
                                return true;
        } else if (v->type == JSON_OBJECT)
                for (size_t i = 0; i < v->n; i++) {
                        for (size_t k = 0; k < i; k++)
                                if (strcmp(v->members[i].key, v->members[k].key) == 0)
                                        return true;
                        if (has_duplicate_keys(&v->members[i].value))
                                return true;
                }
        return false;
}

int package_note_parse(const void *desc, size_t len, struct json_doc **ret) {
        const char *nul = memchr(desc, 0, MIN(len, (size_t)PACKAGE_NOTE_MAX_JSON + 1));
        struct json_doc *doc = NULL;
        int r;

        if (!nul)
                return len > PACKAGE_NOTE_MAX_JSON ? -E2BIG : -EBADMSG;
        r = json_parse(desc, (size_t)(nul - (const char *)desc), &doc);
        if (r < 0)
                return r;
        if (json_root(doc)->type != JSON_OBJECT || has_duplicate_keys(json_root(doc))) {
                json_free(doc);
                return -EBADMSG;
        }
        *ret = doc;
        return 0;
}

int package_note_find(Elf_Data *notes, struct json_doc **ret) {
        size_t off = 0, name_off, desc_off;
        GElf_Nhdr nh;

        if (!notes || !notes->d_buf)
                return 0;
        /* gelf_getnote returns the next note's offset, always past this one, or 0 at the end */
        for (unsigned i = 0; i < PACKAGE_NOTE_MAX_SCAN &&
                             (off = gelf_getnote(notes, off, &nh, &name_off, &desc_off)) > 0; i++) {
                if (nh.n_type != NT_FDO_PACKAGING_METADATA || nh.n_namesz != 4 ||
                    memcmp((const char *)notes->d_buf + name_off, "FDO", 4) != 0)
                        continue;
                int r = package_note_parse((const char *)notes->d_buf + desc_off, nh.n_descsz, ret);
                return r < 0 ? r : 1;
        }
        return 0;
}
