"""When ingestion embeds what has been parsed (ragline.ingestion.batches), and how work is split."""

from __future__ import annotations

import pytest

from ragline.ingestion.batches import batched, parse_batch_size, should_embed_now
from ragline.settings import RaglineSettings

SETTINGS = RaglineSettings(ingest={"chunks_per_batch": 100}, embedding={"batch_size": 10})


@pytest.mark.parametrize(
    ("pending", "next_ready", "last", "embed"),
    [
        (0, True, True, True),  # the last batch always goes, even empty (its documents get records)
        (100, True, False, True),  # a full flush
        (99, True, False, False),  # the next parse result is ready: wait for it, fill the flush
        (10, False, False, True),  # a full model batch waits and the parser is busy: do not idle
        (9, False, False, False),  # not even one model batch: wait
    ],
)
def test_embed_now_at_a_full_flush_at_the_end_or_when_the_parser_is_behind(pending, next_ready, last, embed):
    assert should_embed_now(pending, next_ready, last, SETTINGS) is embed


def test_parse_batches_are_sized_to_about_16_task_runs_within_8_to_64_files():
    assert [parse_batch_size(n) for n in (1, 100, 160, 1000, 5000)] == [8, 8, 10, 63, 64]
    assert parse_batch_size(1000, configured=5) == 5
    assert batched(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
