"""Atomic writes: no partial file, no temporary file left behind, the usual file mode."""

import os
import signal
import stat
import subprocess
import sys

import pytest
from helpers import TESTS_DIR

import sktorch
from sktorch import TorchClassifier
from sktorch._utils._atomic import _host, atomic_write, remove_stale_temporaries


def umask_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def test_written_files_get_the_usual_mode_not_0600(tmp_path, iris):
    X, y = iris
    clf = TorchClassifier(max_epochs=1, random_state=0, checkpoint_dir=tmp_path / "ckpt").fit(X, y)
    sktorch.save(clf, tmp_path / "m.sktorch")
    written = [tmp_path / "m.sktorch", clf.checkpoint_path_ / "last.pt"]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == umask_mode(), path.name


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(stream):
        stream.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail)
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"old"


KILLED_WRITER = """
import sys, time
from sktorch._utils._atomic import atomic_write

def write(stream):
    stream.write(b"partial")
    stream.flush()
    print("writing", flush=True)
    time.sleep(600)

atomic_write(sys.argv[1], write)
"""


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    path = tmp_path / "model.sktorch"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))}
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "writing"  # blocks until mid-write
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(leftovers) == 1
        # A live writer's temporary file is never touched.
        assert remove_stale_temporaries(path) == []
        assert leftovers[0].exists()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=60)
        writer.stdout.close()
    assert leftovers[0].exists()  # kill -9 leaves it: nothing can run in the process
    assert not path.exists()

    atomic_write(path, lambda stream: stream.write(b"whole"))
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"whole"


def test_other_files_and_other_hosts_temporaries_are_kept(tmp_path):
    path = tmp_path / "m.sktorch"
    others = [
        tmp_path / ".m.sktorch.otherhost-1.0123abcd.tmp",  # another host on a shared disk
        tmp_path / ".n.sktorch.x-1.0123abcd.tmp",  # another target
        tmp_path / "m.sktorch.tmp",
    ]
    for other in others:
        other.write_bytes(b"")
    # The pid of a process that has ended and been reaped on this host.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    stale = tmp_path / f".m.sktorch.{_host()}-{child.pid}.0123abcd.tmp"
    stale.write_bytes(b"")
    assert remove_stale_temporaries(path) == [stale]
    assert all(other.exists() for other in others)
