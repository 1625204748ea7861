/* SPDX-License-Identifier: MIT */
/*
 * TAP tests for the pure formatting of analyzer/python/py_locals.c: repr(float),
 * ints from CPython digit arrays, str/bytes escaping and the bounded buffer.
 *
 * Every expected string was printed by CPython itself: repr() of the value
 * under python3.11 (floats given as exact hex literals; ints given as their
 * base-2^30 and base-2^15 digit arrays, least significant first) and, for
 * the u'' and 2.7 str styles, under python2.7.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "py_locals.h"
#include "tap.h"

static void test_floats(void) {
        static const struct { double v; const char *want; } cases[] = {
                { 0x1.999999999999ap-4, "0.1" },
                { 0x1.999999999999ap-3, "0.2" },
                { 0x1.3333333333333p-2, "0.3" },
                { 0x1.5555555555555p-2, "0.3333333333333333" },
                { 0x1.5555555555555p-1, "0.6666666666666666" },
                { 0x1.1c37937e08000p+53, "1e+16" },
                { 0x1.c6bf526340000p+49, "1000000000000000.0" },
                { 0x1.b69b4ba630f35p+56, "1.2345678901234568e+17" },
                { 0x1.0f0cf064dd592p+73, "1e+22" },
                { 0x1.52d02c7e14af6p+76, "1e+23" },
                { 0x1.a36e2eb1c432dp-14, "0.0001" },
                { 0x1.4f8b588e368f1p-17, "1e-05" },
                { 0x1.421f5f40d8376p-23, "1.5e-07" },
                { 0x0.0000000000001p-1022, "5e-324" },
                { 0x1.0000000000000p-1022, "2.2250738585072014e-308" },
                { 0x1.fffffffffffffp+1023, "1.7976931348623157e+308" },
                { -0x1.4000000000000p+1, "-2.5" },
                { 0x1.9000000000000p+6, "100.0" },
                { 0x1.249ad2594c37dp+332, "1e+100" },
                { 0x1.0000000000000p-1, "0.5" },
                { 0x1.0000000000000p+53, "9007199254740992.0" },
                { 0x1.1666666666666p+2, "4.35" },
                { 0x1.5666666666666p+1, "2.675" },
                { 0x1.34a456d5cfaadp+10, "1234.5678" },
                { -0x1.56e1fc2f8f359p-997, "-1e-300" },
                { 0x1.921fb54442d18p+1, "3.141592653589793" },
                { 0x1.01f31f46ed246p-13, "0.000123" },
                { 0x1.56a95319d63e1p+63, "1.2345678901234567e+19" },
                { -0x1.74de452e6b438p+811, "-1.989032661366619e+244" },
                { 0x1.3270e269e0d37p+594, "7.761117632285041e+178" },
                { 0x1.c7fd0a6a3a450p-826, "3.980498358697587e-249" },
                { -0x1.f0824128b2f33p+292, "-1.5432835417340557e+88" },
                { 0x1.8e811892f902bp-638, "1.3647584518757569e-192" },
                { -0x1.1985d5d9dc9f8p-684, "-1.3701135617873088e-206" },
                { -0x1.25d940ed90475p+655, "-1.7160537630466207e+197" },
                { 0x1.675cc81e74ef5p-144, "6.294675241195386e-44" },
                { 0x1.0a35a099950d8p-671, "1.0613447212142254e-202" },
                { 0x1.d549b6f03675ap+689, "4.708325160387546e+207" },
                { 0x1.c172411e20b8fp-38, "6.387016158513563e-12" },
                { -0x1.16ece1738f7d9p-814, "-9.973130378568733e-246" },
                { -0x1.26d8cf945b304p+17, "-150961.62171497208" },
                { 0x1.3f3107faa06d8p+19, "653704.249344076" },
                { -0x1.6f61827c86326p+19, "-752396.0777007088" },
                { -0x1.0e464243e0f0cp+19, "-553522.0707859709" },
                { 0x1.f1c938ef929c8p+17, "254866.4448111786" },
                { 0x1.b5373c5137304p+19, "895417.8849140112" },
                { 0x1.2d2ef2d898ad0p+17, "154205.89723499725" },
                { -0x1.9397867d49564p+17, "-206639.0506984397" },
                { 0.0, "0.0" },
                { -0.0, "-0.0" },
                { INFINITY, "inf" },
                { -INFINITY, "-inf" },
                { NAN, "nan" },
        };
        char out[64];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int r = py_repr_float(cases[i].v, out, sizeof(out));

                if (!tap_ok(r == 0 && strcmp(out, cases[i].want) == 0, "repr(float) %s", cases[i].want))
                        printf("#   got \"%s\" (%d)\n", r == 0 ? out : "", r);
        }
        tap_ok(py_repr_float(1.0, out, 8) == -EINVAL, "repr(float) refuses a short buffer");
}

static void test_ints(void) {
        /* not static: the compound literals have automatic storage */
        const struct {
                unsigned shift;
                bool negative;
                size_t n;
                const uint32_t *digits;
                const char *want;
        } cases[] = {
                { 30, false, 0, (const uint32_t[]){ 0 }, "0" },
                { 30, false, 1, (const uint32_t[]){ 1 }, "1" },
                { 30, true, 1, (const uint32_t[]){ 1 }, "-1" },
                { 30, false, 1, (const uint32_t[]){ 999999999 }, "999999999" },
                { 30, false, 1, (const uint32_t[]){ 1000000000 }, "1000000000" },
                { 30, true, 3, (const uint32_t[]){ 0, 0, 8 }, "-9223372036854775808" },
                { 30, false, 3, (const uint32_t[]){ 1, 0, 16 }, "18446744073709551617" },
                { 30, true, 4, (const uint32_t[]){ 12345, 0, 0, 1024 }, "-1267650600228229401496703217721" },
                { 30, false, 5, (const uint32_t[]){ 0, 668304384, 172751547, 175927511, 7523 }, "10000000000000000000000000000000000000000" },
                { 30, false, 11, (const uint32_t[]){ 720941217, 803994746, 175825445, 993902009, 906409603, 258341137, 875757527, 618569148, 111067674, 418446017, 130392 }, "265613988875874769338781322035779626829233452653394495974574961739092490901302182994384699044001" },
                { 30, true, 15, (const uint32_t[]){ 890768657, 521260229, 152302344, 134660222, 113999833, 396384057, 523021175, 265692362, 800361159, 1063014465, 836820984, 857331123, 319779406, 159304403, 2 }, "-5817092933824343165432524003391691164919859649719340532627567207607656859034356995566589707894210757866827613621721127496191249" },
                { 15, false, 2, (const uint32_t[]){ 18943, 30517 }, "999999999" },
                { 15, false, 2, (const uint32_t[]){ 18944, 30517 }, "1000000000" },
                { 15, true, 5, (const uint32_t[]){ 0, 0, 0, 0, 8 }, "-9223372036854775808" },
                { 15, false, 5, (const uint32_t[]){ 1, 0, 0, 0, 16 }, "18446744073709551617" },
                { 15, true, 7, (const uint32_t[]){ 12345, 0, 0, 0, 0, 0, 1024 }, "-1267650600228229401496703217721" },
                { 15, false, 9, (const uint32_t[]){ 0, 0, 1024, 20395, 31419, 5271, 28887, 5368, 7523 }, "10000000000000000000000000000000000000000" },
                { 15, false, 22, (const uint32_t[]){ 12449, 22001, 31866, 24535, 25125, 5365, 15801, 30331, 13955, 27661, 30993, 7883, 32727, 26725, 7612, 18877, 16922, 3389, 31425, 12769, 32088, 3 }, "265613988875874769338781322035779626829233452653394495974574961739092490901302182994384699044001" },
                { 15, true, 29, (const uint32_t[]){ 3345, 27184, 19653, 15907, 29448, 4647, 16510, 4109, 32729, 3478, 22329, 12096, 11127, 15961, 9418, 8108, 2759, 24425, 20545, 32440, 24568, 25537, 21939, 26163, 29262, 9758, 19155, 4861, 2 }, "-5817092933824343165432524003391691164919859649719340532627567207607656859034356995566589707894210757866827613621721127496191249" },
                /* high zero digits (a non-normalized int) and garbage above the shift are ignored */
                { 30, false, 3, (const uint32_t[]){ 5, 0, 0 }, "5" },
                { 30, true, 2, (const uint32_t[]){ 0xC0000001u, 0 }, "-1" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = py_long_to_decimal(cases[i].digits, cases[i].n, cases[i].shift, cases[i].negative);

                if (!tap_ok(got && strcmp(got, cases[i].want) == 0, "int, %u-bit digits: %.40s%s", cases[i].shift,
                            cases[i].want, strlen(cases[i].want) > 40 ? "..." : ""))
                        printf("#   got %s\n", got ? got : "NULL");
                free(got);
        }
        tap_ok(py_long_to_decimal((const uint32_t[]){ 1 }, 1, 31, false) == NULL, "int: a 31-bit shift is refused");
        tap_ok(py_long_to_decimal((const uint32_t[]){ 1 }, 1, 0, false) == NULL, "int: a 0-bit shift is refused");
}

