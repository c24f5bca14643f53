"""The batch lock of an output folder: one batch at a time, a killed holder's lock taken over, waiting possible."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from microcrystalnet.io.batch_lock import LOCK_NAME, OutputFolderBusyError, batch_lock

HOLD = """
import sys, time
from pathlib import Path
from microcrystalnet.io.batch_lock import batch_lock
with batch_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def holder(out, seconds):
    """A real second process that holds ``out``'s lock for ``seconds``."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(out), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_batch_is_refused_at_once_naming_the_first(tmp_path):
    first = holder(tmp_path, 60)
    try:
        started = time.monotonic()
        with pytest.raises(OutputFolderBusyError, match=f"process {first.pid} on {socket.gethostname()}.*--wait"):
            with batch_lock(tmp_path):
                pass
        assert time.monotonic() - started < 2
    finally:
        first.kill()
        first.wait()


def test_with_wait_the_second_starts_when_the_first_ends(tmp_path):
    first = holder(tmp_path, 2)
    started = time.monotonic()
    with batch_lock(tmp_path, wait=True):
        assert time.monotonic() - started > 1 and first.wait(timeout=30) == 0
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_of_a_killed_batch_is_taken_over_with_a_notice(tmp_path, caplog):
    first = holder(tmp_path, 60)
    first.kill()
    first.wait()
    assert (tmp_path / LOCK_NAME).exists()  # a kill leaves the file, but no lock in force
    with caplog.at_level(logging.WARNING), batch_lock(tmp_path):
        pass
    assert f"took over the lock of process {first.pid}" in caplog.text


def test_threads_of_one_process_exclude_each_other_too(tmp_path):
    inside, overlaps = [], []

    def work():
        with batch_lock(tmp_path, wait=True):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1, 1, 1, 1]
