/* SPDX-License-Identifier: MIT */
/*
 * The per-version offset table and the _Py_DebugOffsets reader.
 *
 * The table is py_layout_table.h, generated: tests/layout/check_layout.c,
 * compiled against an interpreter's own headers, prints that minor's entry
 * (offsetof()/sizeof(), the headers' constants, and the kinds from the
 * version macros), `tests/layout/run-layout-check --write` writes the entries
 * of every interpreter installed, and `make check` regenerates them and diffs
 * them against the file.  Change check_layout.c, never the table.
 *
 * Every field of every entry is written out, PY_OFF_NONE included: a field
 * left to the zero default would silently read offset 0, so check_layout.c
 * refuses to print an entry with a field it has not derived.
 *
 * Two fields exist longer than py_layout.h's comments say, and are filled
 * wherever the headers have them: PyThreadState.native_thread_id first
 * appears in 3.11 (not 3.8), and _co_firsttraceable is still in 3.13.
 */

#include <elf.h>
#include <errno.h>
#include <string.h>

#include "py_layout.h"
#include "util.h"

#define NONE PY_OFF_NONE

#include "py_layout_table.h"

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

const struct py_layout *py_layout_for(unsigned major, unsigned minor) {
        for (size_t i = 0; i < TABLE_LEN; i++)
                if (table[i].major == major && table[i].minor == minor)
                        return &table[i];
        return NULL;
}

size_t py_layout_count(void) {
        return TABLE_LEN;
}

const struct py_layout *py_layout_at(size_t i) {
        return i < TABLE_LEN ? &table[i] : NULL;
}

void py_layout_for_machine(struct py_layout *l, uint16_t machine) {
        /* glibc's pthread_mutex_t is 48 bytes on aarch64 and 40 on x86-64.  From 3.7 to 3.11
         * _PyRuntime.ceval holds the GIL's two before gilstate; 3.12 moved them after what we read. */
        if (machine == EM_AARCH64 && l->major == 3 && l->minor >= 7 && l->minor <= 11 &&
            l->runtime.gilstate_tstate_current != NONE)
                l->runtime.gilstate_tstate_current += 16;
}

/* The newest entry not newer than major.minor (the table is sorted). */
/*
 * _Py_DebugOffsets: an 8-byte cookie followed by nothing but uint64_t words,
 * so the block is addressed by word index.  Each minor inserts words in the
 * middle, so each has its own list: every word in order, named when the
 * analyzer reads it and DO_SKIP otherwise.  The lists come from
 * Include/internal/pycore_runtime.h (3.13) and pycore_debug_offsets.h
 * (3.14+); tests/layout checks them against the headers and against the
 * block libpython carries.
 */
enum do_field {
        DO_SKIP, DO_COOKIE, DO_VERSION, DO_FREE_THREADED,
        DO_RT_SIZE, DO_RT_INTERPRETERS_HEAD,
        DO_IS_SIZE, DO_IS_ID, DO_IS_NEXT, DO_IS_THREADS_HEAD, DO_IS_GC, DO_IS_IMPORTS_MODULES, DO_IS_CEVAL_GIL,
        DO_IS_GIL_RUNTIME_STATE, DO_IS_GIL_LOCKED, DO_IS_GIL_HOLDER,
        DO_TS_SIZE, DO_TS_NEXT, DO_TS_INTERP, DO_TS_CURRENT_FRAME, DO_TS_THREAD_ID, DO_TS_NATIVE_THREAD_ID,
        DO_TS_HOLDS_GIL, DO_TS_CURRENT_EXCEPTION, DO_TS_EXC_STATE, DO_ERR_EXC_VALUE,
        DO_IF_SIZE, DO_IF_PREVIOUS, DO_IF_EXECUTABLE, DO_IF_INSTR_PTR, DO_IF_LOCALSPLUS, DO_IF_OWNER,
        DO_IF_STACKPOINTER, DO_IF_TLBC_INDEX,
        DO_CO_SIZE, DO_CO_FILENAME, DO_CO_NAME, DO_CO_QUALNAME, DO_CO_LINETABLE, DO_CO_FIRSTLINENO,
        DO_CO_ARGCOUNT, DO_CO_LOCALSPLUSNAMES, DO_CO_LOCALSPLUSKINDS, DO_CO_CODE_ADAPTIVE, DO_CO_TLBC,
        DO_OB_SIZE, DO_OB_TYPE,
        DO_TP_SIZE, DO_TP_NAME, DO_TP_FLAGS,
        DO_TUPLE_SIZE, DO_TUPLE_OB_ITEM, DO_TUPLE_OB_SIZE,
        DO_LIST_SIZE, DO_LIST_OB_ITEM,
        DO_SET_SIZE, DO_SET_USED, DO_SET_TABLE, DO_SET_MASK,
        DO_DICT_SIZE, DO_DICT_MA_KEYS, DO_DICT_MA_VALUES,
        DO_FLOAT_SIZE, DO_FLOAT_OB_FVAL,
        DO_LONG_SIZE, DO_LONG_LV_TAG, DO_LONG_OB_DIGIT,
        DO_BYTES_SIZE, DO_BYTES_OB_SIZE, DO_BYTES_OB_SVAL,
        DO_STR_SIZE, DO_STR_STATE, DO_STR_LENGTH, DO_STR_ASCIIOBJECT_SIZE, DO_STR_COMPACT_SIZE,
        DO_GC_SIZE, DO_GC_COLLECTING,
        DO_GEN_SIZE, DO_GEN_IFRAME, DO_GEN_FRAME_STATE,
        _DO_MAX
};

