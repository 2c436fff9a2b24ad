"""What a parser process does: partition and chunk one file at a time, sent by ragline.parsing.pool.

Only parser processes import this module. Importing it loads unstructured and the spaCy model,
so the forkserver that the pool preloads it into pays that start-up cost (~8 s) once, and every
worker forked from it (including replacements for workers killed on a timeout) starts warm.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import email
import importlib
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from ragline.parsing.chunking import chunk_elements
from ragline.parsing.limits import cap_memory, check_unzipped_size
from ragline.parsing.options import ParseOptions, ParseOutcome
from ragline.parsing.partition import ParseError, partition_file, prepare_unstructured
from ragline.records import Chunk, FileReport, SourceFile
from ragline.timing import seconds_since

NO_TEXT = "no text found: the document is empty, scanned without a text layer, or encrypted"
ENCRYPTED_EMAIL = "no text: encrypted email (PGP or S/MIME); decrypt it first"
# Text formats whose partitioners do not detect UTF-16/32 on their own (.txt does).
TRANSCODE_TYPES = {"eml", "md", "html", "htm", "xml", "csv", "tsv", "rst", "org", "json", "none"}
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def parse_one(source_file: SourceFile, options: ParseOptions) -> ParseOutcome:
    started = time.perf_counter()
    try:
        chunks = _chunks_of(source_file, options)
    except MemoryError:
        reason = (
            f"parsing needed more than the {options.memory_mb} MB a parser may use (ingest.parser_memory_mb); "
            "raise the limit, or split or convert the file"
        )
        return ParseOutcome(
            FileReport(source_file.source, "failed", reason=reason, seconds=seconds_since(started)),
            content_failure=True,
        )
    except ParseError as exc:
        report = FileReport(source_file.source, "failed", reason=str(exc), seconds=seconds_since(started))
        return ParseOutcome(report, content_failure=not exc.transient)
    except Exception as exc:  # a chunker bug must not stop the run either
        reason = f"cannot chunk: {type(exc).__name__}: {exc}"[:300]
        return ParseOutcome(
            FileReport(source_file.source, "failed", reason=reason, seconds=seconds_since(started)),
            content_failure=True,
        )
    if chunks:
        return ParseOutcome(
            FileReport(source_file.source, "ingested", chunks=len(chunks), seconds=seconds_since(started)), chunks
        )
    reason = _no_text_reason(source_file)
    return ParseOutcome(FileReport(source_file.source, "skipped", reason=reason, seconds=seconds_since(started)))


def _chunks_of(source_file: SourceFile, options: ParseOptions) -> list[Chunk]:
    if source_file.file_type == "eml" and _email_is_encrypted(source_file.path):
        return []
    check_unzipped_size(source_file.path, options.max_unzipped_mb)
    with _readable_copy(source_file) as path:
        elements = partition_file(path, options.strategy, options.spacy_model)
    o = options
    return chunk_elements(
        elements, source_file, o.max_characters, o.new_after_n_chars, o.overlap, o.combine_text_under_n_chars
    )


@contextlib.contextmanager
def _readable_copy(source_file: SourceFile):
    """The file itself, or a UTF-8 copy of a UTF-16/32 text file its partitioner would misread,
    or a link with a plain name to a file whose path is not valid UTF-8 (unstructured encodes
    the path as UTF-8 and would fail on it)."""
    encoding = _bom_encoding(source_file.path) if source_file.file_type in TRANSCODE_TYPES else None
    if encoding is None and _utf8_path(source_file.path):
        yield source_file.path
        return
    suffix = f".{source_file.file_type}" if source_file.file_type.isalnum() else ""
    if encoding is None:
        with tempfile.TemporaryDirectory(prefix="ragline-name-") as tmp:
            link = Path(tmp) / f"document{suffix}"
            link.symlink_to(source_file.path)
            yield str(link)
        return
    suffix = suffix if suffix and suffix != ".none" else ".txt"
    with tempfile.TemporaryDirectory(prefix="ragline-transcode-") as tmp:
        copy = Path(tmp) / f"document{suffix}"
        try:
            raw = Path(source_file.path).read_bytes()
        except OSError as exc:  # vanished or unreadable since discovery: a later run retries it
            raise ParseError(f"could not read the file: {exc.strerror or exc}", transient=True) from exc
        text = raw.decode(encoding, errors="replace").lstrip("\ufeff")
        copy.write_text(text, encoding="utf-8")
        yield str(copy)


def _utf8_path(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _bom_encoding(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return None  # the partitioner reports the read error with its reason
    return next((encoding for bom, encoding in BOMS if head.startswith(bom)), None)


def _email_is_encrypted(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            message = email.message_from_binary_file(handle)
    except OSError:
        return False
    content_type = message.get_content_type()
    return content_type == "multipart/encrypted" or (
        content_type in ("application/pkcs7-mime", "application/x-pkcs7-mime")
        and message.get_param("smime-type") != "signed-data"
    )


def _no_text_reason(source_file: SourceFile) -> str:
    if source_file.size == 0:
        return "empty file (0 bytes)"
    if source_file.file_type == "eml" and _email_is_encrypted(source_file.path):
        return ENCRYPTED_EMAIL
    if source_file.file_type == "msg" and _msg_is_encrypted(source_file.path):
        return ENCRYPTED_EMAIL
    if source_file.file_type == "pdf" and _pdf_is_encrypted(source_file.path):
        return "encrypted or password-protected PDF: decrypt it first"
    return NO_TEXT


def _msg_is_encrypted(path: str) -> bool:
    try:
        from oxmsg import Message

        return "encrypted" in Message.load(path).message_headers.get("Content-Type", "")
    except Exception:
        return False


def _pdf_is_encrypted(path: str) -> bool:
    try:
        from pypdf import PdfReader

        return bool(PdfReader(path).is_encrypted)
    except Exception:
        return False


# -- the process side ---------------------------------------------------------------------------


def serve(conn, options: ParseOptions) -> None:
    """Answer parse requests until the pool closes the pipe or sends None."""
    _die_with_parent()
    cap_memory(options.memory_mb)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(parse_one(job, options))


def _die_with_parent() -> None:
    """Exit when the forkserver, and so the ingest process, is gone (even killed with SIGKILL)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG, Linux
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:  # for systems without PR_SET_PDEATHSIG
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="ragline-parent-watch").start()


