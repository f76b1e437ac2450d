"""The filesystem a sandboxed program sees (stdlib only; used by ``sandbox_launcher.py``).

In a private mount namespace, ``build_root`` pivots the launcher into a scratch tmpfs (the host's
tree stays reachable at ``/.oldroot`` for a moment) and builds ``/newroot`` on a second tmpfs:
read-only bind mounts of the interpreter's prefix and the system library directories only, a
size-capped tmpfs at ``/tmp`` (also seen at ``/var/tmp`` and ``/dev/shm``) holding the working
directory, a minimal ``/dev`` and an empty ``/proc``. ``enter_root``, run by the sandbox's pid 1,
mounts a fresh proc there (it shows only the sandbox's processes), pivots into ``/newroot`` and
detaches everything else, so no other host path exists for the program.
"""

from __future__ import annotations

import ctypes
import os
import platform
import stat
import sys

# mount(2), umount2(2) and pivot_root(2) constants: Python has no binding for these calls.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE = 1024, 2048, 4096, 16384, 1 << 18
MS_RELATIME, MNT_DETACH = 1 << 21, 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
#: statvfs flags a bind remount must keep (the kernel refuses to drop locked ones).
_KEPT_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
#: Where the interpreter's shared libraries live on the usual Linux layouts.
LIBRARY_DIRS = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32")
DEVICES = ("null", "zero", "full", "random", "urandom")
SCRATCH, NEW_ROOT, OLD_ROOT = "/tmp", "/newroot", "/.oldroot"
WORKDIR = "/tmp/work"  # as the program sees it

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p]


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    enc = [s.encode() if s else None for s in (source, target, fstype)]
    check(_libc.mount(*enc, flags, data.encode() or None), f"mount {target}")


def _pivot_root(new_root: str, put_old: str) -> None:
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown syscall number on {platform.machine()}")
    check(_libc.syscall(number, new_root.encode(), put_old.encode()), f"pivot_root {new_root}")
    os.chdir("/")


def _detach(path: str) -> None:
    check(_libc.umount2(path.encode(), MNT_DETACH), f"umount {path}")
    os.rmdir(path)


def allowed_sources(host_root: str = "/") -> list[str]:
    """The host paths the program may see: the interpreter's prefix and the library dirs
    (``host_root``: where the host's tree is mounted now)."""
    prefix = os.path.realpath(sys.base_prefix)
    found = (d for d in LIBRARY_DIRS if os.path.lexists(host_root + d) and d != prefix)
    return [prefix, *found]


def _blocked_ancestor(path: str) -> str | None:
    """The outermost directory above ``path`` that other users cannot traverse, if any."""
    parts = path.split("/")[1:-1]
    for i in range(len(parts)):
        ancestor = "/" + "/".join(parts[: i + 1])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def expose_prefix() -> None:
    """As root, before becoming the sandbox uid: in a private mount namespace, cover a directory
    above the interpreter's prefix that others cannot enter (``/root``) with a tmpfs that shows
    only the prefix, so that the sandbox uid can reach it to bind it."""
    prefix = os.path.realpath(sys.base_prefix)
    blocked = _blocked_ancestor(prefix)
    if blocked is None:
        return
    os.unshare(os.CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    fd = os.open(prefix, os.O_PATH | os.O_CLOEXEC)
    mount("tmpfs", blocked, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    os.makedirs(prefix, mode=0o755, exist_ok=True)
    mount(f"/proc/self/fd/{fd}", prefix, None, MS_BIND)
    os.close(fd)


def _bind_read_only(source: str, target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        with open(target, "w"):
            pass
    mount(OLD_ROOT + source, target, None, MS_BIND)
    flags = os.statvfs(target).f_flag
    kept = sum(ms for st, ms in _KEPT_FLAGS.items() if flags & st)
    remount = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept
    mount(None, target, None, remount | (0 if os.path.basename(target) in DEVICES else MS_NODEV))


def build_root(tmp_mb: int) -> None:
    """Pivot into a scratch tmpfs and build the program's root at ``NEW_ROOT`` (see above)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    os.mkdir(SCRATCH + OLD_ROOT)
    _pivot_root(SCRATCH, SCRATCH + OLD_ROOT)
    os.mkdir(NEW_ROOT, 0o755)
    mount("tmpfs", NEW_ROOT, "tmpfs", MS_NOSUID, "size=1m,mode=755")
    for path in allowed_sources(OLD_ROOT):
        target = NEW_ROOT + path
        if os.path.islink(OLD_ROOT + path):  # e.g. /lib -> usr/lib on merged-/usr systems
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.symlink(os.readlink(OLD_ROOT + path), target)
        else:
            _bind_read_only(path, target, is_dir=True)
    os.makedirs(f"{NEW_ROOT}/tmp", mode=0o755, exist_ok=True)
    mount("tmpfs", f"{NEW_ROOT}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb}m,mode=1777")
    for shared in ("/var/tmp", "/dev/shm"):
        os.makedirs(NEW_ROOT + shared, mode=0o755)
        mount(f"{NEW_ROOT}/tmp", NEW_ROOT + shared, None, MS_BIND)
    for name in DEVICES:
        _bind_read_only(f"/dev/{name}", f"{NEW_ROOT}/dev/{name}", is_dir=False)
    for name, target in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]:  # fmt: skip
        os.symlink(target, f"{NEW_ROOT}/dev/{name}")
    os.mkdir(f"{NEW_ROOT}/proc", 0o555)
    os.mkdir(NEW_ROOT + WORKDIR, 0o700)


def host_workdir() -> str:
    """Where the program's working directory is before ``enter_root`` runs."""
    return NEW_ROOT + WORKDIR


def enter_root(fresh_proc: bool) -> None:
    """In the sandbox's pid 1: mount its proc, switch to the new root, drop the host's tree."""
    if fresh_proc:  # before the host's proc is detached: a user namespace needs one in view
        mount("proc", f"{NEW_ROOT}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.mkdir(NEW_ROOT + OLD_ROOT)
    _pivot_root(NEW_ROOT, NEW_ROOT + OLD_ROOT)
    _detach(OLD_ROOT)  # the scratch tmpfs, and the host's tree under it
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
