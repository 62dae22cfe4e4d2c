"""Ways to start a burst of jobs as another user, side by side (the burst-200 analysis).

    sudo .venv/bin/python -m benchmarks.spawn_paths [--jobs 200] [--repeat 3] [--user nobody]

Not one of `python -m benchmarks`: it measures spawn paths the runner does not take, to
show what each costs. Each path starts `--jobs` stamping shells (`date +%s.%N >> FILE`)
as `--user`, one thread per job as ProcessRunner does, with a 30 MB heap in the parent
(the daemon's size), and reports the median over `--repeat` runs of the last stamp after
the first spawn. Paths:

* `vfork, no uid change`: the floor (CPython's vfork; the job runs as the caller).
* `fork + uid change`: Popen(user=, group=, extra_groups=): CPython 3.11 cannot vfork then.
* `fork + cgroup + uid change (runner)`: ProcessRunner's path: preexec_fn enters the job's
  cgroup, then drops to the owner (smartcron/run/cgroup.py child_setup).
* `vfork + setpriv`: Popen of `setpriv --reuid --regid --groups -- sh -c`: vfork again, one
  exec more, but no cgroup before exec (the runner needs one).
* `vfork + setpriv + cgroup after exec`: the parent moves the child once Popen returns; the
  job may fork before the move (a race the runner must not have).
* `vfork + sh gate + setpriv + cgroup`: a gate shell waits for a byte on stdin until the
  parent has moved it, then execs setpriv: no race, but the gate shell rewrites the
  environment (drops names that are not identifiers, resets IFS/OPTIND/PPID, reorders).
* `fork + uid change, no other threads`: the second path with the jobs started from one
  thread: how much the job threads cost a fork (their stacks are mappings it copies).
* `spawner process: clone3 into the cgroup (runner)`: what the runner does now
  (smartcron/run/spawnserver.py): a small single-threaded process clones each job
  straight into its cgroup, as the caller's child, and drops it to its owner.
Needs root, cgroup v2 and setpriv (util-linux); prints a row per path.
"""

from __future__ import annotations

import argparse
import os
import pwd
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from smartcron.run.cgroup import JobCgroups, child_setup
from smartcron.run.spawner import Ids, Spawner


