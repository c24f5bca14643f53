"""Result folders: only our own are replaced; leftovers of gone processes are recovered, those of running ones kept."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys

import pytest

from microcrystalnet.io.result_folder import (MARKER_NAME, OutputFolderError, OutputWriteError, check_replaceable,
                                              output_write_error, recover_leftovers, result_folder_written)

OWN = ("results.csv", "summary.json", MARKER_NAME)


def write_result(out, name, text="new"):
    with result_folder_written(out / name, OWN) as partial:
        (partial / "results.csv").write_text(text)
        (partial / "summary.json").write_text("{}")
    return out / name


def dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_result_folder_is_marked_and_replaced_whole(tmp_path):
    folder = write_result(tmp_path, "scene", "first")
    marker = json.loads((folder / MARKER_NAME).read_text())
    assert marker["program"] == "MicroCrystalNet" and marker["pid"] == os.getpid()
    write_result(tmp_path, "scene", "second")
    assert (folder / "results.csv").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]  # no partial or previous folder left


def test_a_folder_that_is_not_ours_is_never_replaced(tmp_path):
    user = tmp_path / "scene"
    user.mkdir()
    (user / "raw.tif").write_bytes(b"raw")
    with pytest.raises(OutputFolderError, match=f"{user} exists and was not written by MicroCrystalNet.*--out"):
        write_result(tmp_path, "scene")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(OutputFolderError, match="is not a result folder \\(a file\\)"):
        write_result(tmp_path, "file")
    assert (user / "raw.tif").read_bytes() == b"raw" and (tmp_path / "file").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "scene"]


def test_our_folder_holding_a_users_file_or_an_input_is_not_replaced(tmp_path):
    folder = write_result(tmp_path, "scene")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="notes.txt.*move them out"):
        write_result(tmp_path, "scene")
    (folder / "notes.txt").unlink()
    with pytest.raises(OutputFolderError, match="holds the input"):
        check_replaceable(folder, OWN, inputs=[folder / "results.csv"])


def test_a_failed_write_changes_nothing(tmp_path):
    folder = write_result(tmp_path, "scene", "first")
    with pytest.raises(RuntimeError), result_folder_written(folder, OWN) as partial:
        (partial / "results.csv").write_text("half")
        raise RuntimeError("analysis failed")
    assert (folder / "results.csv").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


def test_an_output_folder_that_is_a_file_gives_a_message_that_says_what_to_do(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(OutputWriteError, match="a file is in the way.*--out"):
        write_result(tmp_path / "out", "scene")
    full = output_write_error(OSError(errno.ENOSPC, "No space left on device", str(tmp_path)), tmp_path)
    assert "disk is full" in str(full) and str(tmp_path) in str(full)
    read_only = output_write_error(OSError(errno.EROFS, "Read-only file system", str(tmp_path)), tmp_path)
    assert "choose a folder you can write to with --out" in str(read_only)


def leftover(out, name, kind, pid, text):
    folder = out / f".{name}.{kind}-{pid}"
    folder.mkdir()
    (folder / MARKER_NAME).write_text(json.dumps({"program": "MicroCrystalNet", "host": socket.gethostname(),
                                                  "pid": pid}))
    (folder / "results.csv").write_text(text)
    return folder


def test_leftovers_of_gone_processes_are_recovered_and_those_of_running_ones_kept(tmp_path):
    gone = dead_pid()
    leftover(tmp_path, "a", "previous", gone, "last complete")  # killed between the two renames
    leftover(tmp_path, "a", "partial", gone, "half")
    write_result(tmp_path, "b", "new")
    leftover(tmp_path, "b", "previous", gone, "old")  # killed after the swap, before removing the old one
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = leftover(tmp_path, "c", "partial", running.pid, "in progress")
        user = tmp_path / f".d.partial-{gone}"
        user.mkdir()
        (user / "mine.txt").write_text("not ours")
        notices = recover_leftovers(tmp_path)
        assert (tmp_path / "a" / "results.csv").read_text() == "last complete"
        assert (tmp_path / "b" / "results.csv").read_text() == "new"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a", "b", live.name, user.name])
        assert any("put back the last complete result" in notice and str(tmp_path / "a") in notice
                   for notice in notices)
        assert any(user.name in notice and "left alone" in notice for notice in notices)
    finally:
        running.kill()
        running.wait()
    recover_leftovers(tmp_path, "c")  # its writer is gone now
    assert not live.exists() and (user / "mine.txt").read_text() == "not ours"


def test_a_result_folder_of_an_earlier_version_is_taken_as_ours_and_a_look_alike_is_not(tmp_path):
    earlier = tmp_path / "scene"
    earlier.mkdir()
    (earlier / "results.csv").write_text("old")
    (earlier / "summary.json").write_text(json.dumps({"versions": {"microcrystalnet": "0.1.0"}}))
    check_replaceable(earlier, OWN)
    assert (earlier / MARKER_NAME).is_file()
    write_result(tmp_path, "scene", "new")
    assert (earlier / "results.csv").read_text() == "new"
    look_alike = tmp_path / "other"
    look_alike.mkdir()
    (look_alike / "results.csv").write_text("a user's table")
    (look_alike / "summary.json").write_text(json.dumps({"written_by": "someone else"}))
    with pytest.raises(OutputFolderError, match="was not written by MicroCrystalNet"):
        check_replaceable(look_alike, OWN)
    assert not (look_alike / MARKER_NAME).exists()