#define S DO_SKIP
static const uint8_t block_313[] = {
        DO_COOKIE, DO_VERSION, DO_FREE_THREADED,
        DO_RT_SIZE, S /* finalizing */, DO_RT_INTERPRETERS_HEAD,
        DO_IS_SIZE, DO_IS_ID, DO_IS_NEXT, DO_IS_THREADS_HEAD, DO_IS_GC, DO_IS_IMPORTS_MODULES,
        S /* sysdict */, S /* builtins */, DO_IS_CEVAL_GIL, DO_IS_GIL_RUNTIME_STATE, S /* gil enabled */,
        DO_IS_GIL_LOCKED, DO_IS_GIL_HOLDER,
        DO_TS_SIZE, S /* prev */, DO_TS_NEXT, DO_TS_INTERP, DO_TS_CURRENT_FRAME, DO_TS_THREAD_ID,
        DO_TS_NATIVE_THREAD_ID, S /* datastack_chunk */, S /* status */,
        DO_IF_SIZE, DO_IF_PREVIOUS, DO_IF_EXECUTABLE, DO_IF_INSTR_PTR, DO_IF_LOCALSPLUS, DO_IF_OWNER,
        DO_CO_SIZE, DO_CO_FILENAME, DO_CO_NAME, DO_CO_QUALNAME, DO_CO_LINETABLE, DO_CO_FIRSTLINENO,
        DO_CO_ARGCOUNT, DO_CO_LOCALSPLUSNAMES, DO_CO_LOCALSPLUSKINDS, DO_CO_CODE_ADAPTIVE,
        DO_OB_SIZE, DO_OB_TYPE,
        DO_TP_SIZE, DO_TP_NAME, S /* tp_repr */, DO_TP_FLAGS,
        DO_TUPLE_SIZE, DO_TUPLE_OB_ITEM, DO_TUPLE_OB_SIZE,
        DO_LIST_SIZE, DO_LIST_OB_ITEM, S /* list ob_size */,
        DO_DICT_SIZE, DO_DICT_MA_KEYS, DO_DICT_MA_VALUES,
        DO_FLOAT_SIZE, DO_FLOAT_OB_FVAL,
        DO_LONG_SIZE, DO_LONG_LV_TAG, DO_LONG_OB_DIGIT,
        DO_BYTES_SIZE, DO_BYTES_OB_SIZE, DO_BYTES_OB_SVAL,
        DO_STR_SIZE, DO_STR_STATE, DO_STR_LENGTH, DO_STR_ASCIIOBJECT_SIZE,
        DO_GC_SIZE, DO_GC_COLLECTING,
};

/* 3.14: threads_main, code_object_generation, tlbc_generation, stackpointer, tlbc_index, co_tlbc,
 * the set and generator objects, llist_node and debugger_support. */
