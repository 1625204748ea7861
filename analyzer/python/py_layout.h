/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * py_layout: where CPython keeps the fields the analyzer reads, per minor
 * version, on x86-64.
 *
 * This is the one home of CPython struct offsets.  Every other module asks
 * for a `struct py_layout` and never writes an offset of its own.  The table,
 * py_layout_table.h, is generated: tests/layout/check_layout.c, compiled
 * against one interpreter's headers, derives every field below for that
 * minor version and prints its entry; `tests/layout/run-layout-check --write`
 * rewrites the entries of the interpreters installed, and `make check`
 * regenerates them and fails on any difference.  A field added here is added
 * to check_layout.c's field list and derivation, then the table rewritten.
 *
 * For 3.13 and later the interpreter publishes most offsets itself in
 * _Py_DebugOffsets at the start of _PyRuntime; py_layout_from_debug_offsets()
 * overlays those on the nearest table entry so that a newer patch release
 * (or a minor release we have no table for) still works.
 *
 * Offsets are in bytes.  PY_OFF_NONE marks a field that does not exist in
 * that version.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t py_off;
#define PY_OFF_NONE ((py_off)-1)

/* How a code object maps a bytecode offset to a line number. */
enum py_line_format {
        PY_LINES_LNOTAB27,      /* 2.7-3.5: co_lnotab, unsigned line deltas */
        PY_LINES_LNOTAB36,      /* 3.6-3.9: co_lnotab, signed line deltas */
        PY_LINES_LINETABLE310,  /* 3.10: co_linetable (start delta, line delta) pairs */
        PY_LINES_LOCATIONS311,  /* 3.11+: co_linetable location table (varints) */
};

/* Where the interpreter list and the "current thread" live. */
enum py_runtime_kind {
        PY_RUNTIME_INTERP_HEAD, /* 2.7, 3.6: static interp_head + _PyThreadState_Current */
        PY_RUNTIME_PYRUNTIME,   /* 3.7+: _PyRuntime */
};

/* How to learn which thread holds the GIL. */
enum py_gil_kind {
        PY_GIL_TSTATE_CURRENT,  /* <=3.11: the "current" tstate is the holder (NULL when released) */
        PY_GIL_INTERP_GIL,      /* 3.12+: interp->ceval.gil -> { locked, last_holder } */
};

/* Where "the garbage collector is running" is recorded. */
enum py_gc_kind {
        PY_GC_STATIC_SYMBOL,    /* 2.7, 3.6: static int `collecting` in gcmodule.c (.symtab) */
        PY_GC_RUNTIME,          /* 3.7, 3.8: _PyRuntime.gc.collecting */
        PY_GC_INTERP,           /* 3.9+: interp->gc.collecting */
};

/* How a thread's frames are chained. */
enum py_frame_kind {
        PY_FRAMES_OBJECTS,      /* <=3.10: tstate->frame, PyFrameObject.f_back */
        PY_FRAMES_CFRAME,       /* 3.11, 3.12: tstate->cframe->current_frame, _PyInterpreterFrame */
        PY_FRAMES_CURRENT,      /* 3.13+: tstate->current_frame, _PyInterpreterFrame */
};

struct py_layout {
        unsigned major, minor;

        enum py_runtime_kind runtime_kind;
        enum py_gil_kind gil_kind;
        enum py_gc_kind gc_kind;
        enum py_frame_kind frame_kind;
        enum py_line_format line_format;

        /* _PyRuntimeState (3.7+) */
        struct {
                py_off interpreters_head;
                py_off gilstate_tstate_current; /* 3.7-3.11 (_Py_atomic_address: value at +0) */
                py_off gc_collecting;           /* 3.7-3.8 */
        } runtime;

        /* PyInterpreterState */
        struct {
                py_off next;
                py_off id;                      /* int64_t, 3.7+: 0 is the main interpreter */
                py_off tstate_head;
                py_off gc_collecting;           /* 3.9+ */
                py_off ceval_gil;               /* 3.12+: struct _gil_runtime_state * */
                py_off modules;                 /* sys.modules dict */
        } interp;

        /* struct _gil_runtime_state (3.12+) */
        struct {
                py_off locked;                  /* int (3.13: int) */
                py_off last_holder;             /* PyThreadState * (atomic address) */
        } gil;

