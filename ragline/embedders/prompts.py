"""Query and document prompts: the instruction text many embedders expect before each text.

nomic-embed-text wants `search_query: ` / `search_document: `, e5 `query: ` / `passage: `,
Qwen3-Embedding an instruction before queries only. Without them retrieval quality drops. The
prompts come from, first wins: the settings (`embedding.query_prompt` / `document_prompt`), the
catalog entry of the model (ragline/models/catalog.toml), the model's own
`config_sentence_transformers.json` (`prompts`). Every backend prepends them the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ragline.models.refs import resolve_model

QUERY_KEYS = ("query",)
DOCUMENT_KEYS = ("document", "passage", "corpus")


@dataclass(frozen=True)
class Prompts:
    query: str = ""
    document: str = ""


def prompts_from_mapping(prompts: dict | None) -> Prompts:
    """Query/document prompts from a sentence-transformers `prompts` mapping."""
    prompts = prompts or {}
    query = next((prompts[k] for k in QUERY_KEYS if prompts.get(k) is not None), "")
    document = next((prompts[k] for k in DOCUMENT_KEYS if prompts.get(k) is not None), "")
    return Prompts(query, document)


def folder_prompts(folder: Path) -> Prompts:
    config = folder / "config_sentence_transformers.json"
    if not config.is_file():
        return Prompts()
    try:
        return prompts_from_mapping(json.loads(config.read_text()).get("prompts"))
    except (OSError, ValueError):
        return Prompts()


def model_prompts(model_ref: str) -> Prompts:
    """The prompts a local model folder declares (a hub model's are read by the backend that loads it)."""
    try:
        location = resolve_model(model_ref)
    except FileNotFoundError:
        return Prompts()
    if location.local and location.path.is_dir():
        return folder_prompts(location.path)
    return Prompts()


def choose(explicit: str | None, own: str) -> str:
    """The explicit prompt (settings or catalog; "" turns it off), else the model's own."""
    return own if explicit is None else explicit
