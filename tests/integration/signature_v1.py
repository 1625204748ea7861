# -*- coding: utf-8 -*-
"""The crash signature of pystackd 1 (schema version 2 of the store), in
Python, computed from the analyzer's JSON report.

It mirrors, byte for byte, what the release computes in C:

* daemon/pystackd.c, gather_facts(): the signature is FNV-1a 64 (fnv():
  offset basis 0xcbf29ce484222325, prime 0x100000001b3, and after every
  string one more step with the byte 0xff as a separator; a NULL string is
  the separator alone) over signal_full_name(crashes.signal) and then, for
  each of at most 8 frames *with a function name* of the crashed thread,
  innermost first: the frame's kind, its function, and for a Python frame
  the base name of its file (path_base_name(): after the last '/'), for a
  native frame its library.  Printed "%016llx".  The title (signatures.title)
  is "SIG in FUNCTION (FILE:LINE)" of the innermost Python frame, plus
  " via C_FUNCTION" -- the outermost named native frame between the
  innermost Python frame and the next Python frame out -- or the signal's
  name alone when the innermost Python frame has no name (or there is none);
  snprintf() into 512 bytes, so at most 511 bytes.
* daemon/query.c, signal_full_name(): "SIG" + glibc's sigabbrev_np(), or the
  number in decimal for a signal it has no name for.
* daemon/store.c, store_ingest(): the rows gather_facts() reads.  threads:
  one row per entry of the report's "threads" (idx = its index), crashed =
  coalesce(json_extract($.crashed), 0); the crashed thread is the first row
  (lowest idx) whose crashed is true for SQLite, else idx 0.  frames: one row
  per entry of that thread's "frames" (idx 0 = the outermost, as in the
  report), kind = coalesce(json_extract($.kind), 'python'), function, file,
  line and library = json_extract() of the same-named fields.  gather_facts()
  reads them ORDER BY idx DESC LIMIT 4096.
* SQLite's JSON decoding and C strings: json_extract() turns a \\uXXXX
  escape of a lone surrogate (the analyzer's \\udcXX for a byte that is not
  UTF-8) into its 3-byte UTF-8 form, as Python's "surrogatepass" does, and
  a text stops at its first NUL for the C code (SQLite 3.40 already cuts it
  there).  Of a key given twice in one object json_extract() takes the
  first: loads() below does the same.

Where the release hashes crashes.signal (the kernel's %s that
pystack-coredump recorded), signature() takes the report's signal.number
unless given a signal; the two are the same signal.

Stdlib only, Python 3.
"""
import json
import re

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
MASK = (1 << 64) - 1
MAX_FRAMES = 8          # named frames hashed (counted < 8)
ROW_LIMIT = 4096        # frames read, innermost first (LIMIT 4096)
TITLE_SIZE = 512        # char title[512]

# glibc 2.36 sigabbrev_np(): 1..31 (29 is "POLL", not "IO"); NULL otherwise
_SIGABBREV = {
    1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
    8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE",
    14: "ALRM", 15: "TERM", 16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP",
    20: "TSTP", 21: "TTIN", 22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ",
    26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "POLL", 30: "PWR", 31: "SYS",
}


def signal_full_name(sig):
    """daemon/query.c signal_full_name() (bytes)."""
    a = _SIGABBREV.get(sig)
    return ("SIG" + a if a else "%d" % sig).encode()


def loads(text):
    """json.loads() keeping the first of duplicate keys, as json_extract()."""
    def first(pairs):
        d = {}
        for k, v in pairs:
            d.setdefault(k, v)
        return d
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return json.loads(text, object_pairs_hook=first)


def _c_text(v):
    """What sqlite3_column_text() hands the C code for the value
    json_extract() gave, as bytes up to the first NUL; None for SQL NULL."""
    if v is None:
        return None
    if v is True or v is False:
        s = "1" if v else "0"
    elif isinstance(v, int):
        s = "%d" % v
    elif isinstance(v, float):
        s = "%.15g" % v
        if re.match(r"^-?\d+$", s):
            s += ".0"
    elif isinstance(v, str):
        s = v
    else:           # an array or object: its JSON text
        s = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return s.encode("utf-8", "surrogatepass").split(b"\0", 1)[0]


