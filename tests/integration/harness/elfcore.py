# -*- coding: utf-8 -*-
"""A 64-bit little-endian ELF core to patch: its dumped memory and notes.

    core = CoreFile(path)
    core.u64(addr), core.offset(addr), core.put64(addr, v)
    core.notes(ntype) -> [(file offset of the descriptor, its size)]
    core.auxv_slot(AT_X) -> file offset of that entry's value
    core.put(offset, data); core.write(path)

The file is mapped, not read (a free-threaded core is 1 GiB of holes); the
patches are kept apart, seen by u64(), and applied to a sparse copy.
"""
import mmap
import struct
import subprocess


class CoreFile(object):
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as fh:
            self.data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.patches = {}
        phoff, = struct.unpack_from("<Q", self.data, 0x20)
        phnum, = struct.unpack_from("<H", self.data, 0x38)
        self.loads, self._notes = [], []
        for k in range(phnum):
            p_type, _, off, vaddr, _, filesz = struct.unpack_from(
                "<IIQQQQ", self.data, phoff + 56 * k)
            if p_type == 1 and filesz:          # PT_LOAD
                self.loads.append((vaddr, off, filesz))
            elif p_type == 4:                   # PT_NOTE
                o = off
                while o + 12 <= off + filesz:
                    namesz, descsz, ntype = struct.unpack_from("<III", self.data, o)
                    desc = o + 12 + ((namesz + 3) & ~3)
                    self._notes.append((ntype, desc, descsz))
                    o = desc + ((descsz + 3) & ~3)

    def offset(self, addr, size=8):
        """The file offset of the dumped bytes at addr, or None."""
        for vaddr, off, filesz in self.loads:
            if vaddr <= addr and addr + size <= vaddr + filesz:
                return off + addr - vaddr
        return None

    def u64(self, addr):
        o = self.offset(addr)
        if o is None:
            return None
        if o in self.patches:
            return struct.unpack("<Q", self.patches[o])[0]
        return struct.unpack_from("<Q", self.data, o)[0]

    def put(self, offset, data):
        self.patches[offset] = bytes(data)

    def put64(self, addr, value):
        self.put(self.offset(addr), struct.pack("<Q", value))

    def notes(self, ntype):
        return [(d, n) for t, d, n in self._notes if t == ntype]

    def auxv_slot(self, key):
        """The file offset of auxv entry key's value (NT_AUXV), or None."""
        for desc, size in self.notes(6):
            for i in range(0, size - 15, 16):
                k, = struct.unpack_from("<Q", self.data, desc + i)
                if k == key:
                    return desc + i + 8
        return None

    def write(self, path):
        subprocess.check_call(["cp", "--sparse=always", self.path, path])
        with open(path, "r+b") as fh:
            for o, data in sorted(self.patches.items()):
                fh.seek(o)
                fh.write(data)