class _Waitable:
    """A job the spawner started (the caller's child): wait for it as for a Popen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.waited = pid, False

    def wait(self) -> None:
        if not self.waited:
            os.waitpid(self.pid, 0)
            self.waited = True


Spawn = Callable[[int, str], "subprocess.Popen[bytes] | _Waitable"]
GATE = 'read _ && unset _ PWD && exec "$@"'


class Paths:
    """The spawn paths, for one user and one cgroup parent."""

    def __init__(self, user: pwd.struct_passwd, cgroups: JobCgroups) -> None:
        self.uid, self.gid = user.pw_uid, user.pw_gid
        self.groups = os.getgrouplist(user.pw_name, user.pw_gid)
        self.cgroups = cgroups
        self.spawner = Spawner()
        self.setpriv = [
            "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
            "--groups=" + ",".join(map(str, self.groups)), "--",
        ]  # fmt: skip

    def table(self) -> dict[str, tuple[Spawn, bool]]:
        """name -> (spawn, from one thread)."""
        return {
            "vfork, no uid change": (self.plain, False),
            "fork + uid change": (self.creds, False),
            "fork + cgroup + uid change (runner)": (self.runner, False),
            "vfork + setpriv": (self.with_setpriv, False),
            "vfork + setpriv + cgroup after exec": (self.moved_after, False),
            "vfork + sh gate + setpriv + cgroup": (self.gated, False),
            "fork + uid change, no other threads": (self.creds, True),
            "spawner process: clone3 into the cgroup (runner)": (self.spawned, False),
        }

    def plain(self, _i: int, cmd: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["/bin/sh", "-c", cmd], start_new_session=True)

    def creds(self, _i: int, cmd: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["/bin/sh", "-c", cmd], start_new_session=True,
            user=self.uid, group=self.gid, extra_groups=self.groups,
        )  # fmt: skip

    def runner(self, i: int, cmd: str) -> subprocess.Popen[bytes]:
        cg = self.cgroups.create(f"spawn-paths-{i}")
        setup = child_setup(cg, user=self.uid, group=self.gid, extra_groups=self.groups)
        try:
            return subprocess.Popen(
                ["/bin/sh", "-c", cmd], start_new_session=True, preexec_fn=setup
            )
        finally:
            cg.close()

    def with_setpriv(self, _i: int, cmd: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.setpriv, "/bin/sh", "-c", cmd], start_new_session=True)

    def moved_after(self, i: int, cmd: str) -> subprocess.Popen[bytes]:
        cg = self.cgroups.create(f"spawn-paths-{i}")
        proc = self.with_setpriv(i, cmd)
        Path(cg.path, "cgroup.procs").write_text(str(proc.pid))
        cg.close()
        return proc

    def spawned(self, i: int, cmd: str) -> _Waitable:
        cg = self.cgroups.create(f"spawn-paths-{i}")
        cg_dir = os.open(cg.path, os.O_RDONLY | os.O_DIRECTORY)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            job = self.spawner.spawn(
                "/bin/sh", ["/bin/sh", "-c", cmd], dict(os.environ), cwd=None,
                ids=Ids(self.uid, self.gid, self.groups), stdin=null, stdout=null,
                cgroup_dir=cg_dir,
            )  # fmt: skip
        finally:
            os.close(cg_dir)
            os.close(null)
            cg.close()
        return _Waitable(job.pid)

    def gated(self, i: int, cmd: str) -> subprocess.Popen[bytes]:
        cg = self.cgroups.create(f"spawn-paths-{i}")
        gate_r, gate_w = os.pipe()
        argv = ["/bin/sh", "-c", GATE, "gate", *self.setpriv, "/bin/sh", "-c", cmd]
        proc = subprocess.Popen(argv, start_new_session=True, stdin=gate_r)
        os.close(gate_r)
        Path(cg.path, "cgroup.procs").write_text(str(proc.pid))
        os.write(gate_w, b"\n")
        os.close(gate_w)
        cg.close()
        return proc


def last_start_ms(spawn: Spawn, jobs: int, one_thread: bool) -> float:
    """Start `jobs` stamping shells; ms from the first spawn to the last stamp."""
    with tempfile.TemporaryDirectory(prefix="spawn-paths-") as tmp:
        os.chmod(tmp, 0o777)  # the jobs run as another user
        stamps = Path(tmp, "stamps")
        cmd = f"date +%s.%N >> {stamps}"
        procs: list[subprocess.Popen[bytes] | _Waitable] = []

        def job(i: int) -> None:  # one thread per job, as ProcessRunner
            proc = spawn(i, cmd)
            procs.append(proc)
            proc.wait()

        threads = [threading.Thread(target=job, args=(i,)) for i in range(jobs)]
        t0 = time.time()
        if one_thread:
            procs.extend(spawn(i, cmd) for i in range(jobs))
        else:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for proc in procs:
            proc.wait()
        found = [float(x) for x in stamps.read_text().split()]
        if len(found) != jobs:
            raise RuntimeError(f"{len(found)} of {jobs} jobs stamped")
        return (max(found) - t0) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spawn_paths", description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--user", default="nobody")
    args = parser.parse_args(argv)
    cgroups = JobCgroups.detect()
    if os.geteuid() != 0 or not cgroups.available:
        print("needs root and cgroup v2:", cgroups.reason or "not root", file=sys.stderr)
        return 1
    heap = [bytearray(1000) for _ in range(30_000)]  # the daemon's ~30 MB
    paths = Paths(pwd.getpwnam(args.user), cgroups).table()
    print(f"{args.jobs} jobs as {args.user}, median of {args.repeat} (ms to the last start)")
    for name, (spawn, one_thread) in paths.items():
        runs = [last_start_ms(spawn, args.jobs, one_thread) for _ in range(args.repeat)]
        print(f"{statistics.median(runs):8.0f}  {name}")
    del heap
    cgroups.sweep()
    return 0


if __name__ == "__main__":
    sys.exit(main())
