"""User mistakes end as one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

from tests.conftest import permission_prefix, run_cli


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_path(tmp_path):
    missing = tmp_path / "no-such-folder"
    assert_one_line_error(run_cli("ingest", str(missing)), "does not exist")


def test_unreadable_path(tmp_path):
    """A real unreadable folder (chmod 000), refused before anything starts."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "notes.txt").write_text("Nobody should read this.")
    locked.chmod(0)
    try:
        result = run_cli("ingest", str(locked), prefix=permission_prefix())
    finally:
        locked.chmod(0o700)
    assert_one_line_error(result, "is not readable", "chmod")


def test_path_through_a_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(run_cli("ingest", str(blocker / "docs")), "does not exist")


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("ingest", str(empty)), "no documents found")


def test_folder_with_only_excluded_files(tmp_path):
    folder = tmp_path / "hidden-only"
    folder.mkdir()
    (folder / ".secret").write_text("not a document")
    assert_one_line_error(run_cli("ingest", str(folder)), "no documents found")


def test_empty_question():
    assert_one_line_error(run_cli("ask", "   "), "question is empty")


def test_bad_setting_value(tmp_path):
    result = run_cli("config", env={"RAGLINE_RETRIEVAL__K": "many"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "invalid settings" in result.stderr and "retrieval" in result.stderr
