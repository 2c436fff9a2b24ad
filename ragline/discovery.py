"""Find the files to ingest under a root folder, with include/exclude globs.

Symlinks are followed only when they point to a regular file inside the root; anything else
(links leaving the root, loops, dangling links, linked folders) is reported, never read.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ragline.records import FileReport, SourceFile

HASH_BLOCK = 1 << 20


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


def discover(
    root: str | Path,
    include: list[str],
    exclude: list[str],
    max_file_mb: float,
) -> Discovery:
    """List candidate files under `root` (or `root` itself when it is a file), hashed."""
    root_path = check_root(root)
    if root_path.is_file():
        found = Discovery(root=str(root_path.parent))
        _add_file(found, root_path, root_path.parent, max_file_mb)
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
                _add_file(found, full, root_path, max_file_mb)
    return found


def _add_file(found: Discovery, full: Path, root_path: Path, max_file_mb: float) -> None:
    rel = full.relative_to(root_path).as_posix()
    reason = _unusable_reason(full, root_path, max_file_mb)
    if reason:
        found.reports.append(FileReport(rel, "skipped", reason=reason))
        return
    try:
        digest = file_sha256(full)
        size = full.stat().st_size
    except FileNotFoundError:
        found.reports.append(FileReport(rel, "failed", reason="file disappeared while being read"))
        return
    except OSError as exc:
        found.reports.append(FileReport(rel, "failed", reason=f"cannot read file: {exc.strerror}"))
        return
    found.files.append(SourceFile(str(full), rel, size, digest, file_type_of(rel)))


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
