"""Transformers configs of the built-in models (names and descriptions: flashtui.core.model_catalog).

Dimensions are the public ones of each released model; weights are random (the model is
built from the config, never downloaded). Dropout is 0 everywhere: the benchmark runs
inference, and a dropout left on would make parity meaningless.

Models with learned absolute position tables (GPT-2, BERT) get the table stretched to
the longest sequence the sweep asks for, when that is longer than the real model's:
it changes the size of one embedding table, not the attention work, and lets flashtui
time GPT-2-shaped attention at 4096 tokens. The stretch is recorded in each cell.
"""

from __future__ import annotations

from typing import Any, Callable

from transformers import BertConfig, Gemma2Config, GPT2Config, LlamaConfig, MistralConfig, PretrainedConfig

from flashtui.core.model_catalog import BUILTIN_MODELS

_NO_DROPOUT_GPT2 = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
_NO_DROPOUT_BERT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _gpt2(n_embd: int, n_layer: int, n_head: int, vocab: int = 50257) -> Callable[[], PretrainedConfig]:
    return lambda: GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head, vocab_size=vocab,
                              bos_token_id=vocab - 1, eos_token_id=vocab - 1,
                              n_positions=1024, **_NO_DROPOUT_GPT2)


def _llama32_1b() -> PretrainedConfig:
    return LlamaConfig(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
    )


def _llama3_8b() -> PretrainedConfig:
    return LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=8192,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
    )


def _mistral_7b() -> PretrainedConfig:
    # v0.2 shape. Sliding window off: the benchmark compares full causal attention, and
    # not every backend implements the window.
    return MistralConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
        rms_norm_eps=1e-5, sliding_window=None,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    )


def _mistral_7b_v01() -> PretrainedConfig:
    # v0.1: every layer attends over a 4096-token sliding window (the model's own config,
    # so each backend runs it its own way: a mask, a block mask or window_size).
    return MistralConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
        rms_norm_eps=1e-5, sliding_window=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )


def _tiny_mistral() -> PretrainedConfig:
    return MistralConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         max_position_embeddings=4096, rms_norm_eps=1e-5, sliding_window=32,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def _tiny_gemma2() -> PretrainedConfig:
    # Gemma-2's attention logits soft-capped at 50 (and its final logits at 30), layers
    # alternating a sliding window and global attention.
    return Gemma2Config(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                        max_position_embeddings=4096, sliding_window=32, attn_logit_softcapping=50.0,
                        final_logit_softcapping=30.0, query_pre_attn_scalar=16, attention_dropout=0.0)


def _bert_base() -> PretrainedConfig:
    return BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, max_position_embeddings=512, **_NO_DROPOUT_BERT)


def _tiny_llama() -> PretrainedConfig:
    return LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       max_position_embeddings=4096, rms_norm_eps=1e-5,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def _tiny_bert() -> PretrainedConfig:
    return BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, max_position_embeddings=512, **_NO_DROPOUT_BERT)


_BUILDERS: dict[str, Callable[[], PretrainedConfig]] = {
    "gpt2": _gpt2(768, 12, 12),
    "gpt2-medium": _gpt2(1024, 24, 16),
    "gpt2-large": _gpt2(1280, 36, 20),
    "gpt2-xl": _gpt2(1600, 48, 25),
    "llama-3.2-1b": _llama32_1b,
    "llama-3-8b": _llama3_8b,
    "mistral-7b": _mistral_7b,
    "mistral-7b-v0.1": _mistral_7b_v01,
    "bert-base": _bert_base,
    "tiny-gpt2": _gpt2(64, 2, 4, vocab=1000),
    "tiny-llama": _tiny_llama,
    "tiny-bert": _tiny_bert,
    "tiny-mistral": _tiny_mistral,
    "tiny-gemma2": _tiny_gemma2,
}
assert set(_BUILDERS) == set(BUILTIN_MODELS), "model_table and model_catalog disagree"


def builtin_config(name: str, min_positions: int = 0) -> tuple[PretrainedConfig, dict[str, Any]]:
    """The config of built-in ``name`` and notes for the cell (e.g. a stretched position table).

    ``min_positions``: the longest sequence the sweep will feed (prompt + generated tokens).
    """
    config = _BUILDERS[name]()
    notes: dict[str, Any] = {}
    # Learned absolute positions (GPT-2's n_positions is aliased as max_position_embeddings).
    if config.model_type in ("gpt2", "bert"):
        real = config.max_position_embeddings
        if min_positions > real:
            config.max_position_embeddings = int(min_positions)
            notes["positions_extended"] = {"real": real, "used": int(min_positions)}
    return config, notes


__all__ = ["builtin_config"]
