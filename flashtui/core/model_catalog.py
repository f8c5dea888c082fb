"""The built-in model names for model mode (prefill/decode), without torch or transformers.

The CLI and the TUI import this to offer choices and to reject a bad ``--model`` early
with a readable line; the engine (``flashtui.engine.model_table``) holds the matching
transformers configs. Built-in models are configs only: random weights, no download,
with the public dimensions of the real model, so timing and memory are those of the
real architecture while the numbers themselves mean nothing.

A ``--model`` value is one of:

- a built-in name below (random weights);
- a local directory written by ``save_pretrained`` (real weights);
- a Hub id ``org/name`` (tried on the Hub; offline it fails with one line).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    """One built-in model: what it is and whether its attention is causal."""

    name: str
    family: str  # "gpt2" | "llama" | "mistral" | "gemma2" | "bert"
    description: str
    causal: bool
    # Small enough for CPU tests and CI (2 layers, width 64).
    tiny: bool = False


BUILTIN_MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        ModelInfo("gpt2", "gpt2", "GPT-2 small: 12 layers, 768 wide, 12 heads, 124M params", True),
        ModelInfo("gpt2-medium", "gpt2", "GPT-2 medium: 24 layers, 1024 wide, 16 heads, 355M params", True),
        ModelInfo("gpt2-large", "gpt2", "GPT-2 large: 36 layers, 1280 wide, 20 heads, 774M params", True),
        ModelInfo("gpt2-xl", "gpt2", "GPT-2 XL: 48 layers, 1600 wide, 25 heads, 1.5B params", True),
        ModelInfo("llama-3.2-1b", "llama",
                  "Llama 3.2 1B: 16 layers, 2048 wide, 32 heads / 8 KV heads (GQA), 1.2B params", True),
        ModelInfo("llama-3-8b", "llama",
                  "Llama 3 8B: 32 layers, 4096 wide, 32 heads / 8 KV heads (GQA), 8.0B params", True),
        ModelInfo("mistral-7b", "mistral",
                  "Mistral 7B (v0.2 shape, no sliding window): 32 layers, 4096 wide, 32/8 heads, 7.2B params",
                  True),
        ModelInfo("mistral-7b-v0.1", "mistral",
                  "Mistral 7B v0.1: its 4096-token sliding window, 32 layers, 4096 wide, 32/8 heads, "
                  "7.2B params", True),
        ModelInfo("bert-base", "bert",
                  "BERT base: 12 layers, 768 wide, 12 heads, bidirectional (attends to all tokens)", False),
        ModelInfo("tiny-gpt2", "gpt2", "tiny GPT-2 for tests: 2 layers, 64 wide, 4 heads", True, tiny=True),
        ModelInfo("tiny-llama", "llama",
                  "tiny Llama for tests: 2 layers, 64 wide, 4 heads / 2 KV heads (GQA)", True, tiny=True),
        ModelInfo("tiny-bert", "bert", "tiny BERT for tests: 2 layers, 64 wide, 4 heads, bidirectional",
                  False, tiny=True),
        ModelInfo("tiny-mistral", "mistral",
                  "tiny Mistral for tests: 2 layers, 64 wide, 4/2 heads, a 32-token sliding window",
                  True, tiny=True),
        ModelInfo("tiny-gemma2", "gemma2",
                  "tiny Gemma-2 for tests: 2 layers (sliding 32, global), 64 wide, 4/2 heads, "
                  "attention soft-capped at 50", True, tiny=True),
    ]
}

# A Hub repository id: "org/name" with the characters the Hub allows.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def builtin_names() -> tuple[str, ...]:
    return tuple(BUILTIN_MODELS)


def is_builtin(name: str) -> bool:
    return name in BUILTIN_MODELS


def looks_like_path(ref: str) -> bool:
    """True for something the user meant as a filesystem path (exists, or is spelled like one)."""
    if os.path.exists(ref):
        return True
    return ref.startswith(("/", "./", "../", "~")) or ref in (".", "..") or os.sep + os.sep in ref


def classify(ref: str) -> str:
    """``"builtin"``, ``"path"``, ``"hub"`` or ``"unknown"`` for a ``--model`` value.

    Built-in names win over a directory of the same name only when no such directory
    exists (``./gpt2`` always means the directory).
    """
    if ref in BUILTIN_MODELS and not os.path.isdir(ref):
        return "builtin"
    if looks_like_path(ref):
        return "path"
    if _HUB_ID.match(ref):
        return "hub"
    return "unknown"


def builtin_list_text() -> str:
    return ", ".join(builtin_names())


def unknown_model_message(ref: str) -> str:
    """One line for a ``--model`` that is neither built-in, a path nor a Hub id."""
    return (f"unknown model {ref!r}: use a built-in name ({builtin_list_text()}), "
            "a local save_pretrained directory, or a Hub id org/name")


def describe_builtins() -> list[tuple[str, str]]:
    """(name, one-line description) for help texts and the TUI's model picker."""
    return [(m.name, m.description) for m in BUILTIN_MODELS.values()]


__all__ = [
    "BUILTIN_MODELS", "ModelInfo", "builtin_list_text", "builtin_names", "classify",
    "describe_builtins", "is_builtin", "looks_like_path", "unknown_model_message",
]