        /* PyThreadState */
        struct {
                py_off next;
                py_off interp;
                py_off frame;                   /* <=3.10: PyFrameObject * */
                py_off cframe;                  /* 3.10-3.12: _PyCFrame * (the frame chain starts
                                         * there in 3.11-3.12 only) */
                py_off current_frame;           /* 3.13+: _PyInterpreterFrame * */
                py_off thread_id;               /* unsigned long: the pthread_t */
                py_off native_thread_id;        /* 3.11+: the kernel tid */
                py_off holds_gil;               /* 3.15+: int, this thread holds its interpreter's GIL */
                py_off current_exception;       /* 3.12+: PyObject *, the exception being raised */
                py_off exc_state;               /* 3.11+: _PyErr_StackItem, the exception being handled */
        } tstate;

        /* _PyErr_StackItem (3.11+) */
        struct {
                py_off exc_value;
        } err_stackitem;

        /* PyBaseExceptionObject */
        struct {
                py_off args;                    /* the args tuple: its first item is the message */
        } exc;

        /* _PyCFrame (3.11-3.12) */
        struct {
                py_off current_frame;
        } cframe;

        /* PyFrameObject (<=3.10) */
        struct {
                py_off back;
                py_off code;
                py_off lasti;                   /* int: bytes (<=3.9) or code units (3.10) */
                py_off lineno;
                py_off localsplus;
        } frame;

        /* _PyInterpreterFrame (3.11+) */
        struct {
                py_off previous;
                py_off code;                    /* f_code (3.11-3.12), f_executable (3.13+) */
                py_off instr;                   /* prev_instr (3.11-3.12), instr_ptr (3.13+) */
                py_off localsplus;
                py_off stacktop;                /* int, 3.11-3.13 */
                py_off stackpointer;            /* _PyStackRef *, 3.14+ */
                py_off owner;                   /* char enum _frameowner */
                py_off tlbc_index;              /* int32_t, free-threaded 3.14+: which copy of the
                                                 * bytecode (code.tlbc) instr points into */
                py_off is_entry;                /* bool, 3.11 only */
        } iframe;
        int owner_cstack;                       /* 3.12+: the first owner that is not Python code:
                                                 * FRAME_OWNED_BY_CSTACK (3.12, 3.13), then
                                                 * FRAME_OWNED_BY_INTERPRETER (3.14+: entry and base
                                                 * frames); -1 before */
        int owner_generator;                    /* FRAME_OWNED_BY_GENERATOR, or -1 */
        bool instr_is_current;                  /* 3.13+: instr_ptr is the instruction running, not the previous one */
        bool free_threaded;                     /* a Py_GIL_DISABLED build (3.13t+): its object header
                                                 * is longer, so every object field is further on */
        bool stackrefs;                         /* 3.14+: f_executable and the fast slots are _PyStackRef:
                                                 * bits 1 = NULL, (bits & 3) == 3 a tagged int (bits >> 2),
                                                 * otherwise the object at bits & ~1 */

        /* PyCodeObject */
        struct {
                py_off argcount;
                py_off posonlyargcount;         /* 3.8+ */
                py_off kwonlyargcount;          /* 3+ */
                py_off nlocals;
                py_off flags;
                py_off firstlineno;
                py_off code;                    /* co_code bytes (<=3.10) */
                py_off filename;
                py_off name;
                py_off qualname;                /* 3.11+ */
                py_off lnotab;                  /* co_lnotab (<=3.9) */
                py_off linetable;               /* co_linetable (3.10+) */
                py_off varnames;                /* <=3.10 */
                py_off cellvars;                /* <=3.10 */
                py_off freevars;                /* <=3.10 */
                py_off localsplusnames;         /* 3.11+ */
                py_off localspluskinds;         /* 3.11+ */
                py_off firsttraceable;          /* _co_firsttraceable, 3.11-3.13 */
                py_off code_adaptive;           /* co_code_adaptive, 3.11+ */
                py_off tlbc;                    /* co_tlbc, free-threaded 3.14+: _PyCodeArray *,
                                                 * { Py_ssize_t size; char *entries[]; } */
        } code;

