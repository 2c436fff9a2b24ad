"""Limits that keep one hostile file from taking down a parser process's host.

`ingest.max_file_mb` bounds what a file weighs on disk, not what parsing it costs: a zip-based
document (docx, xlsx, pptx, epub, odt...) of a few kilobytes can unpack to gigabytes, and a PDF
stream can inflate the same way. Two limits hold for every file:

- before parsing, the sizes a zip container declares for its members must add up to at most
  `ingest.max_unzipped_mb` (a member that inflates past its declared size fails its CRC check in
  zipfile, so the declared sizes bound what the parsers can unpack);
- each parser process gets an address-space limit (RLIMIT_AS) of what it uses once started plus
  `ingest.parser_memory_mb`, so a parser that allocates without bound gets a MemoryError (the
  file is reported as failed) or dies (the pool replaces it), and `ragline serve`, the ingest
  flow and the other files carry on.
"""

from __future__ import annotations

import contextlib
import os
import zipfile

from ragline.parsing.partition import ParseError


def check_unzipped_size(path: str, max_unzipped_mb: float) -> None:
    """Raise ParseError when `path` is a zip container declaring more than `max_unzipped_mb`."""
    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # not a readable zip: the parser reports what is wrong with it
    if total > max_unzipped_mb * 2**20:
        raise ParseError(
            f"its zip container unpacks to {total / 2**20:,.0f} MB, over the {max_unzipped_mb:g} MB "
            "limit (ingest.max_unzipped_mb): a zip bomb, or a document too large to parse safely"
        )


def _address_space_bytes() -> int | None:
    """This process's current virtual memory size (Linux: /proc/self/statm), or None if unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    return None


def cap_memory(memory_mb: int) -> bool:
    """Limit this process to what it uses now plus `memory_mb` MB; False where that cannot be done."""
    if memory_mb <= 0:
        return False
    try:
        import resource
    except ImportError:  # Windows
        return False
    used = _address_space_bytes()
    if used is None:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = used + memory_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
        return True
    return False
