"""Run one untrusted Python program inside the isolation a plan asks for (stdlib only).

Started by ``sandbox.py`` as ``python -I -S sandbox_launcher.py STATUS_FD`` in a new session. It
reads ``<n>\\n`` and an n-byte JSON spec from stdin (the rest of stdin is the program's input),
applies the plan, and execs ``python -I <argv>`` in a fresh working directory with an empty
environment. Every setup step is mandatory: if one fails, the launcher reports it and exits, so
what ``sandbox.py`` records as applied is what was applied.

Processes: this launcher (root or the caller) -> ``init`` (pid 1 when there is a pid namespace;
when it exits the kernel kills everything left in the namespace) -> the program.

Status lines on STATUS_FD, written only by this trusted code (the program never holds the fd):
``exec`` (the program is about to start), ``exit N`` / ``signal N`` (how it ended) and
``setup-error MESSAGE``.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import stat
import sys
from typing import Any

SETUP_FAILED = 125
_NAMESPACES = {
    "user": os.CLONE_NEWUSER,
    "net": os.CLONE_NEWNET,
    "pid": os.CLONE_NEWPID,
    "mount": os.CLONE_NEWNS,
    "ipc": os.CLONE_NEWIPC,
    "uts": os.CLONE_NEWUTS,
}
# mount(2) and prctl(2) constants: Python has no binding for either call.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
SANDBOX_TMP = "/tmp"
WORLD_WRITABLE = ("/var/tmp", "/dev/shm", "/run/lock")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    enc = [s.encode() if s else None for s in (source, target, fstype)]
    _check(_libc.mount(*enc, flags, data.encode() or None), f"mount {target}")


def _read_spec() -> dict[str, Any]:
    header = b""
    while not header.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            raise EOFError("no spec on stdin")
        header += byte
    size, data = int(header), bytearray()
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            raise EOFError("truncated spec on stdin")
        data += chunk
    spec: dict[str, Any] = json.loads(data)
    return spec


def _blocked_ancestor(path: str) -> str | None:
    """The outermost directory above ``path`` that other users cannot traverse, if any."""
    parts = os.path.realpath(path).split("/")[1:-1]
    for i in range(len(parts)):
        ancestor = "/" + "/".join(parts[: i + 1])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def _expose_interpreter() -> None:
    """Hide private directories above the interpreter behind a tmpfs that shows only it."""
    roots = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)})
    roots = [r for r in roots if not any(r.startswith(o + "/") for o in roots if o != r)]
    blocked = {r: a for r in roots if (a := _blocked_ancestor(r + "/x")) is not None}
    for i, root in enumerate(blocked):
        os.makedirs(f"{SANDBOX_TMP}/.stage{i}")
        _mount(root, f"{SANDBOX_TMP}/.stage{i}", None, MS_BIND | MS_REC)
    for ancestor in sorted(set(blocked.values())):
        _mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for i, root in enumerate(blocked):
        os.makedirs(root, mode=0o755, exist_ok=True)
        _mount(f"{SANDBOX_TMP}/.stage{i}", root, None, MS_BIND | MS_REC)
        _check(_libc.umount2(f"{SANDBOX_TMP}/.stage{i}".encode(), MNT_DETACH), "umount stage")
        os.rmdir(f"{SANDBOX_TMP}/.stage{i}")


def _private_filesystem(tmp_mb: int) -> None:
    """Read-only root, a size-capped private tmpfs for every world-writable directory."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", SANDBOX_TMP, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    _expose_interpreter()
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for path in WORLD_WRITABLE:
        if os.path.isdir(path):
            _mount(SANDBOX_TMP, path, None, MS_BIND)


def _map_own_ids() -> None:
    uid, gid = os.getuid(), os.getgid()
    os.unshare(_NAMESPACES["user"])
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")


def _own_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        try:
            count += entry.name.isdigit() and entry.stat().st_uid == uid
        except OSError:
            continue
    return count


def _become_program(spec: dict[str, Any], workdir: str, status_fd: int) -> None:
    plan, uid = spec["plan"], spec["uid"]
    os.chdir(workdir)
    for name, limit in plan["rlimits"].items():
        if name == "RLIMIT_NPROC" and plan["nproc_relative"]:
            limit += _own_process_count()
        resource.setrlimit(getattr(resource, name), (limit, limit + (name == "RLIMIT_CPU")))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if plan["no_new_privs"]:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
    os.write(status_fd, b"exec\n")
    os.close(status_fd)
    interpreter = spec["interpreter"]
    os.execve(interpreter, [interpreter, "-I", *spec["argv"]], {})


def _init(spec: dict[str, Any], workdir: str, status_fd: int) -> int:
    namespaces = spec["plan"]["namespaces"]
    if "pid" in namespaces and "mount" in namespaces:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    child = os.fork()
    if child == 0:
        try:
            _become_program(spec, workdir, status_fd)
        except BaseException as exc:  # any failure here is a setup failure
            os.write(status_fd, f"setup-error {exc!r}\n".encode())
        os._exit(SETUP_FAILED)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        os.write(status_fd, f"signal {os.WTERMSIG(status)}\n".encode())
    else:
        os.write(status_fd, f"exit {os.WEXITSTATUS(status)}\n".encode())
    return 0


def _start(spec: dict[str, Any]) -> str:
    """Apply the plan's namespaces and filesystem; return the working directory."""
    plan = spec["plan"]
    namespaces = plan["namespaces"]
    if "user" in namespaces:
        _map_own_ids()
    flags = 0
    for name in namespaces:
        flags |= 0 if name == "user" else _NAMESPACES[name]
    os.unshare(flags)
    if "mount" in namespaces:
        _private_filesystem(plan["tmp_mb"])
        workdir = f"{SANDBOX_TMP}/work"
        os.mkdir(workdir, 0o700)
    else:
        workdir = spec["workdir"]  # made, and removed afterwards, by sandbox.py
    for name, text in spec["files"].items():
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    if spec["uid"] is not None:
        for path in [workdir, *(os.path.join(workdir, n) for n in spec["files"])]:
            os.chown(path, spec["uid"], spec["uid"])
    return workdir


def main() -> int:
    status_fd = int(sys.argv[1])
    try:
        spec = _read_spec()
        # The real interpreter, resolved before the mounts: a virtualenv's python is a link
        # that may live under /tmp (a checkout there), which the sandbox covers with its tmpfs.
        spec["interpreter"] = os.path.realpath(sys.executable)
        workdir = _start(spec)
        child = os.fork()
        if child == 0:
            try:
                code = _init(spec, workdir, status_fd)
            except BaseException as exc:  # reported, then the init exits
                os.write(status_fd, f"setup-error {exc!r}\n".encode())
                code = SETUP_FAILED
            os._exit(code)
    except Exception as exc:  # reported on the status fd
        os.write(status_fd, f"setup-error {exc!r}\n".encode())
        return SETUP_FAILED
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) & 0xFF


if __name__ == "__main__":
    sys.exit(main())