static const uint8_t block_314[] = {
        DO_COOKIE, DO_VERSION, DO_FREE_THREADED,
        DO_RT_SIZE, S /* finalizing */, DO_RT_INTERPRETERS_HEAD,
        DO_IS_SIZE, DO_IS_ID, DO_IS_NEXT, DO_IS_THREADS_HEAD, S /* threads_main */, DO_IS_GC,
        DO_IS_IMPORTS_MODULES, S /* sysdict */, S /* builtins */, DO_IS_CEVAL_GIL, DO_IS_GIL_RUNTIME_STATE,
        S /* gil enabled */, DO_IS_GIL_LOCKED, DO_IS_GIL_HOLDER, S /* code_object_generation */,
        S /* tlbc_generation */,
        DO_TS_SIZE, S /* prev */, DO_TS_NEXT, DO_TS_INTERP, DO_TS_CURRENT_FRAME, DO_TS_THREAD_ID,
        DO_TS_NATIVE_THREAD_ID, S /* datastack_chunk */, S /* status */,
        DO_IF_SIZE, DO_IF_PREVIOUS, DO_IF_EXECUTABLE, DO_IF_INSTR_PTR, DO_IF_LOCALSPLUS, DO_IF_OWNER,
        DO_IF_STACKPOINTER, DO_IF_TLBC_INDEX,
        DO_CO_SIZE, DO_CO_FILENAME, DO_CO_NAME, DO_CO_QUALNAME, DO_CO_LINETABLE, DO_CO_FIRSTLINENO,
        DO_CO_ARGCOUNT, DO_CO_LOCALSPLUSNAMES, DO_CO_LOCALSPLUSKINDS, DO_CO_CODE_ADAPTIVE, DO_CO_TLBC,
        DO_OB_SIZE, DO_OB_TYPE,
        DO_TP_SIZE, DO_TP_NAME, S /* tp_repr */, DO_TP_FLAGS,
        DO_TUPLE_SIZE, DO_TUPLE_OB_ITEM, DO_TUPLE_OB_SIZE,
        DO_LIST_SIZE, DO_LIST_OB_ITEM, S /* list ob_size */,
        DO_SET_SIZE, DO_SET_USED, DO_SET_TABLE, DO_SET_MASK,
        DO_DICT_SIZE, DO_DICT_MA_KEYS, DO_DICT_MA_VALUES,
        DO_FLOAT_SIZE, DO_FLOAT_OB_FVAL,
        DO_LONG_SIZE, DO_LONG_LV_TAG, DO_LONG_OB_DIGIT,
        DO_BYTES_SIZE, DO_BYTES_OB_SIZE, DO_BYTES_OB_SVAL,
        DO_STR_SIZE, DO_STR_STATE, DO_STR_LENGTH, DO_STR_ASCIIOBJECT_SIZE,
        DO_GC_SIZE, DO_GC_COLLECTING,
        DO_GEN_SIZE, S /* gi_name */, DO_GEN_IFRAME, DO_GEN_FRAME_STATE,
        S, S,                   /* llist_node: next, prev */
        S, S, S, S, S, S,       /* debugger_support */
};

/* 3.15 (from 3.15.0b4 on): the thread's base frame, profiling, GIL and exception fields, the
 * exception stack item, tp_basicsize/tp_dictoffset, heap types, the compact unicode size and
 * more of the GC state. */
