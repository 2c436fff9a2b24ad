"""Find the files to ingest under a root folder, with include/exclude globs.

Symlinks are followed only when they point to a regular file inside the root; anything else
(links leaving the root, loops, dangling links, linked folders) is reported, never read.

Hashing every file on every run is what an unchanged re-run would mostly spend its time on, so a
hash recorded by an earlier run is reused while the file's stat fingerprint (size, mtime, ctime,
inode) is unchanged. Like git's index, a fingerprint is only trusted when the file's mtime is
older than the moment its hash was taken by more than the filesystem's timestamp granularity:
a file rewritten within the same clock tick as its hashing keeps its mtime, so it is re-hashed.
ctime cannot be set from user space (unlike mtime with `touch -d`), and a replaced file has a new
inode, so edits that restore size and mtime are still seen.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ragline.records import FileReport, SourceFile

HASH_BLOCK = 1 << 20
# Coarsest mtime granularity among common filesystems (FAT: 2 s); see reusable_hash.
RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class KnownHash:
    """What an earlier run recorded about a file: its fingerprint then, and the hash it had."""

    fingerprint: str
    sha256: str
    hashed_ns: int


class DiscoveryError(Exception):
    """The ingest root itself cannot be used (missing, not a folder, unreadable)."""


@dataclass
class Discovery:
    root: str
    files: list[SourceFile] = field(default_factory=list)
    reports: list[FileReport] = field(default_factory=list)


def matches(rel_path: str, patterns: list[str]) -> bool:
    """fnmatch with `**/` also matching at the top level (`**/*.md` matches `a.md`)."""
    for pattern in patterns:
        if fnmatch.fnmatch(rel_path, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatch(rel_path, pattern[3:]):
            return True
    return False


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_type_of(path: str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix or "none"


def check_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DiscoveryError(f"{path} does not exist: pass a folder (or file) that holds documents.")
    if not os.access(path, os.R_OK):
        raise DiscoveryError(f"{path} is not readable: check its permissions (chmod +r).")
    return path.resolve()


def has_candidates(root: str | Path, include: list[str], exclude: list[str]) -> bool:
    """True as soon as one file under `root` passes the globs (cheap: nothing is read)."""
    root_path = check_root(root)
    if root_path.is_file():
        return True
    for dirpath, _dirnames, filenames in os.walk(root_path, followlinks=False):
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root_path).as_posix()
            if matches(rel, include) and not matches(rel, exclude):
                return True
    return False


def root_of(root: str | Path) -> str:
    """The folder that sources are relative to: `root` itself, or a file's parent folder."""
    root_path = check_root(root)
    return str(root_path.parent if root_path.is_file() else root_path)


def fingerprint_of(stat: os.stat_result) -> str:
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"


def reusable_hash(known: KnownHash | None, stat: os.stat_result) -> str | None:
    """The recorded hash, when the file provably has not changed since it was taken."""
    if known is None or not known.sha256 or known.fingerprint != fingerprint_of(stat):
        return None
    if stat.st_mtime_ns >= known.hashed_ns - RACY_WINDOW_NS:
        return None
    return known.sha256


def discover(
    root: str | Path,
    include: list[str],
    exclude: list[str],
    max_file_mb: float,
    known: Mapping[str, KnownHash] | None = None,
) -> Discovery:
    """List candidate files under `root` (or `root` itself when it is a file), hashed.

    `known` maps sources to what an earlier run recorded; their hashes are reused when valid.
    """
    root_path = check_root(root)
    known = known or {}
    if root_path.is_file():
        found = Discovery(root=str(root_path.parent))
        _add_file(found, root_path, root_path.parent, max_file_mb, known)
        return found
    found = Discovery(root=str(root_path))
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=False, onerror=None):
        dirnames.sort()
        for name in list(dirnames):
            full = Path(dirpath) / name
            rel = full.relative_to(root_path).as_posix()
            if matches(rel + "/", exclude) or matches(rel, exclude):
                dirnames.remove(name)
            elif full.is_symlink():
                found.reports.append(FileReport(rel, "skipped", reason="symlinked folder: not followed"))
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root_path).as_posix()
            if matches(rel, include) and not matches(rel, exclude):
                _add_file(found, full, root_path, max_file_mb, known)
    return found


def _add_file(
    found: Discovery, full: Path, root_path: Path, max_file_mb: float, known: Mapping[str, KnownHash]
) -> None:
    rel = full.relative_to(root_path).as_posix()
    reason = _unusable_reason(full, root_path, max_file_mb)
    if reason:
        found.reports.append(FileReport(rel, "skipped", reason=reason))
        return
    try:
        # Stat before hashing: a write that lands during hashing changes the fingerprint the
        # next run compares against, so that run re-hashes instead of trusting a torn hash.
        stat = full.stat()
        hashed_ns = time.time_ns()
        digest = reusable_hash(known.get(rel), stat)
        if digest is None:
            digest = file_sha256(full)
        else:
            hashed_ns = known[rel].hashed_ns
    except FileNotFoundError:
        found.reports.append(FileReport(rel, "failed", reason="file disappeared while being read"))
        return
    except OSError as exc:
        found.reports.append(FileReport(rel, "failed", reason=f"cannot read file: {exc.strerror}"))
        return
    found.files.append(
        SourceFile(str(full), rel, stat.st_size, digest, file_type_of(rel), fingerprint_of(stat), hashed_ns)
    )


def _unusable_reason(full: Path, root_path: Path, max_file_mb: float) -> str | None:
    if full.is_symlink():
        try:
            target = full.resolve(strict=True)
        except (OSError, RuntimeError):
            return "broken symlink or symlink loop: not followed"
        if not target.is_relative_to(root_path):
            return "symlink points outside the ingest root: not followed"
        if not target.is_file():
            return "symlink to something that is not a regular file: not followed"
        full = target
    try:
        stat = full.stat()
    except FileNotFoundError:
        return "file disappeared before it could be read"
    except OSError as exc:
        return f"cannot stat file: {exc.strerror}"
    if not full.is_file():
        return "not a regular file (device, socket or pipe)"
    if stat.st_size > max_file_mb * 1024 * 1024:
        return f"file is {stat.st_size / 2**20:.1f} MB, over the {max_file_mb:g} MB limit (ingest.max_file_mb)"
    if not os.access(full, os.R_OK):
        return "permission denied: the file is not readable by this user"
    return None
