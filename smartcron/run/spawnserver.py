"""The spawner: a small single-threaded process that starts jobs for the daemon.

Run as `python -I -S spawnserver.py FD` by smartcron.run.spawner (standard library only,
so it starts in milliseconds and stays small). Why a process of its own: the daemon has a
thread per running job and a large heap, so forking it for each job costs milliseconds,
and running Python between fork and exec (to enter the job's cgroup and drop to its
owner) in a child of a threaded process is what CPython's documentation warns against.
This process has one thread and a small heap, and it uses clone3(2) with

* CLONE_INTO_CGROUP: the job is born in its own cgroup (no migration, and no moment in
  which it could fork outside it), and
* CLONE_PARENT: the job is the daemon's child, not this process's, so the daemon waits
  for it (wait4: exit status and rusage) exactly as for a job it forked itself.

Between clone and exec the child does what CPython's _posixsubprocess does for the
daemon's Popen, in the same order: stdin/stdout/stderr, close every other descriptor,
SIGPIPE and SIGXFSZ back to default, chdir, setsid, setgroups + setregid + setreuid,
execve. A failure there is written to the error pipe as (stage, errno) and the child
exits; the daemon reads the pipe (closed on exec: success) and reaps the child.

Protocol, on a SOCK_SEQPACKET socket: a request is marshal data (executable, argv, env
as bytes, cwd or None, ids or None, with_cgroup) with the descriptors stdin, stdout, the
error pipe's write end and, when with_cgroup, the cgroup's directory; the answer is
marshal (pid, errno): the job's pid, or 0 and why clone3 failed.
"""

import _signal  # not signal, socket: their enum imports would double the private memory
import _socket
import array
import ctypes
import marshal
import os
import sys

SYS_CLONE3 = 435  # the same number on every architecture (asm-generic, x86 included)
CLONE_PARENT = 0x00008000
CLONE_INTO_CGROUP = 0x200000000
MAX_REQUEST = 1 << 20


class CloneArgs(ctypes.Structure):
    """struct clone_args, version 2 (linux/sched.h), with the cgroup field."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
            "stack_size", "tls", "set_tid", "set_tid_size", "cgroup",
        )
    ]  # fmt: skip


def child(request: tuple, fds: list[int]) -> None:
    """In the new process: become the job, or report why not. Never returns."""
    executable, argv, env, cwd, ids, _with_cgroup = request
    stdin, stdout, errpipe = fds[0], fds[1], fds[2]
    stage = "dup2"
    try:
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stdout, 2)
        os.closerange(3, errpipe)  # everything but the error pipe (close-on-exec)
        os.closerange(errpipe + 1, 1 << 20)
        # Python ignores SIGPIPE and SIGXFSZ (as Popen resets them); cron catches SIGHUP,
        # so its jobs start with it at the default whatever cron inherited (nohup: the
        # Debian differential test compares SigIgn)
        for signum in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGHUP):
            _signal.signal(signum, _signal.SIG_DFL)
        stage = "chdir"
        if cwd is not None:
            os.chdir(cwd)
        stage = "setsid"
        os.setsid()
        stage = "ids"
        if ids is not None:
            uid, gid, groups = ids
            os.setgroups(groups)
            os.setregid(gid, gid)
            os.setreuid(uid, uid)
        stage = "exec"
        os.execve(executable, argv, env)
    except OSError as err:
        os.write(errpipe, marshal.dumps((stage, err.errno or 0)))
    except BaseException:  # e.g. ValueError from execve: the daemon checks first
        os.write(errpipe, marshal.dumps((stage, 22)))  # EINVAL
    finally:
        os._exit(127)


def spawn(libc: ctypes.CDLL, request: tuple, fds: list[int]) -> int:
    """clone3 the job; its pid (in the daemon's pid namespace: we share it)."""
    # exit_signal stays 0: with CLONE_PARENT the kernel takes the daemon's (SIGCHLD)
    args = CloneArgs(flags=CLONE_PARENT)
    if request[5]:  # with_cgroup: the last descriptor is the cgroup's directory
        args.flags |= CLONE_INTO_CGROUP
        args.cgroup = fds[3]
    pid = libc.syscall(SYS_CLONE3, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        child(request, fds)
    if pid < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return pid


def receive(sock: _socket.socket) -> tuple[bytes, list[int], int]:
    """One request and its descriptors (socket.recv_fds, without the socket module)."""
    fds = array.array("i")
    data, ancdata, flags, _ = sock.recvmsg(MAX_REQUEST, _socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    for fd in fds:  # close-on-exec: the error pipe must close on exec, or the daemon waits
        os.set_inheritable(fd, False)
    return data, list(fds), flags


def serve(sock: _socket.socket) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    while True:
        try:
            data, fds, flags = receive(sock)
        except OSError:
            return
        if not data and not fds:
            return  # the daemon has gone
        try:
            if flags & _socket.MSG_TRUNC:
                raise OSError(7, "request too long")  # E2BIG
            request = marshal.loads(data)
            # prepared here, so the child only makes system calls
            request = (*request[:2], dict(request[2]), *request[3:])
            answer = (spawn(libc, request, fds), 0)
        except OSError as err:
            answer = (0, err.errno or 0)
        except Exception:  # a malformed request: refuse it, keep serving
            answer = (0, 22)  # EINVAL
        finally:
            for fd in fds:
                os.close(fd)
        try:
            sock.send(marshal.dumps(answer))
        except OSError:
            return  # the daemon has gone


if __name__ == "__main__":
    serve(_socket.socket(fileno=int(sys.argv[1])))
