"""Run one untrusted Python program inside the isolation a plan asks for (stdlib only).

Started by ``sandbox.py`` as ``python -I -S sandbox_launcher.py STATUS_FD`` in a new session. It
reads ``<n>\\n`` and an n-byte JSON spec from stdin (the rest of stdin is the program's input),
applies the plan, and execs ``python -I <argv>`` in a fresh working directory with an empty
environment. Every setup step is mandatory: if one fails, the launcher reports it and exits, so
what ``sandbox.py`` records as applied is what was applied. ``sandbox_view.py`` builds the
filesystem the program sees; ``sandbox_seccomp.py`` holds the network filter.

Processes: this launcher (root or the caller; a child subreaper) -> ``init`` (pid 1 when there
is a pid namespace; when it exits the kernel kills everything left in the namespace) -> the
program. When ``init`` has ended, or on SIGTERM from ``sandbox.py``, the launcher kills every
process left under it (orphans are re-parented to it, even after ``setsid``) before it exits.

Status lines on STATUS_FD, written only by this trusted code (the program never holds the fd):
``exec`` (the program is about to start), ``exit N`` / ``signal N`` (how it ended) and
``setup-error MESSAGE``.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import sys
from pathlib import Path
from typing import Any

# Run as a script with -I: the package's stdlib-only helpers are imported from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from resources_servers.code_gen import sandbox_view as view
from resources_servers.code_gen.sandbox_seccomp import install_network_filter

SETUP_FAILED = 125
SANDBOX_HOSTNAME = "code-gen-sandbox"
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
_NAMESPACES = {
    "user": os.CLONE_NEWUSER,
    "net": os.CLONE_NEWNET,
    "pid": os.CLONE_NEWPID,
    "mount": os.CLONE_NEWNS,
    "ipc": os.CLONE_NEWIPC,
    "uts": os.CLONE_NEWUTS,
}
_init_pid: int | None = None
_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int, what: str) -> None:
    view.check(_libc.prctl(option, value, 0, 0, 0), f"prctl {what}")


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


def _report(status_fd: int, exc: BaseException) -> None:
    """A setup failure, with the path or detail the exception names."""
    os.write(status_fd, f"setup-error {type(exc).__name__}: {exc}\n".encode(errors="replace"))


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _prctl(PR_SET_DUMPABLE, 1, "dumpable")  # else /proc/self/uid_map stays root's


def _map_own_ids() -> None:
    """A user namespace where the caller's ids map to themselves (never to root)."""
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
    if uid is not None and "user" not in plan["namespaces"]:  # else dropped before unsharing
        _drop_to(uid)
    if not os.access(spec["interpreter"], os.X_OK):
        raise PermissionError(
            f"uid {os.getuid()} cannot run {spec['interpreter']}: a directory above it is "
            "closed to other users (a plan with a mount namespace shows it to the sandbox)"
        )
    if plan["no_new_privs"]:
        _prctl(PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
    if plan["network_filter"]:  # the launcher and the init may not be signalled
        install_network_filter((spec["launcher_pid"], os.getppid()))
    os.set_inheritable(status_fd, False)  # closed by a successful exec; a failed one reports
    os.write(status_fd, b"exec\n")
    interpreter = spec["interpreter"]
    os.execve(interpreter, [interpreter, "-I", *spec["argv"]], {})


def _retitle(title: bytes, proc: str) -> None:
    """Overwrite this process's command line (what ``/proc/PID/cmdline`` shows), so the
    sandbox's pid 1 does not tell the program where the checkout is."""
    fields = Path(proc, "self/stat").read_text().rsplit(")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
    if not 0 < start < end:  # hidden (no access): leave the command line as it is
        return
    ctypes.memset(start, 0, end - start)
    ctypes.memmove(start, title, min(len(title), end - start - 1))


def _init(spec: dict[str, Any], workdir: str, status_fd: int) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    private_root = spec["plan"]["private_root"]
    _retitle(b"code_gen-sandbox-init", view.OLD_ROOT + "/proc" if private_root else "/proc")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    if private_root:
        view.enter_root(spec["plan"]["fresh_proc"])
    child = os.fork()
    if child == 0:
        try:
            _become_program(spec, workdir, status_fd)
        except BaseException as exc:  # any failure here is a setup failure
            _report(status_fd, exc)
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
        if spec["uid"] is not None:  # as root: the namespace belongs to the sandbox uid
            view.expose_prefix()
            _drop_to(spec["uid"])
        _map_own_ids()
    flags = 0
    for name in namespaces:
        flags |= 0 if name == "user" else _NAMESPACES[name]
    os.unshare(flags)
    if "uts" in namespaces:  # else the host's name shows in uname()
        socket.sethostname(SANDBOX_HOSTNAME)
    if plan["private_root"]:
        view.build_root(plan["tmp_mb"])
        host_workdir, workdir = view.host_workdir(), view.WORKDIR
    else:
        host_workdir = workdir = spec["workdir"]  # made, and removed afterwards, by sandbox.py
    for name, text in spec["files"].items():
        with open(os.path.join(host_workdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    if spec["uid"] is not None and "user" not in namespaces:
        for path in [host_workdir, *(os.path.join(host_workdir, n) for n in spec["files"])]:
            os.chown(path, spec["uid"], spec["uid"])
    return workdir


def _children() -> list[int]:
    """This process's children, orphans re-parented to it included."""
    me, found = os.getpid(), []
    for entry in list(os.scandir("/proc")):
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.append(int(entry.name))
    return found


def _kill_leftovers(pid_namespace: bool) -> None:
    """Kill and reap every process under this one (a subreaper, so orphans come back to it).

    With a pid namespace the kernel has killed them with ``init``; this process's ``/proc`` is
    then the namespace's (other pid numbers), so only reaping is left to do."""
    while True:
        if pid_namespace:
            try:
                os.waitpid(-1, 0)
                continue
            except ChildProcessError:
                return
        for pid in _children():  # our children cannot be reused until we reap them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _on_sigterm(signum: int, frame: object) -> None:
    """``sandbox.py`` stops the run: kill ``init``; ``main`` then kills the rest."""
    if _init_pid is None:
        os._exit(SETUP_FAILED)
    try:
        os.kill(_init_pid, signal.SIGKILL)
    except ProcessLookupError:  # already ended
        pass


def main() -> int:
    global _init_pid
    signal.signal(signal.SIGTERM, _on_sigterm)
    status_fd = int(sys.argv[1])
    try:
        _prctl(PR_SET_CHILD_SUBREAPER, 1, "child_subreaper")
        spec = _read_spec()
        # The real interpreter, resolved before the mounts: a virtualenv's python is a link
        # that may live where the sandbox shows nothing (the checkout is not in its view).
        spec["interpreter"] = os.path.realpath(sys.executable)
        spec["launcher_pid"] = os.getpid()
        if "pid" not in spec["plan"]["namespaces"]:  # /proc/PID/mem of these: root's only
            _prctl(PR_SET_DUMPABLE, 0, "dumpable")
        workdir = _start(spec)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # until _init_pid is set
        child = os.fork()
        if child == 0:
            try:
                code = _init(spec, workdir, status_fd)
            except BaseException as exc:  # reported, then the init exits
                _report(status_fd, exc)
                code = SETUP_FAILED
            os._exit(code)
        _init_pid = child
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    except Exception as exc:  # reported on the status fd
        _report(status_fd, exc)
        return SETUP_FAILED
    _, status = os.waitpid(child, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # init is reaped: its pid may be reused
    _kill_leftovers("pid" in spec["plan"]["namespaces"])
    return os.waitstatus_to_exitcode(status) & 0xFF


if __name__ == "__main__":
    sys.exit(main())
