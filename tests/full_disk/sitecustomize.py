"""A disk that fills up: after ``RLNAS_TEST_DISK_WRITES`` flushed files every ``os.fsync`` fails with ENOSPC.

Put this folder first on ``PYTHONPATH`` of a subprocess (tests/test_reliability.py).
"""

import errno
import os

_left = int(os.environ.get("RLNAS_TEST_DISK_WRITES", "-1"))
if _left >= 0:
    _fsync = os.fsync

    def _full_fsync(fd: int) -> None:
        global _left
        if _left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _left -= 1
        _fsync(fd)

    os.fsync = _full_fsync
