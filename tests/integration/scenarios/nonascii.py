# -*- coding: utf-8 -*-
"""(f) Non-ASCII function names and a non-ASCII file name (Python 3 only).

The module with the non-ASCII names is written at run time next to the
expectation file (so it stays readable as long as the cached core), as
u"módulo_ñ_日本_🐍.py", and loaded from that path."""
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

MODULE_NAME = u"m\u00f3dulo_\u00f1_\u65e5\u672c_\U0001f40d.py"
MODULE_SOURCE = u'''# -*- coding: utf-8 -*-
import os
import _common


def gr\u00f6\u00dfe_\u00f1(n):
    if n:
        return gr\u00f6\u00dfe_\u00f1(n - 1)
    _common.write_expectation("SIGABRT"); os.abort()


class \u00dcn\u00efcode(object):
    def m\u00e9thode_\u65e5\u672c(self):
        return gr\u00f6\u00dfe_\u00f1(2)


def \u5165\u53e3():
    \u00dcn\u00efcode().m\u00e9thode_\u65e5\u672c()
'''
ENTRY = u"\u5165\u53e3"


def main():
    _common.init("nonascii")
    if sys.version_info[0] < 3:
        _common.skip("non-ASCII identifiers need Python 3")
    import importlib.util
    d = os.path.join(os.path.dirname(os.path.abspath(_common.expect_path())),
                     "nonascii-src")
    if not os.path.isdir(d):
        os.makedirs(d)
    path = os.path.join(d, MODULE_NAME)
    with io.open(path, "w", encoding="utf-8") as fh:
        fh.write(MODULE_SOURCE)
    spec = importlib.util.spec_from_file_location("nonascii_module", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    getattr(mod, ENTRY)()


if __name__ == "__main__":
    main()
