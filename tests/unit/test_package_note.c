/* SPDX-License-Identifier: MIT */
/* Unit test: the FDO package metadata note (analyzer/core/package_note.h) from note data as
 * libelf hands it over, honest and hostile, and the report's copy of it (json_fput). */
#include <errno.h>
#include <gelf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "package_note.h"
#include "tap.h"
#include "util.h"

#define FDO NT_FDO_PACKAGING_METADATA

/* A note area being built: 4-byte aligned like a section's data. */
struct area {
        uint32_t words[32768];
        size_t size;
        unsigned align;                 /* 4 (ELF_T_NHDR) or 8 (ELF_T_NHDR8) */
};

static void pad(struct area *a, unsigned to) {
        while (a->size % to)
                ((char *)a->words)[a->size++] = 0;
}

/* One note: owner's namesz bytes (its NUL included when namesz says so), the descriptor's
 * desc_len bytes, and descsz as the header claims (usually desc_len). */
static void add_note_raw(struct area *a, const char *owner, uint32_t namesz, uint32_t type, const void *desc,
                         size_t desc_len, uint32_t descsz) {
        char *p = (char *)a->words;
        uint32_t hdr[3] = { namesz, descsz, type };

        memcpy(p + a->size, hdr, sizeof(hdr));
        a->size += sizeof(hdr);
        memcpy(p + a->size, owner, namesz);
        a->size += namesz;
        pad(a, a->align);
        memcpy(p + a->size, desc, desc_len);
        a->size += desc_len;
        pad(a, a->align);
}

static void add_note(struct area *a, const char *owner, uint32_t type, const void *desc, size_t len) {
        add_note_raw(a, owner, (uint32_t)strlen(owner) + 1, type, desc, len, (uint32_t)len);
}

/* A string note: the JSON and its NUL. */
static void add_json(struct area *a, const char *json) {
        add_note(a, "FDO", FDO, json, strlen(json) + 1);
}

static void reset(struct area *a, unsigned align) {
        a->size = 0;
        a->align = align;
}

static Elf_Data data_of(struct area *a) {
        return (Elf_Data) { .d_buf = a->words, .d_size = a->size, .d_version = EV_CURRENT,
                            .d_type = a->align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR };
}

static char *written(const struct json_doc *d) {
        char *out = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&out, &len);

        if (!m)
                abort();
        json_fput(m, json_root(d));
        fclose(m);
        return out;
}

/* find() on the area: its result, and the document written again in *out (or NULL). */
static int find(struct area *a, char **out) {
        Elf_Data d = data_of(a);
        struct json_doc *doc = NULL;
        int r = package_note_find(&d, &doc);

        *out = r > 0 ? written(doc) : NULL;
        json_free(doc);
        return r;
}

static void check_found(struct area *a, const char *want, const char *what) {
        char *got = NULL;
        int r = find(a, &got);

        tap_ok(r == 1 && got && strcmp(got, want) == 0, "%s", what);
        if (r != 1 || !got || strcmp(got, want) != 0)
                printf("#   r=%d got %s\n#   want %s\n", r, got ? got : "(none)", want);
        free(got);
}

static void check_result(struct area *a, int want, const char *what) {
        char *got = NULL;

        TAP_EQ_INT(find(a, &got), want, "%s", what);
        tap_ok(!got, "%s: no document", what);
        free(got);
}

static const char GNU_ID[20] = "0123456789abcdefghij";

