"""Output whose reader is gone (``paid apply 2>&1 | head``): the work goes on, in silence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_threads_that_log_after_the_reader_is_gone_finish_their_work(tmp_path: Path) -> None:
    """`paid apply 2>&1 | head`: once head exits, every thread still finishes its work.

    (Measured before: an apply of 500 services stopped at 218, its worker
    threads ended by BrokenPipeError mid-task, the main thread waiting.)
    """
    script = (
        "import threading, sys\n"
        "from paid import logs\n"
        "logs.configure('json')\n"
        "log = logs.structlog.get_logger('t')\n"
        "done = []\n"
        "def work(n):\n"
        "    for i in range(2000):\n"
        "        log.info('step', worker=n, i=i, pad='x' * 200)\n"
        "    done.append(n)\n"
        "threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        f"open({str(tmp_path / 'done')!r}, 'w').write(str(sorted(done)))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    process.stderr.read(100)  # the reader takes a little, then goes (as head does)
    process.stderr.close()

    assert 0 == process.wait(timeout=60)
    assert "[0, 1, 2, 3]" == (tmp_path / "done").read_text()