static const uint8_t block_315[] = {
        DO_COOKIE, DO_VERSION, DO_FREE_THREADED,
        DO_RT_SIZE, S /* finalizing */, DO_RT_INTERPRETERS_HEAD,
        DO_IS_SIZE, DO_IS_ID, DO_IS_NEXT, DO_IS_THREADS_HEAD, S /* threads_main */, DO_IS_GC,
        DO_IS_IMPORTS_MODULES, S /* sysdict */, S /* builtins */, DO_IS_CEVAL_GIL, DO_IS_GIL_RUNTIME_STATE,
        S /* gil enabled */, DO_IS_GIL_LOCKED, DO_IS_GIL_HOLDER, S /* code_object_generation */,
        S /* tlbc_generation */,
        DO_TS_SIZE, S /* prev */, DO_TS_NEXT, DO_TS_INTERP, DO_TS_CURRENT_FRAME, S /* base_frame */,
        S /* last_profiled_frame */, S /* last_profiled_frame_seq */, DO_TS_THREAD_ID,
        DO_TS_NATIVE_THREAD_ID, S /* datastack_chunk */, S /* status */, DO_TS_HOLDS_GIL,
        S /* gil_requested */, DO_TS_CURRENT_EXCEPTION, DO_TS_EXC_STATE,
        DO_ERR_EXC_VALUE,
        DO_IF_SIZE, DO_IF_PREVIOUS, DO_IF_EXECUTABLE, DO_IF_INSTR_PTR, DO_IF_LOCALSPLUS, DO_IF_OWNER,
        DO_IF_STACKPOINTER, DO_IF_TLBC_INDEX,
        DO_CO_SIZE, DO_CO_FILENAME, DO_CO_NAME, DO_CO_QUALNAME, DO_CO_LINETABLE, DO_CO_FIRSTLINENO,
        DO_CO_ARGCOUNT, DO_CO_LOCALSPLUSNAMES, DO_CO_LOCALSPLUSKINDS, DO_CO_CODE_ADAPTIVE, DO_CO_TLBC,
        DO_OB_SIZE, DO_OB_TYPE,
        DO_TP_SIZE, DO_TP_NAME, S /* tp_repr */, DO_TP_FLAGS, S /* tp_basicsize */, S /* tp_dictoffset */,
        S, S,                   /* heap_type_object: size, ht_cached_keys */
        DO_TUPLE_SIZE, DO_TUPLE_OB_ITEM, DO_TUPLE_OB_SIZE,
        DO_LIST_SIZE, DO_LIST_OB_ITEM, S /* list ob_size */,
        DO_SET_SIZE, DO_SET_USED, DO_SET_TABLE, DO_SET_MASK,
        DO_DICT_SIZE, DO_DICT_MA_KEYS, DO_DICT_MA_VALUES,
        DO_FLOAT_SIZE, DO_FLOAT_OB_FVAL,
        DO_LONG_SIZE, DO_LONG_LV_TAG, DO_LONG_OB_DIGIT,
        DO_BYTES_SIZE, DO_BYTES_OB_SIZE, DO_BYTES_OB_SVAL,
        DO_STR_SIZE, DO_STR_STATE, DO_STR_LENGTH, DO_STR_ASCIIOBJECT_SIZE, DO_STR_COMPACT_SIZE,
        DO_GC_SIZE, DO_GC_COLLECTING, S /* frame */, S /* generation_stats_size */, S /* generation_stats */,
        DO_GEN_SIZE, S /* gi_name */, DO_GEN_IFRAME, DO_GEN_FRAME_STATE,
        S, S,                   /* llist_node */
        S, S, S, S, S, S,       /* debugger_support */
};
#undef S

static const struct block_layout {
        unsigned minor;
        uint32_t first_hex;             /* the first release with this list */
        const uint8_t *words;
        size_t n;
} block_layouts[] = {
        /* Earlier pre-releases had other lists: free_threaded came in 3.13.0rc2, 3.14.0b2 added
         * four words, 3.15.0b4 one.  Final releases have kept each minor's list (checked on
         * 3.13.0/.5/.15/.18, 3.14.2/.8/.10 and 3.15.0/.2). */
        { 13, 0x030D00C2, block_313, sizeof(block_313) },
        { 14, 0x030E00B2, block_314, sizeof(block_314) },
        { 15, 0x030F00B4, block_315, sizeof(block_315) },
};

/* No CPython struct the analyzer reads comes near this; a bigger "size" means
 * we are not looking at a debug-offsets block. */
#define MAX_STRUCT_SIZE (1u << 20)

struct block {
        const uint8_t *raw;
        int16_t at[_DO_MAX];            /* word index of each field, -1 when the list has none */
        bool bad;
};

/* The core is x86-64, so the words are little-endian whatever we run on. */
static uint64_t word_at(const struct block *b, unsigned i) {
        return le64_get(b->raw + (size_t)i * 8);
}

static bool has(const struct block *b, enum do_field f) {
        return b->at[f] >= 0;
}

static uint64_t size_word(struct block *b, enum do_field f) {
        uint64_t v = has(b, f) ? word_at(b, (unsigned)b->at[f]) : 0;

        if (v == 0 || v > MAX_STRUCT_SIZE)
                b->bad = true;
        return v;
}

/* An offset into a struct of `size` bytes (as declared by the block); NONE when the list lacks it. */
static py_off off_word(struct block *b, enum do_field f, uint64_t size) {
        uint64_t v;

        if (!has(b, f))
                return NONE;
        v = word_at(b, (unsigned)b->at[f]);
        if (v >= size || v >= MAX_STRUCT_SIZE) {
                b->bad = true;
                return NONE;
        }
        return (py_off)v;
}