int main(void) {
        static struct area a;
        const char *deb = "{\"type\":\"deb\",\"name\":\"foo\",\"version\":\"1.2-3\",\"architecture\":\"amd64\","
                          "\"os\":\"debian\",\"osVersion\":\"12\"}";
        char *big;

        elf_version(EV_CURRENT);

        /* honest notes */
        reset(&a, 4);
        add_note(&a, "GNU", NT_GNU_BUILD_ID, GNU_ID, sizeof(GNU_ID));
        add_json(&a, deb);
        check_found(&a, deb, "a package note after a build-id note");

        reset(&a, 4);
        add_json(&a, " { \"name\" : \"foo\" ,\n\t\"n\": [1, -2.5e3, true, false, null, {}] } ");
        check_found(&a, "{\"name\":\"foo\",\"n\":[1,-2.5e3,true,false,null,{}]}",
                    "spaces go, numbers keep their text, every JSON type is written again");

        reset(&a, 4);
        add_note(&a, "FDO", FDO, "{\"a\":1}\0\0\0\0\0\0\0", 15);
        check_found(&a, "{\"a\":1}", "NUL padding inside descsz (an older ld's habit)");

        reset(&a, 4);
        add_note(&a, "FDO", FDO, "{\"a\":1}\0{\"b\":2}", 15);
        check_found(&a, "{\"a\":1}", "what follows the NUL is not the JSON");

        reset(&a, 4);
        add_json(&a, "{\"first\":1}");
        add_json(&a, "{\"second\":2}");
        check_found(&a, "{\"first\":1}", "two package notes: the first");

        reset(&a, 8);
        add_note(&a, "GNU", 5 /* NT_GNU_PROPERTY_TYPE_0 */, "\1\0\0\xc0\4\0\0\0\1\0\0\0\0\0\0\0", 16);
        add_json(&a, deb);
        check_found(&a, deb, "8-byte aligned notes (ELF_T_NHDR8)");

        /* notes that are not the package note */
        reset(&a, 4);
        add_note(&a, "GNU", NT_GNU_BUILD_ID, GNU_ID, sizeof(GNU_ID));
        check_result(&a, 0, "no package note");
        reset(&a, 4);
        add_note(&a, "FDO", 0xcafe1a7f, "{}", 3);
        add_note(&a, "FDX", FDO, "{}", 3);
        add_note_raw(&a, "FDO", 3, FDO, "{}", 3, 3);          /* the owner without its NUL */
        add_note_raw(&a, "FDO\0\0\0\0", 8, FDO, "{}", 3, 3);  /* a longer owner */
        check_result(&a, 0, "another type, another owner, an owner of 3 or 8 bytes: none");
        reset(&a, 4);
        check_result(&a, 0, "an empty area");
        TAP_EQ_INT(package_note_find(NULL, NULL), 0, "no data at all");

        /* sizes that lie */
        reset(&a, 4);
        add_json(&a, deb);
        a.size -= 8;
        check_result(&a, 0, "a truncated note (the area ends inside its descriptor)");
        reset(&a, 4);
        add_note_raw(&a, "FDO", 4, FDO, "{\"a\":1}\0", 8, 4096);
        check_result(&a, 0, "descsz past the end of the area");
        reset(&a, 4);
        add_note_raw(&a, "FDO", 4, FDO, "{\"a\":1}\0", 8, 0xfffffffc);
        check_result(&a, 0, "descsz near 2^32 (the padded size would wrap)");
        reset(&a, 4);
        memcpy(a.words, (uint32_t[]) { 0xfffffff0, 8, FDO }, 12);
        memcpy(a.words + 3, "FDO\0{\"a\":1}\0", 12);
        a.size = 24;
        check_result(&a, 0, "namesz past the end of the area");
        reset(&a, 4);
        memcpy(a.words, (uint32_t[]) { 4, 8 }, 8);
        a.size = 8;
        check_result(&a, 0, "a header cut short");

        /* descriptors that are not a package's JSON object */
        reset(&a, 4);
        add_note(&a, "FDO", FDO, "{\"a\":12}", 8);
        check_result(&a, -EBADMSG, "not NUL-terminated within descsz");
        const char *not_objects[] = { "[1,2]", "\"deb\"", "42", "null", "", "{\"a\":1} x", "{\"a\":1,}",
                                      "{\"name\":\"foo\",\"name\":\"bar\"}", "{\"a\":{\"k\":1,\"k\":2}}",
                                      "{\"a\":\"\x01\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\\x41\"}" };
        const char *why[] = { "an array", "a string", "a number", "null", "nothing before the NUL",
                              "trailing garbage", "a trailing comma", "a key twice",
                              "a key twice in an inner object", "a raw control character in a string",
                              "a raw TAB in a string", "an invalid escape" };
        for (size_t i = 0; i < ELEMENTSOF(not_objects); i++) {
                char what[128];

                reset(&a, 4);
                add_json(&a, not_objects[i]);
                snprintf(what, sizeof(what), "refused: %s", why[i]);
                check_result(&a, -EBADMSG, what);
        }

        /* the size bound: 4096 bytes of JSON pass, one more do not, nor 5 KiB */
        big = malloc(8192);
        for (size_t n = PACKAGE_NOTE_MAX_JSON - 1; n <= PACKAGE_NOTE_MAX_JSON + 1; n++) {
                size_t body = n - strlen("{\"a\":\"\"}");

                snprintf(big, 8192, "{\"a\":\"%0*d\"}", (int)body, 0);
                reset(&a, 4);
                add_json(&a, big);
                if (n <= PACKAGE_NOTE_MAX_JSON)
                        check_found(&a, big, n < PACKAGE_NOTE_MAX_JSON ? "4095 bytes of JSON" : "4096 bytes of JSON");
                else
                        check_result(&a, -E2BIG, "4097 bytes of JSON: too long");
        }
        snprintf(big, 8192, "{\"a\":\"%0*d\"}", 5120, 0);
        reset(&a, 4);
        add_json(&a, big);
        check_result(&a, -E2BIG, "5 KiB of JSON: too long");
        memset(big, 'x', 5120);
        reset(&a, 4);
        add_note(&a, "FDO", FDO, big, 5120);
        check_result(&a, -E2BIG, "5 KiB without a NUL: too long");

        /* nesting: the reader's bound, far below the size bound */
        const size_t depths[] = { JSON_MAX_DEPTH - 1, 1000 };
        for (size_t k = 0; k < ELEMENTSOF(depths); k++) {
                size_t n = 0, depth = depths[k];

                n += (size_t)sprintf(big + n, "{\"a\":");
                for (size_t i = 1; i < depth; i++)
                        big[n++] = '[';
                for (size_t i = 1; i < depth; i++)
                        big[n++] = ']';
                strcpy(big + n, "}");
                reset(&a, 4);
                add_json(&a, big);
                if (depth < JSON_MAX_DEPTH)
                        check_found(&a, big, "nesting of JSON_MAX_DEPTH - 1 levels");
                else
                        check_result(&a, -EBADMSG, "nesting of 1000 levels: refused");
        }
        free(big);

        /* text is written by the project's rule, whatever the file wrote */
        reset(&a, 4);
        add_json(&a, "{\"bell\":\"\\u0007\",\"rlo\":\"\xe2\x80\xae\",\"rlo2\":\"\\u202e\",\"byte\":\"\xff\","
                     "\"c1\":\"\xc2\x9b\",\"nul\":\"a\\u0000b\",\"q\":\"\\\"\\\\\\/\",\"\\u001b[31m\":1,"
                     "\"ok\":\"caf\xc3\xa9\"}");
        check_found(&a, "{\"bell\":\"\\u0007\",\"rlo\":\"\\u202e\",\"rlo2\":\"\\u202e\",\"byte\":\"\\udcff\","
                        "\"c1\":\"\\u009b\",\"nul\":\"a\xef\xbf\xbd" "b\",\"q\":\"\\\"\\\\/\",\"\\u001b[31m\":1,"
                        "\"ok\":\"caf\xc3\xa9\"}",
                    "controls, format characters and stray bytes escaped, in keys too; NUL is U+FFFD");

        /* the scan is bounded: a package note behind PACKAGE_NOTE_MAX_SCAN others is not looked for */
        reset(&a, 4);
        for (size_t i = 0; i < PACKAGE_NOTE_MAX_SCAN; i++)
                add_note(&a, "X", 1, "", 0);
        add_json(&a, "{}");
        check_result(&a, 0, "a package note after PACKAGE_NOTE_MAX_SCAN other notes: not reached");
        reset(&a, 4);
        for (size_t i = 0; i + 1 < PACKAGE_NOTE_MAX_SCAN; i++)
                add_note(&a, "X", 1, "", 0);
        add_json(&a, "{}");
        check_found(&a, "{}", "the note at the last place scanned is found");

        return tap_done();
}
