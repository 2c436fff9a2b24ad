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

A run covers a *scope* (see `resolve_scope`): a root folder, and within it everything, one
subfolder or one file. Sources are always relative to the root, so ingesting `docs/sub` or
`docs/a.txt` into a collection that already holds `docs` updates the same documents, and the
sync prunes only inside the scope. A listing that hit an error (an unreadable subfolder, an I/O
error) is marked incomplete: the sync then deletes nothing (ragline/ingestion/plan.py).

File names are bytes on POSIX; one that is not valid UTF-8 (`caf\\xe9.txt` in Latin-1) reaches
Python with surrogate escapes, which no store payload can hold. `display_path` gives its readable,
valid-UTF-8 form (`caf\\xe9.txt`, the byte written as an escape); that form is the document's source
and id, stable from run to run, while the real path is kept for reading the file.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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


class DiscoveryError(ValueError):
    """The ingest root itself cannot be used (missing, not a folder, unreadable)."""


def display_path(path: str | os.PathLike) -> str:
    """`path` as valid UTF-8 text: bytes that are not UTF-8 (surrogate escapes) become `\\xNN`."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def real_path(path: str | os.PathLike) -> str:
    """The path a display form names: `path` itself when it exists, else with its `\\xNN`
    escapes turned back into the bytes they stand for (a flow parameter from the CLI, the UI or
    the API is JSON, which cannot hold the raw bytes)."""
    text = os.fspath(path)
    if os.path.lexists(text) or "\\x" not in text:
        return text
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    candidate = os.fsdecode(raw)
    return candidate if os.path.lexists(candidate) else text


@dataclass(frozen=True)
class Scope:
    """What one run covers: `root` (what the store records, display form), the real root folder
    `root_path`, the real `path` given, and `within`: "" (the whole root), "sub/dir/" (a
    subfolder) or "a.txt" (one file), relative to the root."""

    root: str
    root_path: str
    path: str
    within: str = ""

    def covers(self, source: str) -> bool:
        if not self.within:
            return True
        if self.within.endswith("/"):
            return source.startswith(self.within)
        return source == self.within

    def describe(self) -> str:
        return f"{self.root}/{self.within}" if self.within else self.root


@dataclass
class Discovery:
    root: str
    files: list[SourceFile] = field(default_factory=list)
    reports: list[FileReport] = field(default_factory=list)
    # Folders (or files) the listing could not read: the listing is incomplete, nothing is pruned.
    listing_errors: list[str] = field(default_factory=list)


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
    if not str(root).strip() or "\x00" in str(root):
        raise DiscoveryError(f"{display_path(root)!r} is not a path: pass a folder (or file) that holds documents.")
    path = Path(real_path(Path(root).expanduser()))
    shown = display_path(path)
    if not path.exists():
        raise DiscoveryError(f"{shown} does not exist: pass a folder (or file) that holds documents.")
    if not os.access(path, os.R_OK):
        raise DiscoveryError(f"{shown} is not readable: check its permissions (chmod +r).")
    if not (path.is_dir() or path.is_file()):
        raise DiscoveryError(f"{shown} is neither a folder nor a regular file: pass a folder of documents.")
    return path.resolve()


def resolve_scope(path: str | Path, known_roots: list[str] = ()) -> Scope:
    """The scope of a run given `path`: inside a root the collection already has (the deepest
    one holding it), or `path` itself as a new root (a file's parent folder, for a file)."""
    target = check_root(path)
    shown = PurePosixPath(display_path(target))
    holders = [PurePosixPath(r) for r in known_roots if shown == PurePosixPath(r) or shown.is_relative_to(r)]
    if holders:
        root = max(holders, key=lambda r: len(r.parts))
        rel = shown.relative_to(root).as_posix()
        if target.is_file() and rel == ".":
            raise DiscoveryError(
                f"{target} is a file, but the collection holds it as a folder of documents: "
                "restore the folder, or ingest into another collection (--collection NAME)."
            )
        root_path = target
        for _ in shown.relative_to(root).parts:
            root_path = root_path.parent
        within = "" if rel == "." else (rel if target.is_file() else rel + "/")
        return Scope(str(root), str(root_path), str(target), within)
    if target.is_file():
        return Scope(display_path(target.parent), str(target.parent), str(target), display_path(target.name))
    return Scope(display_path(target), str(target), str(target))


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
    scope: Scope | None = None,
) -> Discovery:
    """List candidate files under `root` (or `root` itself when it is a file), hashed.

    `known` maps sources to what an earlier run recorded; their hashes are reused when valid.
    With `scope`, `root` is ignored: the scope's path is listed, with sources relative to its root.
    """
    scope = scope or resolve_scope(root)
    path, root_path = Path(scope.path), Path(scope.root_path)
    if not path.exists():
        raise DiscoveryError(f"{scope.path} disappeared during the run: nothing was deleted; re-run when it is back.")
    found = Discovery(root=scope.root)
    lister = _Lister(found, root_path, include, exclude, max_file_mb, known or {})
    if path.is_file():
        lister.add(path)
    else:
        lister.walk(path)
    return found


class _Lister:
    """Walks a folder into a Discovery; a folder it cannot read is recorded, never skipped silently."""

    def __init__(self, found: Discovery, root_path: Path, include, exclude, max_file_mb: float, known) -> None:
        self.found, self.root_path = found, root_path
        self.include, self.exclude, self.max_file_mb, self.known = include, exclude, max_file_mb, known
        self.sources: dict[str, str] = {}

    def walk(self, folder: Path) -> None:
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=self.listing_error):
            dirnames.sort()
            for name in list(dirnames):
                full = Path(dirpath) / name
                rel = self.rel(full)
                if matches(rel + "/", self.exclude) or matches(rel, self.exclude):
                    dirnames.remove(name)
                elif full.is_symlink():
                    self.found.reports.append(FileReport(rel, "skipped", reason="symlinked folder: not followed"))
            for name in sorted(filenames):
                full = Path(dirpath) / name
                rel = self.rel(full)
                if matches(rel, self.include) and not matches(rel, self.exclude):
                    self.add(full)

    def listing_error(self, exc: OSError) -> None:
        where = display_path(exc.filename or "?")
        self.found.listing_errors.append(f"{where}: {exc.strerror or exc}")

    def rel(self, full: Path) -> str:
        return display_path(full.relative_to(self.root_path).as_posix())

    def add(self, full: Path) -> None:
        rel = self.rel(full)
        if rel in self.sources:  # two raw names with one display form: keep the first, say so
            reason = f"its name reads the same as {display_path(self.sources[rel])!r}; rename one of them"
            self.found.reports.append(FileReport(rel, "skipped", reason=reason))
            return
        self.sources[rel] = str(full)
        _add_file(self.found, full, self.root_path, self.max_file_mb, self.known)


def _add_file(
    found: Discovery, full: Path, root_path: Path, max_file_mb: float, known: Mapping[str, KnownHash]
) -> None:
    rel = display_path(full.relative_to(root_path).as_posix())
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
        SourceFile(str(full), rel, stat.st_size, digest, file_type_of(rel), fingerprint_of(stat), hashed_ns, found.root)
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
