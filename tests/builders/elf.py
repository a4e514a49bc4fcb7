"""A minimal ELF64 x86-64 executable made from bytes: one PT_LOAD segment with an ``exit(0)``
syscall sequence and a section header table (null, ``.text``, ``.shstrtab``)."""

from __future__ import annotations

import struct

ET_EXEC = 2
ET_DYN = 3
EM_X86_64 = 62


def elf64(*, etype: int = ET_EXEC, overlay: bytes = b"") -> bytes:
    code = b"\x31\xff\xb8\x3c\x00\x00\x00\x0f\x05"  # xor edi,edi; mov eax,60; syscall
    base = 0x400000
    ehsize, phentsize, shentsize = 64, 56, 64
    code_off = ehsize + phentsize
    shstrtab = b"\0.text\0.shstrtab\0"
    shstr_off = code_off + len(code)
    shoff = (shstr_off + len(shstrtab) + 7) // 8 * 8
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        etype,
        EM_X86_64,
        1,
        base + code_off,
        ehsize,
        shoff,
        0,
        ehsize,
        phentsize,
        1,
        shentsize,
        3,
        2,
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, shstr_off, shstr_off, 0x1000)
    sh_null = b"\0" * shentsize
    sh_text = struct.pack("<IIQQQQIIQQ", 1, 1, 6, base + code_off, code_off, len(code), 0, 0, 16, 0)
    sh_str = struct.pack("<IIQQQQIIQQ", 7, 3, 0, 0, shstr_off, len(shstrtab), 0, 0, 1, 0)
    body = header + phdr + code + shstrtab
    body = body.ljust(shoff, b"\0")
    return body + sh_null + sh_text + sh_str + overlay