struct str_case {
        size_t n;
        const uint32_t *cp;
        const char *want;
};

static void check_strings(const struct str_case *cases, size_t count, enum py_str_style style, const char *what) {
        for (size_t i = 0; i < count; i++) {
                struct repr_buf b;
                char *got;

                repr_buf_init(&b, 1024);
                py_repr_string(&b, cases[i].cp, cases[i].n, false, style);
                got = repr_buf_finish(&b);
                if (!tap_ok(got && strcmp(got, cases[i].want) == 0, "%s %s", what, cases[i].want))
                        printf("#   got %s\n", got ? got : "NULL");
                free(got);
        }
}

static void test_strings(void) {
        const struct str_case str3[] = {
                { 5, (const uint32_t[]){ 0x70, 0x6c, 0x61, 0x69, 0x6e }, "'plain'" },
                { 4, (const uint32_t[]){ 0x69, 0x74, 0x27, 0x73 }, "\"it's\"" },
                { 8, (const uint32_t[]){ 0x73, 0x61, 0x79, 0x20, 0x22, 0x68, 0x69, 0x22 }, "'say \"hi\"'" },
                { 12, (const uint32_t[]){ 0x62, 0x6f, 0x74, 0x68, 0x20, 0x27, 0x20, 0x61, 0x6e, 0x64, 0x20, 0x22 }, "'both \\' and \"'" },
                { 20, (const uint32_t[]){ 0x74, 0x61, 0x62, 0x9, 0x6e, 0x6c, 0xa, 0x72, 0x65, 0x74, 0xd, 0x62, 0x65, 0x6c, 0x6c, 0x7, 0x64, 0x65, 0x6c, 0x7f }, "'tab\\tnl\\nret\\rbell\\x07del\\x7f'" },
                { 10, (const uint32_t[]){ 0x62, 0x61, 0x63, 0x6b, 0x5c, 0x73, 0x6c, 0x61, 0x73, 0x68 }, "'back\\\\slash'" },
                { 8, (const uint32_t[]){ 0x63, 0x61, 0x66, 0xe9, 0x20, 0xa0, 0xad, 0xff }, "'café \\xa0\\xadÿ'" },
                { 8, (const uint32_t[]){ 0x65e5, 0x672c, 0x20, 0x101, 0x20, 0x2028, 0x200b, 0xfeff }, "'日本 ā \\u2028\\u200b\\ufeff'" },
                { 11, (const uint32_t[]){ 0x73, 0x6e, 0x61, 0x6b, 0x65, 0x20, 0x1f40d, 0x20, 0xe0001, 0x20, 0xd800 }, "'snake 🐍 \\U000e0001 \\ud800'" },
                { 2, (const uint32_t[]){ 0x80, 0x9f }, "'\\x80\\x9f'" },
                { 0, (const uint32_t[]){ 0 }, "''" },
        };
        const struct str_case bytes3[] = {
                { 8, (const uint32_t[]){ 0x0, 0x1, 0x61, 0x62, 0x27, 0x63, 0xff, 0x80 }, "b\"\\x00\\x01ab'c\\xff\\x80\"" },
                { 2, (const uint32_t[]){ 0x71, 0x22 }, "b'q\"'" },
                { 2, (const uint32_t[]){ 0x27, 0x22 }, "b'\\'\"'" },
                { 2, (const uint32_t[]){ 0x5c, 0x9 }, "b'\\\\\\t'" },
        };
        const struct str_case unicode27[] = {
                { 8, (const uint32_t[]){ 0x63, 0x61, 0x66, 0xe9, 0x20, 0x65e5, 0x20, 0x1f40d }, "u'caf\\xe9 \\u65e5 \\U0001f40d'" },
                { 5, (const uint32_t[]){ 0x69, 0x74, 0x27, 0x73, 0x9 }, "u\"it's\\t\"" },
        };
        const struct str_case str27[] = {
                { 4, (const uint32_t[]){ 0x61, 0x0, 0xff, 0x7f }, "'a\\x00\\xff\\x7f'" },
        };
        struct repr_buf b;
        char *got;

        check_strings(str3, sizeof(str3) / sizeof(str3[0]), PY_STR_STR3, "str");
        check_strings(bytes3, sizeof(bytes3) / sizeof(bytes3[0]), PY_STR_BYTES3, "bytes");
        check_strings(unicode27, 2, PY_STR_UNICODE27, "2.7 unicode");
        check_strings(str27, 1, PY_STR_STR27, "2.7 str");

        repr_buf_init(&b, 1024);
        py_repr_string(&b, (const uint32_t[]){ 0x61, 0x62 }, 2, true, PY_STR_STR3);
        got = repr_buf_finish(&b);
        tap_ok(got && strcmp(got, "'ab...'") == 0, "a cut string ends in ... inside its quotes");
        free(got);

        tap_ok(py_unicode_printable(0xe9) && py_unicode_printable(0x1f40d) && py_unicode_printable(' '),
               "printable: é, 🐍, space");
        tap_ok(!py_unicode_printable(0xa0) && !py_unicode_printable(0x2028) && !py_unicode_printable(0xdc00) &&
               !py_unicode_printable(0xe000) && !py_unicode_printable(0x10ffff) && !py_unicode_printable(0x110000),
               "not printable: NBSP, LINE SEPARATOR, surrogate, private use, noncharacter, beyond Unicode");
}

