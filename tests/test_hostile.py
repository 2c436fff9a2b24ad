"""Hostile input: every edge file of the shared docs and generated nasties, one test per class.

Each test ingests a small folder (the hostile files plus two plain documents) through the real
flow and asserts the hostile files' report rows and that the plain documents were ingested.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from tests.conftest import SHARED_DOCS, needs_shared_data
from tests.sync_support import make_folder, rows, run_ingest, snapshot

pytestmark = [needs_shared_data()]

REST = ("fake-text.txt", "README.rst")


@pytest.fixture
def folder(tmp_path, ragline_env, prefect_api):
    return make_folder(tmp_path / "docs", REST)


def add_shared(folder, *names):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_DOCS / name, folder / name)


def check(summary: dict, expected: dict[str, tuple[str, str | None]]) -> dict:
    """Assert each expected (status, reason fragment) row, and that the rest was ingested."""
    by_source = rows(summary)
    for source, (status, fragment) in expected.items():
        row = by_source[source]
        assert row["status"] == status, row
        if fragment is None:
            assert row["chunks"] > 0, row
        else:
            assert fragment.lower() in (row["reason"] or "").lower(), row
    for source in REST:
        assert by_source[source]["status"] == "ingested" and by_source[source]["chunks"] > 0, by_source[source]
    return by_source


def texts_of(source: str) -> list[str]:
    return [p["text"] for p in snapshot().values() if p["source"] == source]


def test_encrypted_documents(folder):
    names = ("pdf/password.pdf", "password_protected.xlsx", "fake-encrypted.msg", "eml/fake-encrypted.eml")
    add_shared(folder, *names)
    summary = run_ingest(folder)
    check(
        summary,
        {
            "pdf/password.pdf": ("skipped", "encrypted or password-protected pdf"),
            "password_protected.xlsx": ("failed", "password"),
            "fake-encrypted.msg": ("skipped", "encrypted email"),
            "eml/fake-encrypted.eml": ("skipped", "encrypted email"),
        },
    )
    # Unchanged on the next run: reported again, parsed no more.
    again = run_ingest(folder)
    assert again["parsed"] == 0
    assert "not retried" in rows(again)["password_protected.xlsx"]["reason"]


def test_malformed_pdf_and_pptx(folder):
    names = (
        "pdf/failure-after-repair.pdf",
        "pdf/invalid-pdf-structure-pdfminer-one-page.pdf",
        "fake-power-point-malformed.pptx",
    )
    add_shared(folder, *names)
    check(
        run_ingest(folder),
        {
            "pdf/failure-after-repair.pdf": ("skipped", "no text found"),
            "pdf/invalid-pdf-structure-pdfminer-one-page.pdf": ("ingested", None),
            "fake-power-point-malformed.pptx": ("ingested", None),
        },
    )


def test_empty_and_whitespace_only_files(folder):
    add_shared(folder, "empty.txt", "eml/empty.eml", "empty.xlsx", "fake-text-all-whitespace.txt")
    (folder / "generated-empty.md").write_bytes(b"")
    summary = run_ingest(folder)
    check(
        summary,
        {
            "empty.txt": ("skipped", "empty file (0 bytes)"),
            "generated-empty.md": ("skipped", "empty file (0 bytes)"),
            "eml/empty.eml": ("skipped", "no text"),
            "empty.xlsx": ("skipped", "no text"),
            "fake-text-all-whitespace.txt": ("skipped", "no text"),
        },
    )
    assert run_ingest(folder)["parsed"] == 0


def test_utf16_and_legacy_encodings(folder):
    add_shared(
        folder, "fake-text-utf-16.txt", "eml/fake-email-utf-16.eml", "fake-html-cp1252.html", "umlauts-non-utf8.md"
    )
    check(
        run_ingest(folder),
        {
            name: ("ingested", None)
            for name in (
                "fake-text-utf-16.txt",
                "eml/fake-email-utf-16.eml",
                "fake-html-cp1252.html",
                "umlauts-non-utf8.md",
            )
        },
    )
    assert "This is a test email" in texts_of("eml/fake-email-utf-16.eml")[0]
    assert "\x00" not in texts_of("eml/fake-email-utf-16.eml")[0]
    assert "schöne" in texts_of("fake-html-cp1252.html")[0]
    assert "können" in texts_of("umlauts-non-utf8.md")[0]


def test_wrong_or_missing_extension_and_include_directive(folder):
    add_shared(folder, "fake-incomplete-json.txt", "file_we_dont_want_imported", "README-w-include.org")
    check(
        run_ingest(folder),
        {
            "fake-incomplete-json.txt": ("ingested", None),
            "file_we_dont_want_imported": ("ingested", None),
            "README-w-include.org": ("ingested", None),
        },
    )
    # The org file's #+INCLUDE of the extension-less file is not followed.
    assert not [t for t in texts_of("README-w-include.org") if "wombat" in t]


def test_email_with_an_image_attachment_keeps_its_text(folder):
    add_shared(folder, "eml/email-with-image.eml")
    check(run_ingest(folder), {"eml/email-with-image.eml": ("ingested", None)})
    assert any("logo is attached" in t for t in texts_of("eml/email-with-image.eml"))


def test_archive_is_reported_as_unsupported(folder):
    add_shared(folder, "simple.zip")
    check(run_ingest(folder), {"simple.zip": ("failed", "unsupported file type")})


def test_random_binary_named_txt(folder):
    (folder / "noise.txt").write_bytes(random.Random(5).randbytes(64 * 1024))
    check(run_ingest(folder), {"noise.txt": ("failed", "cannot parse")})


def write_single_line(path, megabytes: int) -> None:
    words = ("alpha", "beta", "gamma", "delta", "river", "stone")
    line = " ".join(words[i % len(words)] for i in range(200_000)) + " "
    with open(path, "w") as handle:
        for _ in range(megabytes * 2**20 // len(line) + 1):
            handle.write(line)


def test_50mb_single_line_over_the_size_limit(folder, monkeypatch):
    write_single_line(folder / "a-huge-line.txt", 50)
    monkeypatch.setenv("RAGLINE_INGEST__MAX_FILE_MB", "10")
    check(run_ingest(folder), {"a-huge-line.txt": ("skipped", "over the 10 MB limit (ingest.max_file_mb)")})


def test_50mb_single_line_over_the_time_limit(folder, monkeypatch):
    """The parser of a file that overruns is killed; the next file is parsed by a fresh worker."""
    write_single_line(folder / "a-huge-line.txt", 50)
    monkeypatch.setenv("RAGLINE_INGEST__PARSE_TIMEOUT_S", "10")
    check(run_ingest(folder), {"a-huge-line.txt": ("failed", "longer than 10 s (ingest.parse_timeout_s)")})


def test_symlink_loops_and_links_leaving_the_root(folder, tmp_path):
    outside = make_folder(tmp_path / "outside", ("fake-email.msg",))
    os.symlink("loop-a", folder / "loop-b")
    os.symlink("loop-b", folder / "loop-a")
    os.symlink("self.txt", folder / "self.txt")
    os.symlink(outside / "fake-email.msg", folder / "escape.msg")
    os.symlink(outside, folder / "escape-dir")
    os.symlink("fake-text.txt", folder / "inside-link.txt")
    summary = run_ingest(folder)
    check(
        summary,
        {
            "loop-a": ("skipped", "symlink loop"),
            "loop-b": ("skipped", "symlink loop"),
            "self.txt": ("skipped", "symlink loop"),
            "escape.msg": ("skipped", "outside the ingest root"),
            "escape-dir": ("skipped", "symlinked folder"),
            "inside-link.txt": ("ingested", None),
        },
    )
    assert not [p for p in snapshot().values() if "escape" in p["source"]]


def test_file_deleted_between_discovery_and_parsing(folder, monkeypatch):
    import ragline.ingestion.sync as sync_steps  # where the discover-files task finds `discover`

    add_shared(folder, "codeblock.md")
    real_discover = sync_steps.discover

    def discover_then_delete(*args, **kwargs):
        found = real_discover(*args, **kwargs)
        (folder / "codeblock.md").unlink()
        return found

    monkeypatch.setattr(sync_steps, "discover", discover_then_delete)
    check(run_ingest(folder), {"codeblock.md": ("failed", "disappeared")})
    monkeypatch.setattr(sync_steps, "discover", real_discover)
    # Nothing was recorded for it, so the next run has nothing to clean up or report.
    assert "codeblock.md" not in rows(run_ingest(folder))


def test_unreadable_file(folder):
    """chmod 000. Root reads anything, so as root the ingest runs without the DAC capabilities."""
    secret = folder / "secret.txt"
    secret.write_text("Nobody should read this.")
    secret.chmod(0)
    if os.geteuid() != 0:
        check(run_ingest(folder), {"secret.txt": ("skipped", "permission denied")})
        return
    if not shutil.which("setpriv"):
        pytest.skip("running as root and setpriv (util-linux) is missing: chmod 000 cannot stop root")
    drop = "-dac_override,-dac_read_search"
    env = dict(os.environ)
    command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--"]
    probe = subprocess.run([*command, "cat", str(secret)], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("this container does not let a process drop CAP_DAC_OVERRIDE")
    cli = [sys.executable, "-m", "ragline.cli", "ingest", str(folder), "--collection", "docs", "--json"]
    result = subprocess.run([*command, *cli], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    check(json.loads(result.stdout), {"secret.txt": ("skipped", "permission denied")})


def test_names_with_spaces_unicode_and_newlines(folder):
    names = ("with space.txt", "ünïcödé 名前.md", "new\nline.txt")
    for name in names:
        (folder / name).write_text(f"A document called {name!r} about tide tables and lighthouses.\n")
    check(run_ingest(folder), {name: ("ingested", None) for name in names})
    assert {p["source"] for p in snapshot().values()} >= set(names)
    assert run_ingest(folder)["parsed"] == 0
