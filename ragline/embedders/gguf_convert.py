"""Convert a Hugging Face / sentence-transformers folder to GGUF with llama.cpp's own converter.

The converter (`convert_hf_to_gguf.py`) and the `gguf` Python package it was written against ship
in llama-cpp-python's source distribution under `vendor/llama.cpp`; the PyPI `gguf` release alone
does not convert BERT models with this converter version. We fetch that sdist once with pip (the
version matching the installed llama-cpp-python) and keep the two pieces in a cache dir.

    python -m ragline.embedders.gguf_convert MODEL_FOLDER OUT.gguf [--outtype f16|q8_0|f32]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

from ragline.embedders.onnx import user_cache_dir


def converter_dir(cache: Path | None = None) -> Path:
    """`<cache>/llama.cpp-<version>` holding convert_hf_to_gguf.py, gguf-py/ and conversion/."""
    llama_version = version("llama-cpp-python")
    target = (cache or user_cache_dir()) / f"llama.cpp-{llama_version}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={llama_version}",
                "-d",
                download,
                "--quiet",
            ],
            check=True,
            timeout=900,
        )
        (sdist,) = Path(download).glob("llama_cpp_python-*.tar.gz")
        _extract_converter(sdist, target)
    return target


def _extract_converter(sdist: Path, target: Path) -> None:
    wanted = ("convert_hf_to_gguf.py", "gguf-py/", "conversion/")
    staging = Path(tempfile.mkdtemp(prefix="llama.cpp-", dir=target.parent if target.parent.exists() else None))
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            _, _, inner = member.name.partition("/vendor/llama.cpp/")
            if inner and inner.startswith(wanted) and (member.isfile() or member.isdir()):
                member.name = inner
                archive.extract(member, staging, filter="data")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


def convert(model_dir: Path, outfile: Path, outtype: str = "f16", cache: Path | None = None) -> Path:
    tools = converter_dir(cache)
    env = {**os.environ, "PYTHONPATH": str(tools / "gguf-py"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            str(tools / "convert_hf_to_gguf.py"),
            str(model_dir),
            "--outtype",
            outtype,
            "--outfile",
            str(outfile),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed for {model_dir}:\n{result.stderr[-2000:]}")
    return outfile


def cached_gguf(model_ref: str, outtype: str = "f16") -> Path:
    """The GGUF conversion of a local sentence-transformers model, made once per user cache."""
    from ragline.models.refs import resolve_model

    location = resolve_model(model_ref)
    if not location.local:
        raise ValueError(f"{model_ref!r} is not a local folder; download it first, then convert it")
    safe_name = re.sub(r"[^\w.-]+", "_", model_ref.strip("/"))[-120:]
    target = user_cache_dir() / "gguf" / f"{safe_name}-{outtype}.gguf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        convert(location.path, partial, outtype)
        os.replace(partial, target)  # a killed conversion never leaves a truncated model behind
    return target


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("outfile", type=Path)
    parser.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16", "q8_0"])
    args = parser.parse_args()
    print(convert(args.model_dir, args.outfile, args.outtype))


if __name__ == "__main__":
    main()