static void test_buffer(void) {
        struct repr_buf b;
        char *got;

        repr_buf_init(&b, 10);
        repr_buf_puts(&b, "0123456789");
        got = repr_buf_finish(&b);
        tap_ok(got && strcmp(got, "0123456789") == 0, "buffer: exactly max bytes are kept whole");
        free(got);

        repr_buf_init(&b, 10);
        repr_buf_puts(&b, "0123456789A");
        tap_ok(b.full, "buffer: one byte more marks it full");
        got = repr_buf_finish(&b);
        tap_ok(got && strcmp(got, "0123456...") == 0, "buffer: cut to max - 3 bytes and \"...\"");
        free(got);

        /* "ab日本" is 8 bytes: a cut at 7 - 3 = 4 would split 日 (bytes 2-4) */
        repr_buf_init(&b, 7);
        repr_buf_puts(&b, "ab日本");
        got = repr_buf_finish(&b);
        tap_ok(got && strcmp(got, "ab...") == 0, "buffer: never cuts inside a UTF-8 sequence");
        free(got);

        repr_buf_init(&b, 20);
        repr_buf_puts(&b, "keep");
        repr_buf_puts(&b, "<partial");
        repr_buf_truncate(&b, 4);
        repr_buf_puts(&b, "!");
        got = repr_buf_finish(&b);
        tap_ok(got && strcmp(got, "keep!") == 0, "buffer: truncate rolls back a partial object");
        free(got);

        repr_buf_init(&b, 1000);
        for (int i = 0; i < 100000; i++)
                repr_buf_puts(&b, "0123456789");
        tap_ok(b.len <= 1004, "buffer: stops growing past its bound (%zu bytes held)", b.len);
        repr_buf_free(&b);
}

int main(void) {
        test_floats();
        test_ints();
        test_strings();
        test_buffer();
        return tap_done();
}
