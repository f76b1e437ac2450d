"""code_gen sandbox, security: what a program can see, reach and leave behind, under each plan.

Every check is first made from the test process itself (the host path is readable, the port
answers, the daemon runs), so each test can fail. A plan this machine cannot run is skipped
with the reason the sandbox gave (``pytest -rs``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resources_servers.code_gen.sandbox_view import allowed_sources
from resources_servers.code_gen.supervisor import ProgramRun, SandboxError, kill_processes_of
from resources_servers.code_gen.tests.client import (
    FALLBACKS,
    SLEEPER,
    gone_within,
    make_server,
    plan_named,
    processes_with_arg,
)

REPO = Path(__file__).resolve().parents[3]
ALL_PLANS = ["root-namespaces", *FALLBACKS]
PRIVATE_ROOT_PLANS = ["root-namespaces", "user-namespace", "user-namespace-no-proc"]


async def run_under(plan_name: str, code: str, stdin: bytes = b"") -> ProgramRun:
    """Run ``code`` as ``s.py`` under one plan; skip when the plan cannot run here."""
    sandbox = make_server().sandbox
    plan = plan_named(sandbox, plan_name)
    try:
        return await sandbox._run_with_slot(plan, {"s.py": code}, ["s.py"], stdin)
    except SandboxError as exc:
        pytest.skip(f"plan {plan_name} does not work on this machine: {exc}")


@pytest.fixture
def host_files() -> Iterator[list[str]]:
    """World-readable host files a program must not read: the checkout's git config, an
    ``env.yaml`` at 0644 in the project root (placed for the test), a source file, /etc files
    and a file in the host's /tmp."""
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    env_yaml = REPO / "env.yaml"
    placed = not env_yaml.exists()
    if placed:
        env_yaml.write_text("{}  # placed by code_gen's sandbox test\n")
        env_yaml.chmod(0o644)
    with tempfile.NamedTemporaryFile(prefix="code_gen_host_", delete=False) as tmp:
        tmp.write(b"host tmp\n")
    os.chmod(tmp.name, 0o644)
    paths = [
        f"{common}/config", str(REPO / ".git"), str(env_yaml), str(Path(__file__)),
        "/etc/hostname", "/etc/passwd", tmp.name,
    ]  # fmt: skip
    present = [p for p in paths if os.path.exists(p)]
    for path in present:  # readable from here, so the test can fail
        Path(path).read_bytes() if Path(path).is_file() else os.listdir(path)
    try:
        yield present
    finally:
        os.unlink(tmp.name)
        if placed:
            env_yaml.unlink()


LOOK_AROUND = """
import json, os
out = {}
for p in json.loads(input()):
    try:
        out[p] = sorted(os.listdir(p)) if os.path.isdir(p) else open(p, 'rb').read(1) and 'read'
    except OSError as e:
        out[p] = type(e).__name__
for p in ['/new-file', '/usr/lib/new-file']:
    try:
        open(p, 'w').close()
        out[p] = 'written'
    except OSError as e:
        out[p] = type(e).__name__
try:
    out['cmdline'] = open('/proc/1/cmdline', 'rb').read().decode(errors='replace')
    out['pids'] = sorted(int(n) for n in os.listdir('/proc') if n.isdigit())
except OSError as e:
    out['cmdline'] = out['pids'] = type(e).__name__
out['hostname'] = os.uname().nodename
print(json.dumps(out))
"""


def _children_in_view(directory: str) -> set[str]:
    """The entries of ``directory`` the sandbox shows: the next component of an allowed path."""
    prefix = directory.rstrip("/") + "/"
    names = {s[len(prefix) :].split("/")[0] for s in allowed_sources() if s.startswith(prefix)}
    return names | ({"dev", "proc", "tmp", "var"} if directory == "/" else set())


@pytest.mark.parametrize("plan_name", ALL_PLANS)
async def test_a_program_sees_only_its_files_the_interpreter_and_libraries(
    plan_name: str, host_files: list[str]
) -> None:
    if plan_name.startswith("rlimits-only"):
        pytest.skip(f"plan {plan_name} has no mount namespace: host files stay readable")
    dirs = ["/", "/home", "/root", "/work", "/tmp", "/etc", str(REPO)]
    paths = host_files + dirs
    run = await run_under(plan_name, LOOK_AROUND, json.dumps(paths).encode())
    assert run.exit_code == 0, run.stderr_tail
    seen: dict[str, Any] = json.loads(run.stdout)
    for path in host_files:
        assert seen[path] in ("FileNotFoundError", "PermissionError"), (path, seen[path])
    for directory in dirs:
        shown = set(seen[directory]) if isinstance(seen[directory], list) else set()
        allowed = _children_in_view(directory) | ({"work"} if directory == "/tmp" else set())
        assert shown <= allowed, (directory, shown - allowed)
    assert "etc" not in seen["/"] and "work" in seen["/tmp"]
    assert seen["hostname"] == "code-gen-sandbox" != os.uname().nodename
    assert seen["/new-file"] == seen["/usr/lib/new-file"] == "OSError"  # read-only (EROFS)
    host_init = (await asyncio.to_thread(Path("/proc/1/cmdline").read_bytes)).decode()
    if plan_name.endswith("no-proc"):
        assert seen["cmdline"] == seen["pids"] == "FileNotFoundError"
    else:  # a fresh /proc: pid 1 is the sandbox's init, the program is pid 2
        assert seen["cmdline"] != host_init
        assert seen["cmdline"].rstrip("\0") == "code_gen-sandbox-init"
        assert seen["pids"] == [1, 2]