static const struct block_layout *block_layout_for(uint64_t version) {
        unsigned major = (unsigned)(version >> 24) & 0xff, minor = (unsigned)(version >> 16) & 0xff;

        if (major != 3)
                return NULL;
        for (size_t i = 0; i < sizeof(block_layouts) / sizeof(block_layouts[0]); i++)
                if (block_layouts[i].minor == minor)
                        return version >= block_layouts[i].first_hex ? &block_layouts[i] : NULL;
        return NULL;
}

/*
 * A free-threaded build (Py_GIL_DISABLED) puts ob_tid, the local and shared
 * reference counts and a lock before ob_type: every object is longer at the
 * front by the same amount, and the structs that are not objects (runtime,
 * interpreter, thread, frame, dict keys and values) are unchanged.  The block
 * describes most object fields itself; the others -- the table's, for the
 * default build -- move by the difference of the two ob_type offsets.
 * tests/layout checks the result against a free-threaded build's headers.
 */
static void move(py_off *off, py_off by) {
        if (*off != NONE)
                *off += by;
}

static int move_object_fields(const struct block *b, struct py_layout *l) {
        uint64_t ob_type = word_at(b, (unsigned)b->at[DO_OB_TYPE]);
        py_off d;

        /* pointer-aligned, and further on, but not by more than a header's worth */
        if (ob_type <= (uint64_t)l->object.ob_type || ob_type > 64 || ob_type % 8 != 0)
                return -EINVAL;
        d = (py_off)ob_type - l->object.ob_type;
        l->free_threaded = true;

        py_off *fields[] = {
                &l->exc.args,
                &l->code.argcount, &l->code.posonlyargcount, &l->code.kwonlyargcount, &l->code.nlocals,
                &l->code.flags, &l->code.firstlineno, &l->code.code, &l->code.filename, &l->code.name,
                &l->code.qualname, &l->code.lnotab, &l->code.linetable, &l->code.varnames,
                &l->code.cellvars, &l->code.freevars, &l->code.localsplusnames, &l->code.localspluskinds,
                &l->code.firsttraceable, &l->code.code_adaptive,
                &l->object.ob_type, &l->object.ob_size, &l->object.tp_name, &l->object.tp_flags,
                &l->object.tp_basicsize, &l->object.tp_dictoffset, &l->object.ht_cached_keys,
                &l->module.md_state, &l->weakref.wr_object,
                &l->bytes.ob_size, &l->bytes.ob_sval,
                &l->unicode.length, &l->unicode.state, &l->unicode.ascii_data, &l->unicode.compact_data,
                &l->unicode.data_any,
                &l->seq.tuple_items, &l->seq.list_items,
                &l->num.long_lv_tag, &l->num.long_digits, &l->num.float_fval, &l->num.cell_ref,
                &l->dict.ma_used, &l->dict.ma_keys, &l->dict.ma_values,
                &l->set.mask, &l->set.table, &l->set.used,
        };
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                move(fields[i], d);
        /* the managed dict pointer is in the pre-header, right before the object: the default
         * build has the GC links (two words) between them */
        if (l->object.managed_dict != NONE)
                l->object.managed_dict = -8;
        return 0;
}