        /* PyObject / PyVarObject / PyTypeObject */
        struct {
                py_off ob_type;
                py_off ob_size;
                py_off tp_name;
                py_off tp_flags;
                py_off tp_basicsize;            /* Py_ssize_t */
                py_off tp_dictoffset;           /* Py_ssize_t: where an instance's dict pointer is (> 0) */
                py_off ht_cached_keys;          /* 3.13+: PyHeapTypeObject's shared keys, which key the
                                                 * inline values of its instances */
                py_off managed_dict;            /* 3.13+: the managed dict pointer, this many bytes from
                                                 * the object (negative: before it) */
        } object;

        /* PyModuleObject (3.13+) */
        struct {
                py_off md_state;                /* void *: an extension's own state */
        } module;

        /* PyWeakReference */
        struct {
                py_off wr_object;               /* the referent, None once it is gone */
        } weakref;

        /* PyBytesObject (3.x) or PyStringObject (2.7) */
        struct {
                py_off ob_size;
                py_off ob_sval;
        } bytes;

        /* PyUnicodeObject (3.x; 2.7's unicode is not used for names) */
        struct {
                py_off length;
                py_off state;                   /* bitfield word: kind bits 2-4, compact 5, ascii 6 */
                py_off ascii_data;              /* sizeof(PyASCIIObject) */
                py_off compact_data;            /* sizeof(PyCompactUnicodeObject) */
                py_off data_any;                /* PyUnicodeObject.data.any */
        } unicode;

        /* PyTupleObject, PyListObject */
        struct {
                py_off tuple_items;
                py_off list_items;
        } seq;

        /*
         * --locals (py_locals.c): the objects whose values are rendered.
         */

        /* PyUnicodeObject of 2.7 (a separate object from 3.x's str) */
        struct {
                py_off length;                  /* Py_ssize_t */
                py_off str;                     /* Py_UNICODE * */
                int char_size;                  /* Py_UNICODE_SIZE: 2 (narrow) or 4 */
        } unicode27;

        /* PyIntObject (2.7), PyLongObject, PyFloatObject, PyCellObject */
        struct {
                py_off int_ival;                /* 2.7: long ob_ival */
                py_off long_lv_tag;             /* 3.12+: sign (bits 0-1) and digit count (>> 3) */
                py_off long_digits;             /* ob_digit (3.12+: long_value.ob_digit); count in
                                                 * ob_size (signed) before 3.12 */
                int long_shift;                 /* PyLong_SHIFT: bits per digit */
                int long_digit_size;            /* sizeof(digit) */
                py_off float_fval;              /* double ob_fval */
                py_off cell_ref;                /* PyObject *ob_ref */
        } num;

        /* PyDictObject and its keys/values */
        enum py_dict_kind {
                PY_DICT_TABLE27,                /* 2.7: ma_mask + ma_table of PyDictEntry */
                PY_DICT_KEYS36,                 /* 3.6-3.10: dk_size, index width from it; split
                                                 * values are a PyObject * array in entry order */
                PY_DICT_KEYS311,                /* 3.11-3.12: dk_log2_size, dk_kind; split values
                                                 * with the insertion order in bytes before them */
                PY_DICT_KEYS313,                /* 3.13+: as 3.11, with the insertion order after
                                                 * values[capacity] */
        } dict_kind;
        struct {
                py_off ma_used;                 /* Py_ssize_t */
                py_off ma_keys;                 /* 3.6+ */
                py_off ma_values;               /* 3.6+ */
                py_off ma_mask;                 /* 2.7 */
                py_off ma_table;                /* 2.7 */
                py_off dk_size;                 /* 3.6-3.10: Py_ssize_t */
                py_off dk_log2_size;            /* 3.11+: uint8_t */
                py_off dk_log2_index_bytes;     /* 3.11+: uint8_t */
                py_off dk_kind;                 /* 3.11+: uint8_t, DICT_KEYS_GENERAL = 0 */
                py_off dk_nentries;             /* 3.6+: Py_ssize_t */
                py_off dk_indices;              /* 3.6+: start of the index table */
                py_off entry_size;              /* sizeof(PyDictKeyEntry) (2.7: PyDictEntry) */
                py_off entry_key;               /* me_key in it */
                py_off entry_value;             /* me_value in it */
                py_off unicode_entry_size;      /* 3.11+: sizeof(PyDictUnicodeEntry) */
                py_off unicode_entry_key;
                py_off unicode_entry_value;
                py_off values_values;           /* 3.11+: offsetof(PyDictValues, values) */
                py_off values_capacity;         /* 3.13+: uint8_t capacity */
                py_off values_size;             /* 3.13+: uint8_t size (entries in the order array) */
                py_off values_valid;            /* 3.13+: uint8_t, inline values still hold the attributes */
        } dict;