def _daemon_program(marker: str, then: str) -> str:
    """Double-fork a daemon in its own session, wait until it runs, then ``then``."""
    daemon = f"import os, time; os.write(3, b'up'); time.sleep(1000)  # {marker}"
    return (
        "import os, sys, time\n"
        "r, w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.dup2(w, 3)\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', {daemon!r}, {marker!r}])\n"
        "    os._exit(0)\n"
        "os.close(w)\n"
        "print(os.read(r, 2).decode(), flush=True)\n"
        f"{then}\n"
    )


@pytest.mark.parametrize("ending", ["exits", "times-out"])
@pytest.mark.parametrize("plan_name", ALL_PLANS)
async def test_a_double_forked_daemon_does_not_survive_its_program(
    plan_name: str, ending: str
) -> None:
    marker = f"code-gen-daemon-{secrets.token_hex(8)}"
    then = "print('bye')" if ending == "exits" else "time.sleep(1000)"
    task = asyncio.ensure_future(run_under(plan_name, _daemon_program(marker, then)))
    if ending == "times-out":  # the daemon is visible on the host while the program runs
        seen = await asyncio.to_thread(_appears_within, marker, 10.0)
    run = await task
    assert run.stdout.split()[:1] == [b"up"], run.stderr_tail  # the daemon did start
    assert run.timed_out == (ending == "times-out")
    if ending == "times-out":
        assert seen
    assert await asyncio.to_thread(gone_within, marker, 10.0)


def _appears_within(marker: str, seconds: float) -> bool:
    """Whether a process with ``marker`` on its command line shows up before a deadline."""
    deadline = time.monotonic() + seconds
    while not processes_with_arg(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


NETWORK_PROBE = """
import socket, sys
a, b = socket.socketpair()
a.sendall(b'x')
unix = b.recv(1) == b'x'
try:
    socket.create_connection(('127.0.0.1', int(input())), timeout=2).close()
    print('connected', unix)
except OSError as e:
    print('blocked', unix)
"""


@pytest.mark.parametrize("plan_name", ALL_PLANS)
async def test_the_network_is_unreachable_but_unix_sockets_work(plan_name: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from here
        run = await run_under(plan_name, NETWORK_PROBE, f"{port}\n".encode())
    assert run.stdout == b"blocked True\n", run.stderr_tail


@pytest.mark.parametrize("plan_name", ALL_PLANS)
async def test_the_servers_environment_is_not_passed_nor_readable(
    plan_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE_GEN_SECRET", "hunter2")
    environ = f"/proc/{os.getpid()}/environ"  # the server's environment, as the kernel has it
    code = (
        "import os\n"
        "print(sorted(k for k in os.environ if k != 'LC_CTYPE'))\n"
        "try:\n"
        f"    print('read', len(open({environ!r}, 'rb').read()))\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    assert await asyncio.to_thread(Path(environ).read_bytes)  # readable from here
    run = await run_under(plan_name, code)
    lines = run.stdout.decode().splitlines()
    assert lines[0] == "[]", run.stderr_tail
    if plan_name.endswith("-as-caller"):
        pytest.skip(f"plan {plan_name} runs as the server's uid: its /proc/PID/environ is open")
    assert lines[1] in ("FileNotFoundError", "PermissionError"), lines


@pytest.mark.skipif(os.geteuid() != 0, reason="killing another uid's processes needs root")
def test_every_process_of_a_slot_uid_is_killed_and_only_those() -> None:
    uid, marker = 2_099_999_999, f"code-gen-uid-{secrets.token_hex(8)}"
    theirs = subprocess.Popen(["sh", "-c", "sleep 1000", marker], user=uid, start_new_session=True)
    ours = subprocess.Popen([sys.executable, "-c", SLEEPER, marker])
    try:
        expected, deadline = sorted([theirs.pid, ours.pid]), time.monotonic() + 10
        while sorted(processes_with_arg(marker)) != expected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(processes_with_arg(marker)) == expected
        kill_processes_of(uid)
        assert theirs.wait(timeout=10) == -9 and ours.poll() is None
    finally:
        ours.kill()
        ours.wait()
        theirs.kill()
        theirs.wait()


@pytest.mark.parametrize("plan_name", ALL_PLANS)
async def test_a_program_cannot_kill_the_launcher_that_cleans_up_after_it(plan_name: str) -> None:
    marker = f"code-gen-orphan-{secrets.token_hex(8)}"
    code = (
        "import os, sys\n"
        "init = os.getppid()\n"
        "path = f'/proc/{init}/stat'\n"
        "stat = open(path).read() if os.path.exists(path) else ') S 0'\n"
        "launcher = int(stat.rsplit(')', 1)[1].split()[1])\n"
        "for pid in (launcher, init, -1):\n"
        "    if pid != 0:\n"
        "        try:\n"
        "            os.kill(pid, 9)\n"
        "            print('sent', flush=True)\n"
        "        except OSError as e:\n"
        "            print(type(e).__name__, flush=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    os.execv(sys.executable, [sys.executable, '-c', {SLEEPER!r}, {marker!r}])\n"
    )
    run = await run_under(plan_name, code)
    assert run.exit_code == 0, (run.signal, run.stderr_tail)  # the program ran to its end
    if plan_name.startswith("rlimits-only"):  # no pid namespace: the seccomp filter refuses
        assert run.stdout.split() == [b"PermissionError"] * 3
    assert await asyncio.to_thread(gone_within, marker, 10.0)
