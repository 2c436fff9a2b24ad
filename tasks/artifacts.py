"""Artifacts on the run page in the Prefect UI: a progress bar that moves as batches finish.

Whatever started the run (the CLI, `ragline serve`, a worker, a schedule), its progress shows on
its flow-run page (Artifacts tab) and on the Artifacts page under the key; the CLI's own bar is
fed from the same reports (ragline.progress).
"""

from __future__ import annotations

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from ragline import progress
from ragline.tasks.cancellation import raise_if_cancelled


class RunProgress:
    """A progress artifact on the current flow run, created at the first report.

    `key` (lowercase letters, digits, dashes) names it on the Artifacts page; `unit` is what is
    counted ("files", "queries", "backends"). Each report is also a point where a served run
    that was cancelled stops (tasks/cancellation.py).
    """

    def __init__(self, key: str, unit: str, title: str):
        self.key = key
        self.unit = unit
        self.title = title
        self.artifact_id = None

    def report(self, done: int, total: int) -> None:
        progress.report(done, total)
        percent = round(100.0 * done / total, 1) if total else 100.0
        description = f"{self.title}: {done} of {total} {self.unit} done"
        if self.artifact_id is None:
            self.artifact_id = create_progress_artifact(percent, key=self.key, description=description)
        else:
            update_progress_artifact(self.artifact_id, percent, description=description)
        raise_if_cancelled()