        /* PySetObject (set and frozenset) */
        struct {
                py_off mask;                    /* Py_ssize_t: table size - 1 */
                py_off table;                   /* setentry * */
                py_off used;
                py_off entry_size;              /* sizeof(setentry) */
                py_off entry_key;
        } set;

        /* PyGenObject / PyCoroObject (3.14+, from _Py_DebugOffsets; NONE before): what an asyncio
         * task's coroutine is suspended in */
        struct {
                bool present;                   /* the fields below are known */
                py_off iframe;                  /* the embedded _PyInterpreterFrame */
                py_off frame_state;             /* int8_t gi_frame_state */
                int yield_from;                 /* FRAME_SUSPENDED_YIELD_FROM: suspended in an await */
                int cleared;                    /* FRAME_CLEARED */
                int awaited_slot;               /* the awaited object is this many stack words below
                                                 * the frame's stackpointer */
        } gen;

        /* Constants of code objects and types (not offsets) */
        struct {
                int co_optimized;               /* CO_OPTIMIZED: locals live in the fast slots */
                int co_varargs;                 /* CO_VARARGS */
                int co_varkeywords;             /* CO_VARKEYWORDS */
                int fast_hidden;                /* 3.12+: CO_FAST_HIDDEN, else 0 */
                int fast_local;                 /* 3.11+: CO_FAST_LOCAL, else 0 */
                int fast_cell;                  /* 3.11+ */
                int fast_free;                  /* 3.11+ */
                uint32_t tpf_int;               /* Py_TPFLAGS_*_SUBCLASS bits, 0 when absent */
                uint32_t tpf_long;
                uint32_t tpf_list;
                uint32_t tpf_tuple;
                uint32_t tpf_bytes;             /* BYTES (3.x), STRING (2.7) */
                uint32_t tpf_unicode;
                uint32_t tpf_dict;
                uint32_t tpf_inline_values;     /* 3.13+: Py_TPFLAGS_INLINE_VALUES, else 0 */
                uint32_t tpf_managed_dict;      /* 3.13+: Py_TPFLAGS_MANAGED_DICT (used), else 0 */
        } consts;
};

/* The table entry for major.minor, or NULL when the version is unknown.
 * Costs a short table scan. */
const struct py_layout *py_layout_for(unsigned major, unsigned minor);

/* The table holds x86-64's layouts; this moves what differs on another ELF machine (EM_AARCH64:
 * one offset of 3.7-3.11). */
void py_layout_for_machine(struct py_layout *l, uint16_t machine);

/* The table's versions, oldest first, for --help and the tests. */
size_t py_layout_count(void);
const struct py_layout *py_layout_at(size_t i);

/*
 * Build a layout from the _Py_DebugOffsets block found at the start of
 * _PyRuntime (3.13+).  `raw` holds `len` bytes read from the runtime's
 * address.  The block's own field list is chosen by the version it declares
 * (3.13, 3.14, 3.15: words are inserted between minors, and 3.15's betas
 * before b4 differ from its release); the fields it describes come from it,
 * everything else from the table entry of that minor.
 *
 * Returns 0 and fills *out; -EINVAL when the cookie is missing, the block is
 * too short or an offset is implausible (outside the struct whose size the
 * block declares); -EPROTONOSUPPORT for a version whose block or table we do
 * not know.  A free-threaded block (3.13t+) gives a layout with
 * free_threaded set: the object fields the block does not describe are moved
 * by how much further its ob_type is than the table's.  *version (may be NULL) gets the
 * block's PY_VERSION_HEX whenever the cookie is right, so the caller can
 * name what it found.  Costs one pass over the block; no allocation.
 */
int py_layout_from_debug_offsets(const void *raw, size_t len, struct py_layout *out, uint64_t *version);

/* The _Py_DebugOffsets block is at most this long (3.15: 888 bytes). */
#define PY_DEBUG_OFFSETS_MAX 1024
