"""A seccomp filter for plans without namespaces (stdlib only; used by ``sandbox_launcher.py``).

After ``PR_SET_NO_NEW_PRIVS``, the program's process gets a classic-BPF filter under which
``socket(2)`` fails with ``EACCES`` for every address family but ``AF_UNIX`` (pipes and
``multiprocessing`` keep working); ``io_uring_setup(2)`` (it opens sockets without
``socket(2)``), ``ptrace(2)`` and ``process_vm_readv/writev(2)`` fail; signals to the launcher
and its init, to process groups or to every process (``kill(0|-N|-1)``) fail with ``EPERM``, so
a program cannot kill the launcher that cleans up after it; and any syscall made through another
ABI (32-bit ``int 0x80`` or x32 on x86_64), where the numbers differ, fails. The filter is
inherited by every child and cannot be removed.
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
X32_SYSCALL_BIT, NEGATIVE = 0x40000000, 0x80000000
#: machine -> AUDIT_ARCH_* and the syscall numbers the filter looks at
ARCHES: dict[str, dict[str, int]] = {
    "x86_64": {
        "arch": 0xC000003E, "socket": 41, "io_uring_setup": 425, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "kill": 62, "tkill": 200,
        "tgkill": 234, "pidfd_open": 434,
    },
    "aarch64": {
        "arch": 0xC00000B7, "socket": 198, "io_uring_setup": 425, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "kill": 129, "tkill": 130,
        "tgkill": 131, "pidfd_open": 434,
    },
}  # fmt: skip
DENIED = ("io_uring_setup", "ptrace", "process_vm_readv", "process_vm_writev")
SIGNALLING = ("kill", "tkill", "tgkill", "pidfd_open")
# Offsets in struct seccomp_data: nr, arch, then (after the instruction pointer) the args; an
# argument's low 32 bits come first (both architectures are little-endian).
NR, ARCH, ARG0 = 0, 4, 16


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _assemble(program: list[tuple[int, int, str | None, str | None] | str]) -> bytes:
    """Classic BPF from (code, k, jump-if-true label, jump-if-false label) and label strings."""
    labels, index = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = index
        else:
            index += 1
    out, index = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        code, k, jt, jf = item
        index += 1
        out.append(struct.pack(
            "HBBI", code, labels[jt] - index if jt else 0, labels[jf] - index if jf else 0, k
        ))  # fmt: skip
    return b"".join(out)


def network_filter(protected: tuple[int, ...] = ()) -> bytes:
    """The BPF program (see the module docstring) for this machine's architecture; signals
    to the ``protected`` pids, to process groups (pid <= 0) and pidfds of them fail with EPERM."""
    machine = platform.machine()
    if machine not in ARCHES:
        raise OSError(f"no seccomp network filter for {machine}")
    nr = ARCHES[machine]
    prog: list[tuple[int, int, str | None, str | None] | str] = [
        (BPF_LD_W_ABS, ARCH, None, None),
        (BPF_JEQ_K, nr["arch"], "native", "eacces"),  # another ABI: deny
        "native",
        (BPF_LD_W_ABS, NR, None, None),
        (BPF_JGE_K, X32_SYSCALL_BIT, "eacces", None),  # x32 numbers: deny
        *((BPF_JEQ_K, nr[name], "eacces", None) for name in DENIED),
        (BPF_JEQ_K, nr["socket"], "socket", None),
        *((BPF_JEQ_K, nr[name], "pid", None) for name in SIGNALLING),
        (BPF_RET_K, SECCOMP_RET_ALLOW, None, None),
        "socket",
        (BPF_LD_W_ABS, ARG0, None, None),  # the address family
        (BPF_JEQ_K, socket.AF_UNIX, "allow", "eacces"),
        "pid",
        (BPF_LD_W_ABS, ARG0, None, None),  # the target pid
        (BPF_JEQ_K, 0, "eperm", None),
        (BPF_JGE_K, NEGATIVE, "eperm", None),
        *((BPF_JEQ_K, pid, "eperm", None) for pid in protected),
        "allow",
        (BPF_RET_K, SECCOMP_RET_ALLOW, None, None),
        "eacces",
        (BPF_RET_K, SECCOMP_RET_ERRNO | errno.EACCES, None, None),
        "eperm",
        (BPF_RET_K, SECCOMP_RET_ERRNO | errno.EPERM, None, None),
    ]
    return _assemble(prog)


def install_network_filter(protected: tuple[int, ...] = ()) -> None:
    """Apply the filter to this process (``PR_SET_NO_NEW_PRIVS`` must already be set)."""
    program = network_filter(protected)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"seccomp filter: {errno.errorcode.get(code, code)}")