# unstructured imports each format's partitioner on first use (pdf alone takes seconds); loading
# them here keeps that out of every worker's first file and out of its time limit. Only those of
# the file types the run announced (pool.expect_file_types) when it did: a run of 3 .txt files
# then skips the ~5 s of pdf, xlsx, html, pptx and docx on 2 cores.
WARM_PARTITIONERS = (
    "text",
    "html",
    "md",
    "rst",
    "org",
    "docx",
    "pptx",
    "xlsx",
    "pdf",
    "email",
    "msg",
    "csv",
    "tsv",
    "epub",
    "odt",
    "rtf",
    "json",
    "xml",
)


# The partitioner unstructured picks per file type (by suffix; one it cannot name is detected).
PARTITIONER_OF_TYPE = {
    "txt": "text",
    "text": "text",
    "log": "text",
    "md": "md",
    "markdown": "md",
    "html": "html",
    "htm": "html",
    "rst": "rst",
    "org": "org",
    "docx": "docx",
    "doc": "docx",
    "pptx": "pptx",
    "ppt": "pptx",
    "xlsx": "xlsx",
    "xls": "xlsx",
    "pdf": "pdf",
    "eml": "email",
    "msg": "msg",
    "csv": "csv",
    "tsv": "tsv",
    "epub": "epub",
    "odt": "odt",
    "rtf": "rtf",
    "json": "json",
    "xml": "xml",
}


def partitioners_to_warm(announced: str | None) -> tuple[str, ...]:
    """The partitioners for the announced file types (comma-separated), or all of them when
    none were announced or one has no known partitioner (it would be detected from content)."""
    types = [t for t in (announced or "").split(",") if t]
    if not types or any(t not in PARTITIONER_OF_TYPE for t in types):
        return WARM_PARTITIONERS
    return tuple(dict.fromkeys(PARTITIONER_OF_TYPE[t] for t in types))


@contextlib.contextmanager
def _torch_hidden():
    """Hide torch while spaCy loads: its ML library thinc imports torch whenever it is installed
    (~3 s, half of the parser start on 2 cores), though the small English pipeline runs on
    numpy. Importable again afterwards (the hi_res strategy's layout models use it)."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # `import torch` raises ImportError, which thinc expects
    try:
        yield
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


def _warm() -> None:
    try:
        with _torch_hidden():
            prepare_unstructured()
            from ragline.parsing.partition import load_spacy_pipeline

            load_spacy_pipeline()
    except Exception:  # a worker reports the same problem per file, with its reason
        return
    from ragline.parsing.pool import WARM_TYPES_ENV

    for name in partitioners_to_warm(os.environ.get(WARM_TYPES_ENV)):
        with contextlib.suppress(Exception):
            importlib.import_module(f"unstructured.partition.{name}")


_warm()
