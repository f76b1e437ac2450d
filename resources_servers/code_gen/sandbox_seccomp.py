"""A seccomp filter that takes the network away (stdlib only; used by ``sandbox_launcher.py``).

For plans without a network namespace: after ``PR_SET_NO_NEW_PRIVS``, the program's process
gets a classic-BPF filter under which ``socket(2)`` fails with ``EACCES`` for every address
family but ``AF_UNIX`` (pipes and ``multiprocessing`` keep working), ``io_uring_setup(2)`` fails
(io_uring can open sockets without ``socket(2)``), and so does any syscall made through another
ABI (32-bit ``int 0x80`` or x32 on x86_64), where the numbers differ. The filter is inherited by
every child and cannot be removed.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import socket
import struct

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
X32_SYSCALL_BIT = 0x40000000
#: machine -> (AUDIT_ARCH_*, socket, io_uring_setup)
ARCHES = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}
# Offsets in struct seccomp_data: nr, arch, then (after the instruction pointer) the args.
NR, ARCH, ARG0 = 0, 4, 16


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def network_filter() -> bytes:
    """The BPF program (see the module docstring) for this machine's architecture."""
    machine = platform.machine()
    if machine not in ARCHES:
        raise OSError(f"no seccomp network filter for {machine}")
    arch, sys_socket, sys_io_uring_setup = ARCHES[machine]
    deny = SECCOMP_RET_ERRNO | errno.EACCES
    return b"".join(
        [
            _op(BPF_LD_W_ABS, ARCH),
            _op(BPF_JEQ_K, arch, jt=1),  # another ABI: deny
            _op(BPF_RET_K, deny),
            _op(BPF_LD_W_ABS, NR),
            _op(BPF_JGE_K, X32_SYSCALL_BIT, jt=5),  # x32 numbers: deny
            _op(BPF_JEQ_K, sys_io_uring_setup, jt=4),
            _op(BPF_JEQ_K, sys_socket, jf=2),  # not socket(): allow
            _op(BPF_LD_W_ABS, ARG0),  # the address family
            _op(BPF_JEQ_K, socket.AF_UNIX, jf=1),
            _op(BPF_RET_K, SECCOMP_RET_ALLOW),
            _op(BPF_RET_K, deny),
        ]
    )


def install_network_filter() -> None:
    """Apply the filter to this process (``PR_SET_NO_NEW_PRIVS`` must already be set)."""
    program = network_filter()
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"seccomp filter: {errno.errorcode.get(code, code)}")