int py_layout_from_debug_offsets(const void *raw, size_t len, struct py_layout *out, uint64_t *version_out) {
        struct block b = { .raw = raw, .bad = false };
        const struct block_layout *bl;
        const struct py_layout *base;
        uint64_t version, rt, is, ts, ifr, co, ob, tp, tup, list, dict, flt, lng, bytes, str, gc, set = 0;
        int r;
        py_off gil, locked, holder, gc_base;
        struct py_layout l;

        if (!raw || !out || len < 16 || memcmp(raw, "xdebugpy", 8) != 0)
                return -EINVAL;
        version = word_at(&b, 1);
        if (version_out)
                *version_out = version;
        bl = block_layout_for(version);
        if (!bl)
                return -EPROTONOSUPPORT;
        if (len < bl->n * 8)
                return -EINVAL;
        for (size_t f = 0; f < _DO_MAX; f++)
                b.at[f] = -1;
        for (size_t i = 0; i < bl->n; i++)
                if (bl->words[i] != DO_SKIP)
                        b.at[bl->words[i]] = (int16_t)i;
        base = py_layout_for(3, bl->minor);
        if (!base)
                return -EPROTONOSUPPORT;
        l = *base;
        if (word_at(&b, (unsigned)b.at[DO_FREE_THREADED]) != 0 &&
            (r = move_object_fields(&b, &l)) < 0)
                return r;

        rt = size_word(&b, DO_RT_SIZE);
        is = size_word(&b, DO_IS_SIZE);
        ts = size_word(&b, DO_TS_SIZE);
        ifr = size_word(&b, DO_IF_SIZE);
        co = size_word(&b, DO_CO_SIZE);
        ob = size_word(&b, DO_OB_SIZE);
        tp = size_word(&b, DO_TP_SIZE);
        tup = size_word(&b, DO_TUPLE_SIZE);
        list = size_word(&b, DO_LIST_SIZE);
        dict = size_word(&b, DO_DICT_SIZE);
        flt = size_word(&b, DO_FLOAT_SIZE);
        lng = size_word(&b, DO_LONG_SIZE);
        bytes = size_word(&b, DO_BYTES_SIZE);
        str = size_word(&b, DO_STR_SIZE);
        gc = size_word(&b, DO_GC_SIZE);
        if (has(&b, DO_SET_SIZE))
                set = size_word(&b, DO_SET_SIZE);
        if (b.bad)
                return -EINVAL;

        l.runtime.interpreters_head = off_word(&b, DO_RT_INTERPRETERS_HEAD, rt);

        l.interp.next = off_word(&b, DO_IS_NEXT, is);
        l.interp.id = off_word(&b, DO_IS_ID, is);
        l.interp.tstate_head = off_word(&b, DO_IS_THREADS_HEAD, is);
        l.interp.modules = off_word(&b, DO_IS_IMPORTS_MODULES, is);
        l.interp.ceval_gil = off_word(&b, DO_IS_CEVAL_GIL, is);
        /* The block gives the GC state's offset in the interpreter and
         * `collecting` within the GC state; we keep the sum. */
        gc_base = off_word(&b, DO_IS_GC, is);
        l.interp.gc_collecting = off_word(&b, DO_GC_COLLECTING, gc);
        if (!b.bad && (uint64_t)gc_base + gc > is)
                b.bad = true;
        l.interp.gc_collecting += gc_base;
        /* locked/holder are given relative to the interpreter (its embedded
         * _gil); the analyzer follows ceval.gil, so it needs them relative
         * to the _gil_runtime_state. */
        gil = off_word(&b, DO_IS_GIL_RUNTIME_STATE, is);
        locked = off_word(&b, DO_IS_GIL_LOCKED, is);
        holder = off_word(&b, DO_IS_GIL_HOLDER, is);
        if (locked < gil || holder < gil)
                b.bad = true;
        l.gil.locked = locked - gil;
        l.gil.last_holder = holder - gil;

        l.tstate.next = off_word(&b, DO_TS_NEXT, ts);
        l.tstate.interp = off_word(&b, DO_TS_INTERP, ts);
        l.tstate.current_frame = off_word(&b, DO_TS_CURRENT_FRAME, ts);
        l.tstate.thread_id = off_word(&b, DO_TS_THREAD_ID, ts);
        l.tstate.native_thread_id = off_word(&b, DO_TS_NATIVE_THREAD_ID, ts);
        if (has(&b, DO_TS_HOLDS_GIL))
                l.tstate.holds_gil = off_word(&b, DO_TS_HOLDS_GIL, ts);
        if (has(&b, DO_TS_CURRENT_EXCEPTION))
                l.tstate.current_exception = off_word(&b, DO_TS_CURRENT_EXCEPTION, ts);
        if (has(&b, DO_TS_EXC_STATE))
                l.tstate.exc_state = off_word(&b, DO_TS_EXC_STATE, ts);
        /* the stack item has no size of its own: its field must leave room in the thread state */
        if (has(&b, DO_ERR_EXC_VALUE) && l.tstate.exc_state != NONE)
                l.err_stackitem.exc_value = off_word(&b, DO_ERR_EXC_VALUE, ts - (uint64_t)l.tstate.exc_state);

        l.iframe.previous = off_word(&b, DO_IF_PREVIOUS, ifr);
        l.iframe.code = off_word(&b, DO_IF_EXECUTABLE, ifr);
        l.iframe.instr = off_word(&b, DO_IF_INSTR_PTR, ifr);
        l.iframe.localsplus = off_word(&b, DO_IF_LOCALSPLUS, ifr + 1);  /* a flexible array: may be at the end */
        l.iframe.owner = off_word(&b, DO_IF_OWNER, ifr);
        if (has(&b, DO_IF_STACKPOINTER))
                l.iframe.stackpointer = off_word(&b, DO_IF_STACKPOINTER, ifr);
        /* thread-local bytecode: the words are 0 (and mean nothing) in a default build */
        if (l.free_threaded && has(&b, DO_IF_TLBC_INDEX) && has(&b, DO_CO_TLBC)) {
                l.iframe.tlbc_index = off_word(&b, DO_IF_TLBC_INDEX, ifr);
                l.code.tlbc = off_word(&b, DO_CO_TLBC, co);
        }

        l.code.filename = off_word(&b, DO_CO_FILENAME, co);
        l.code.name = off_word(&b, DO_CO_NAME, co);
        l.code.qualname = off_word(&b, DO_CO_QUALNAME, co);
        l.code.linetable = off_word(&b, DO_CO_LINETABLE, co);
        l.code.firstlineno = off_word(&b, DO_CO_FIRSTLINENO, co);
        l.code.argcount = off_word(&b, DO_CO_ARGCOUNT, co);
        l.code.localsplusnames = off_word(&b, DO_CO_LOCALSPLUSNAMES, co);
        l.code.localspluskinds = off_word(&b, DO_CO_LOCALSPLUSKINDS, co);
        l.code.code_adaptive = off_word(&b, DO_CO_CODE_ADAPTIVE, co + 1);      /* a flexible array */

        l.object.ob_type = off_word(&b, DO_OB_TYPE, ob);
        l.object.tp_name = off_word(&b, DO_TP_NAME, tp);
        l.object.tp_flags = off_word(&b, DO_TP_FLAGS, tp);
        /* ob_size is PyVarObject's; the tuple's copy of it is the same field. */
        l.object.ob_size = off_word(&b, DO_TUPLE_OB_SIZE, tup);

        l.seq.tuple_items = off_word(&b, DO_TUPLE_OB_ITEM, tup + 1);           /* a flexible array */
        l.seq.list_items = off_word(&b, DO_LIST_OB_ITEM, list);

        if (set) {
                l.set.used = off_word(&b, DO_SET_USED, set);
                l.set.table = off_word(&b, DO_SET_TABLE, set);
                l.set.mask = off_word(&b, DO_SET_MASK, set);
        }
        l.dict.ma_keys = off_word(&b, DO_DICT_MA_KEYS, dict);
        l.dict.ma_values = off_word(&b, DO_DICT_MA_VALUES, dict);
        l.num.float_fval = off_word(&b, DO_FLOAT_OB_FVAL, flt);
        l.num.long_lv_tag = off_word(&b, DO_LONG_LV_TAG, lng);
        /* ob_digit is a flexible array: it may start at sizeof(PyLongObject) - sizeof(digit) */
        l.num.long_digits = off_word(&b, DO_LONG_OB_DIGIT, lng);

        l.bytes.ob_size = off_word(&b, DO_BYTES_OB_SIZE, bytes);
        l.bytes.ob_sval = off_word(&b, DO_BYTES_OB_SVAL, bytes);

        l.unicode.state = off_word(&b, DO_STR_STATE, str);
        l.unicode.length = off_word(&b, DO_STR_LENGTH, str);
        /* Sizes, not offsets: compact data starts right after them. */
        l.unicode.ascii_data = off_word(&b, DO_STR_ASCIIOBJECT_SIZE, str + 1);
        if (has(&b, DO_STR_COMPACT_SIZE))
                l.unicode.compact_data = off_word(&b, DO_STR_COMPACT_SIZE, str + 1);

        /* generators and coroutines (3.14+): asyncio tasks' suspended stacks (py_tasks.c); the
         * frame states are the table's */
        if (has(&b, DO_GEN_SIZE) && l.gen.present) {
                uint64_t gen = size_word(&b, DO_GEN_SIZE);

                l.gen.iframe = off_word(&b, DO_GEN_IFRAME, gen);
                l.gen.frame_state = off_word(&b, DO_GEN_FRAME_STATE, gen);
        }

        if (b.bad)
                return -EINVAL;
        *out = l;
        return 0;
}
