"""A process is its pid and its start: a reused pid must not pass for a dead run's process."""

from __future__ import annotations

import os
import subprocess
import sys

from treadle.processes import pid_alive, process_start, this_host


def test_this_process_is_alive_with_its_own_start():
    me = os.getpid()
    start = process_start(me)
    assert start is not None
    assert pid_alive(this_host(), me, start) is True
    assert pid_alive(this_host(), me) is True  # no start recorded: the pid decides


def test_a_reused_pid_is_not_the_same_process():
    me = os.getpid()
    assert pid_alive(this_host(), me, process_start(me) - 1) is False


def test_a_finished_process_is_dead_and_another_host_is_unknown():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start(child.pid)
    child.wait()
    assert pid_alive(this_host(), child.pid, start) is False
    assert pid_alive("some-other-machine", os.getpid()) is None