def _c_int(v):
    """sqlite3_column_int() of an INTEGER-affinity column (frames.line)."""
    if v is None or isinstance(v, (dict, list)):
        return 0
    if v is True or v is False:
        return int(v)
    if isinstance(v, str):
        m = re.match(r"^\s*[+-]?(\d+)", v)
        v = int(m.group(0)) if m else 0
    v = int(v)
    if not -(1 << 63) <= v < (1 << 63):
        v = (1 << 63) - 1 if v > 0 else -(1 << 63)
    return ((v + (1 << 31)) & 0xffffffff) - (1 << 31)


_NUMERIC_PREFIX = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _sql_true(v):
    """WHERE crashed, for coalesce(json_extract($.crashed), 0) stored in an
    INTEGER column."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        m = _NUMERIC_PREFIX.match(v)
        try:
            return bool(m) and float(m.group(0)) != 0
        except ValueError:
            return False
    return False


def fnv(h, s):
    """daemon/pystackd.c fnv(): s is bytes or None."""
    for b in s or b"":
        h ^= b
        h = (h * FNV_PRIME) & MASK
    h ^= 0xff
    return (h * FNV_PRIME) & MASK


def _base_name(p):
    """path_base_name() on bytes; None -> b"" """
    if p is None:
        return b""
    return p.rsplit(b"/", 1)[-1]


def crashed_thread(report):
    """The thread whose frames the signature reads: the first one crashed,
    else the first one; None when the report has no threads."""
    threads = report.get("threads") if isinstance(report, dict) else None
    if not isinstance(threads, list) or not threads:
        return None
    for t in threads:
        if isinstance(t, dict) and _sql_true(t.get("crashed")):
            return t
    return threads[0] if isinstance(threads[0], dict) else None


def frame_rows(report):
    """The rows of the frames table gather_facts() reads, innermost first:
    (kind, function, file, line, library) as the C code sees them."""
    t = crashed_thread(report)
    frames = t.get("frames") if t else None
    if not isinstance(frames, list):
        return []
    rows = []
    for f in reversed(frames[-ROW_LIMIT:] if len(frames) > ROW_LIMIT else frames):
        if not isinstance(f, dict):
            f = {}
        kind = f.get("kind")
        rows.append((_c_text("python" if kind is None else kind),
                     _c_text(f.get("function")), _c_text(f.get("file")),
                     _c_int(f.get("line")), _c_text(f.get("library"))))
    return rows


def signature(report, signal=None):
    """(signature, title) of a report (a dict from loads(), or its JSON
    text): the signature as 16 lowercase hex digits (str), the title as the
    bytes pystackd stores.  signal: crashes.signal, by default the report's
    signal.number."""
    if isinstance(report, (str, bytes)):
        report = loads(report)
    if signal is None:
        signal = ((report.get("signal") or {}).get("number"))
    signal = _c_int(signal)
    sig_name = signal_full_name(signal)

    h = fnv(FNV_OFFSET, sig_name)
    counted = 0
    seen_python = gap_done = False
    first = None            # (function, file, line) of the innermost Python frame
    gap = via = None
    for kind, fn, file, line, lib in frame_rows(report):
        python = kind == b"python"
        if fn is not None and counted < MAX_FRAMES:
            h = fnv(h, kind)
            h = fnv(h, fn)
            h = fnv(h, _base_name(file) if python else lib)
            counted += 1
        if python and not seen_python:
            seen_python = True
            first = (fn, file, line)
        elif python and not gap_done:
            gap_done = True
            via = gap
            gap = None
        elif seen_python and not gap_done and fn is not None:
            gap = fn
    if first is not None and first[0] is not None:
        title = b"%s in %s (%s:%d)%s%s" % (
            sig_name, first[0], _base_name(first[1]), first[2],
            b" via " if via is not None else b"", via if via is not None else b"")
    else:
        title = sig_name
    return "%016x" % h, title[:TITLE_SIZE - 1]


def named_frames(report, n=MAX_FRAMES):
    """The frames the signature hashes, for diagnostics."""
    out = []
    for kind, fn, file, line, lib in frame_rows(report):
        if fn is None:
            continue
        out.append("%s %s (%s)" % (
            kind.decode("utf-8", "backslashreplace"),
            fn.decode("utf-8", "backslashreplace"),
            (_base_name(file) if kind == b"python" else lib or b"(null)")
            .decode("utf-8", "backslashreplace")))
        if len(out) >= n:
            break
    return out
