"""Non-blocking OS file locks on POSIX (flock) and Windows (msvcrt), behind one small API.

Both release the lock when the holder exits or is killed, which is why ragline uses them for the
ingest and serve locks. Windows has no shared locks; a shared probe there takes an exclusive one
for the instant of the probe, which answers the same question ("does anybody hold it?").
"""

from __future__ import annotations

import os

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle, exclusive: bool) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def unlock(handle) -> None:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _lock(handle, exclusive: bool) -> bool:
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def unlock(handle) -> None:
        fcntl.flock(handle, fcntl.LOCK_UN)


def try_lock_exclusive(handle) -> bool:
    """Take an exclusive lock on the open file now, or return False if someone holds it."""
    return _lock(handle, exclusive=True)


def try_lock_shared(handle) -> bool:
    """Take a shared lock on the open file now, or return False if someone holds it exclusively."""
    return _lock(handle, exclusive=False)
