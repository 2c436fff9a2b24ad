"""Parse files in worker processes, so that a parser that hangs or crashes can be stopped.

unstructured runs arbitrary third-party parsers on arbitrary input; some take minutes on hostile
files (a 50 MB single-line text) and a thread cannot be stopped. Each file is therefore sent to a
worker process and waited for at most `ingest.parse_timeout_s`; a worker that overruns (or dies)
is killed and replaced, and the file is reported as failed with the reason.

Workers are forked from a `forkserver` that has imported unstructured and loaded the spaCy model
(ragline/parsing/worker.py), so that import cost is paid once per process, not per worker or per
file, and a replacement worker starts warm. Forkserver rather than fork: the ingest process runs
threads (Prefect, the embedder), which fork would copy in whatever state they were in. Workers
take one file at a time and live as long as the pool (one per process, closed at exit).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.machinery
import multiprocessing
import os
import sys
import threading
import time

from ragline.parsing.options import ParseOptions, ParseOutcome
from ragline.records import FileReport, SourceFile

# The worker module is named, not imported: importing it loads unstructured, which this process
# never needs (and it would make the pool and its workers import each other).
WORKER_MODULE = "ragline.parsing.worker"
PRELOAD = [WORKER_MODULE]
# The file types a run will parse, for the forkserver's warm-up (worker.partitioners_to_warm).
WARM_TYPES_ENV = "RAGLINE_PARSER_WARM_TYPES"
_start_lock = threading.Lock()


@contextlib.contextmanager
def _main_not_reimported():
    """Start workers without re-running the caller's main script in them.

    A forkserver child normally re-imports `__main__` (by path or module name) so that functions
    defined there can be unpickled; for a script without an `if __name__ == "__main__":` guard
    that re-runs the whole script (and its ingest) in every worker. Workers only need ragline, so
    while one starts, `__main__` reports a spec named "__main__", which multiprocessing skips.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _start_lock:
        saved = getattr(main, "__spec__", None)
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
        try:
            yield
        finally:
            main.__spec__ = saved


def _worker_main(conn, options: ParseOptions) -> None:
    importlib.import_module(WORKER_MODULE).serve(conn, options)


class _Worker:
    def __init__(self, context, options: ParseOptions):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, options), daemon=True, name="ragline-parser")
        with _main_not_reimported():
            self.process.start()
        child.close()

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
        self.conn.close()


class ParserPool:
    """Up to `workers` parser processes; `parse` is thread-safe and blocks for a free worker."""

    def __init__(self, options: ParseOptions, workers: int):
        self.options = options
        self._context = multiprocessing.get_context("forkserver")
        # Only effective before this process's forkserver starts; later workers import on demand.
        self._context.set_forkserver_preload(PRELOAD)
        self._workers = max(1, workers)
        self._slots = threading.BoundedSemaphore(self._workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        # warm() starts workers in the background: a parse waits for one of those rather than
        # starting an extra process, so the pool never holds more than `workers`.
        self._ready = threading.Condition(self._lock)
        self._starting = 0

    def parse(self, source_file: SourceFile, timeout_s: float) -> ParseOutcome:
        with self._slots:
            worker = self._take()
            started = time.perf_counter()
            try:
                worker.conn.send(source_file)
                if worker.conn.poll(timeout_s):
                    outcome = worker.conn.recv()
                    self._give_back(worker)
                    return outcome
                reason = (
                    f"parsing took longer than {timeout_s:g} s (ingest.parse_timeout_s) and was stopped; "
                    "raise the limit, or split or convert the file"
                )
            except (EOFError, OSError):
                worker.process.join(timeout=5)
                reason = f"the parser process died while reading this file (exit code {worker.process.exitcode})"
            self._discard(worker)
            seconds = round(time.perf_counter() - started, 3)
            return ParseOutcome(
                FileReport(source_file.source, "failed", reason=reason, seconds=seconds), content_failure=True
            )

    @property
    def workers(self) -> int:
        return self._workers

    def warm(self) -> None:
        """Start the parser processes now. The first start imports unstructured and loads spaCy
        (~10 s on 2 cores); a caller overlaps that with other start-up work, e.g. the model load."""
        while True:
            with self._lock:
                if len(self._idle) + len(self._busy) + self._starting >= self._workers:
                    return
                self._starting += 1
            worker = None
            try:
                worker = _Worker(self._context, self.options)
            finally:
                with self._ready:
                    self._starting -= 1
                    if worker is not None:
                        self._idle.append(worker)
                    self._ready.notify()

    def _take(self) -> _Worker:
        with self._ready:
            while not self._idle and self._starting:
                self._ready.wait()
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.process.is_alive():
            if worker is not None:
                worker.stop(kill=True)
            worker = _Worker(self._context, self.options)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.stop(kill=True)

    def close(self) -> None:
        with self._lock:
            idle, busy = self._idle, self._busy
            self._idle, self._busy = [], set()
        for worker in idle:
            worker.stop(kill=False)
        for worker in busy:
            worker.stop(kill=True)


_pools: dict[tuple, ParserPool] = {}
_pools_lock = threading.Lock()


def expect_file_types(file_types) -> None:
    """Announce the file types the coming parses will see, so that the forkserver imports only
    their partitioners. Effective only before this process's forkserver starts (it inherits the
    environment then); a type that comes later imports its partitioner on its first file."""
    os.environ[WARM_TYPES_ENV] = ",".join(sorted(set(file_types)))


def default_workers() -> int:
    """Half the cores (the embedder works alongside the parsers), at least one, at most four."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def get_parser_pool(options: ParseOptions, workers: int) -> ParserPool:
    """The process's pool for these options, started on first use and kept warm across runs."""
    key = (options, workers)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = ParserPool(options, workers or default_workers())
        return _pools[key]


@atexit.register
def close_parser_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()
