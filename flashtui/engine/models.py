"""Model mode: whole Hugging Face models with their attention switched, prefill and decode.

What a cell measures
    ``prefill``: one forward pass over ``batch x seq`` random token ids under
    ``torch.inference_mode()`` (no KV cache, logits for the last position only, as
    ``generate`` does in its prefill). ``decode``: prefill ``seq`` tokens, then greedy
    generation of ``new_tokens`` tokens one at a time with the KV cache; each step is
    timed on its own and the cell reports the median ms per token.

How attention is switched
    Through transformers' own mechanism, never by patching layers:
    ``model.set_attn_implementation(...)`` with ``"eager"`` (standard), ``"sdpa"``,
    ``"flex_attention"`` or ``"flash_attention_2/3/4"``. The SDPA variants all use
    ``"sdpa"``, and the specific PyTorch kernel is forced by running the model inside
    ``torch.nn.attention.sdpa_kernel([one kernel])``: PyTorch then raises instead of
    falling back, and the cell says "unsupported" with PyTorch's reasons. FA3/FA4 use
    transformers' built-in ``flash_attention_3/4`` when transformers recognizes the
    installed package; otherwise flashtui registers its own adapter through
    ``AttentionInterface`` / ``AttentionMaskInterface`` (see :func:`register_bshd_attention`).

Why one model per dtype
    The model is built once per dtype (seeded, directly on the device, in that dtype) and
    only its attention implementation changes between cells, so every backend runs the
    *same* weights on the same inputs, and no cell pays a rebuild. Seeded initialization
    draws the same numbers in every dtype, so the fp16 weights are the fp32 weights
    rounded (checked in tests/unit/test_models.py).

Parity
    The reference is a float64 copy of the very model of the cell (its dtype-rounded
    weights, upcast exactly) with eager attention, on the same inputs; when that cannot
    fit, an fp32 eager copy (``parity.reference`` says which). ``standard_rel_l2`` is the
    error of eager attention in the cell's dtype (the dtype's own cost), ``rel_l2`` the
    error of this backend; the ratio is judged as in kernel mode (pass at <= 2). Compared
    tensor: the final hidden state of the transformer body (the LM head adds a matmul
    but no attention), for decode the hidden state of one cached decode step.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import inspect
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

import torch

from flashtui.core import model_catalog, variants
from flashtui.core.results import PARITY_RATIO_LIMIT, Cell, Parity
from flashtui.core.spec import CellKey, SpecError, SweepSpec
from flashtui.engine import dispatch, faults
from flashtui.engine.backends import ELEMENT_BYTES, REGISTRY, TORCH_DTYPES, Backend, DeviceInfo, Shape, theory_bytes
from flashtui.engine.kernel import fill_timing, forced_kernel_refusal, one_line
from flashtui.engine.memory import is_oom, measure_peak, refusal, release, room
from flashtui.engine.parity import REL_ERR_FLOOR, error_metrics
from flashtui.engine.phases import pay_start_up
from flashtui.engine import hostload
from flashtui.engine.timing import MAX_TIMED_S, judge, summarize, time_calls, warm_up

import transformers  # noqa: E402  (model mode only: the worker imports this module lazily)
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, PretrainedConfig

# flashtui backend -> transformers attn_implementation.
ATTN_IMPLEMENTATIONS = {
    "standard": "eager",
    "sdpa": "sdpa",  # transformers' default: PyTorch picks the kernel (named from what ran)
    "sdpa-math": "sdpa",
    "sdpa-flash": "sdpa",
    "sdpa-efficient": "sdpa",
    "sdpa-cudnn": "sdpa",
    "flex": "flex_attention",
    "fa2": "flash_attention_2",
    "fa3": "flash_attention_3",
    "fa4": "flash_attention_4",
}
# SDPA backends: the one PyTorch kernel allowed while the model runs.
SDPA_KERNELS = {
    "sdpa-math": "MATH",
    "sdpa-flash": "FLASH_ATTENTION",
    "sdpa-efficient": "EFFICIENT_ATTENTION",
    "sdpa-cudnn": "CUDNN_ATTENTION",
}
# Names of flashtui's own AttentionInterface adapters (no "flash" in them on purpose:
# transformers treats any name containing "flash" as its own FA path or a Hub kernel).
ADAPTER_NAMES = {"fa3": "ftui_fa3_bshd", "fa4": "ftui_fa4_bshd"}
HUB_PROBE_TIMEOUT_S = 3.0


# ------------------------------------------------------------------ attention adapters
def register_bshd_attention(name: str, attn_func: Callable[..., Any],
                            varlen_func: Callable[..., Any] | None = None) -> str:
    """Register ``attn_func(q, k, v, softmax_scale=, causal=)`` (BSHD tensors) with transformers.

    The function is wrapped in the ``AttentionInterface`` signature (BHSD in, BSHD out)
    and paired with transformers' flash mask function, which yields no mask for unpadded
    batches (causality then comes from the module's ``is_causal``, so causal models stay
    causal and bidirectional ones (BERT) stay bidirectional) and the 2D padding mask of a
    padded batch. For a single query token (decode) "causal" is passed as False: one
    query may see every cached key (flash kernels align the causal mask bottom-right,
    where the two agree anyway). The model's own variant passes through: its sliding
    window as ``window_size=(N-1, 0)``, its soft-cap as ``softcap``; a padded batch is
    unpadded, run through ``varlen_func`` over cu_seqlens and padded back.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    def forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                scaling: float | None = None, is_causal: bool | None = None, **kwargs):
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        q, k, v = (t.transpose(1, 2) for t in (query, key, value))
        extra: dict[str, Any] = {}
        window = kwargs.get("sliding_window")
        if window and k.shape[1] > window:
            extra["window_size"] = (int(window) - 1, 0)
        if kwargs.get("softcap"):
            extra["softcap"] = float(kwargs["softcap"])
        causal = bool(causal and q.shape[1] > 1)
        if attention_mask is not None and attention_mask.dim() == 2 and not bool(attention_mask.all()):
            if varlen_func is None:
                raise ValueError(f"{name} takes unpadded batches only (got an attention mask)")
            out = _varlen_padded(varlen_func, q, k, v, attention_mask.bool(), scaling, causal, extra)
            return out, None
        out = attn_func(q, k, v, softmax_scale=scaling, causal=causal, **extra)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out, None

    AttentionInterface.register(name, forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, flash_attention_mask)
    return name


def _varlen_padded(varlen_func, q, k, v, key_mask, scaling, causal: bool, extra: dict[str, Any]):
    """A padded batch through a varlen kernel: real tokens only, scattered back (zeros elsewhere).

    ``key_mask`` (B, kv_len) marks real keys; the queries are the last q_len positions.
    """
    batch, q_len = q.shape[:2]
    query_mask = key_mask[:, -q_len:]
    k_lengths, q_lengths = key_mask.sum(1), query_mask.sum(1)
    cu = [torch.nn.functional.pad(n.cumsum(0, dtype=torch.int32), (1, 0)) for n in (q_lengths, k_lengths)]
    idx_q, idx_k = query_mask.flatten().nonzero().flatten(), key_mask.flatten().nonzero().flatten()
    flat = lambda t: t.reshape(-1, *t.shape[2:])  # noqa: E731
    out = varlen_func(flat(q).index_select(0, idx_q), flat(k).index_select(0, idx_k),
                      flat(v).index_select(0, idx_k), cu_seqlens_q=cu[0], cu_seqlens_k=cu[1],
                      max_seqlen_q=int(q_lengths.max()), max_seqlen_k=int(k_lengths.max()),
                      softmax_scale=scaling, causal=causal, **extra)
    out = out[0] if isinstance(out, (tuple, list)) else out
    full = out.new_zeros(batch * q_len, *out.shape[1:]).index_copy(0, idx_q, out)
    return full.view(batch, q_len, *out.shape[1:])


REFERENCE_ATTENTION = "ftui_reference"


def register_reference_attention() -> str:
    """The reference's attention for a padded batch: softmax in the input dtype (fp64).

    Eager attention in transformers computes its softmax in fp32, where the fp64 mask's
    lowest value becomes -inf: a fully masked (left-padding) row turns NaN, and the NaN
    reaches real rows through the next layer's keys. This is SDPA's math (scaling, the
    model's additive mask, GQA) plus the model's softcap, in the input dtype, with a fully
    masked row set to zero. Mask: transformers' own eager mask (causal, window, padding).
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    def forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                scaling: float | None = None, softcap: float | None = None, **kwargs):
        group = query.shape[1] // key.shape[1]
        if group > 1:
            key, value = key.repeat_interleave(group, 1), value.repeat_interleave(group, 1)
        scale = scaling if scaling is not None else 1.0 / math.sqrt(query.shape[-1])
        scores = torch.matmul(query, key.transpose(-2, -1)) * scale
        if softcap:
            scores = torch.tanh(scores / softcap) * softcap
        if attention_mask is not None:
            scores = scores + attention_mask[..., : key.shape[-2]]
        probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        return torch.matmul(probs, value).transpose(1, 2).contiguous(), None

    AttentionInterface.register(REFERENCE_ATTENTION, forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(REFERENCE_ATTENTION, eager_mask)
    return REFERENCE_ATTENTION


def _transformers_sees_fa(version: int) -> bool:
    from transformers.utils import import_utils

    check = getattr(import_utils, f"is_flash_attn_{version}_available", None)
    try:
        return bool(check()) if check else False
    except Exception:  # noqa: BLE001
        return False


def attn_implementation_for(backend: str) -> str:
    """The transformers implementation name for a backend (registering an adapter if needed)."""
    impl = ATTN_IMPLEMENTATIONS[backend]
    if backend in ADAPTER_NAMES and not _transformers_sees_fa(int(backend[-1])):
        if backend == "fa3":
            from flash_attn_interface import flash_attn_func, flash_attn_varlen_func
        else:
            from flash_attn.cute import flash_attn_func, flash_attn_varlen_func
        impl = register_bshd_attention(ADAPTER_NAMES[backend], flash_attn_func, flash_attn_varlen_func)
    return impl


# ------------------------------------------------------------------ model source
@dataclass
class ModelSource:
    """Where the model comes from, resolved once per sweep (errors are SpecError lines)."""

    ref: str
    kind: str  # "builtin" | "path" | "hub"
    config: PretrainedConfig
    causal: bool
    weights: str  # "random" | "pretrained: PATH" | "pretrained: hub ID"
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def model_class(self):
        return AutoModelForCausalLM if self.causal else AutoModel


_CAUSAL_ARCH_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def _config_is_causal(config: PretrainedConfig) -> bool:
    archs = getattr(config, "architectures", None) or []
    if archs:
        return any(a.endswith(_CAUSAL_ARCH_SUFFIXES) for a in archs)
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return (config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and not getattr(config, "is_encoder_decoder", False)
            and not config.model_type.endswith("bert"))


def _hub_unreachable_reason() -> str | None:
    """A quick TCP probe of the Hub endpoint, so offline fails in seconds, not after retries."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc.strerror or type(exc).__name__})"


def resolve_source(spec: SweepSpec) -> ModelSource:
    """Turn ``spec.model`` into a config, or raise SpecError with one actionable line."""
    ref = str(spec.model or "")
    hint = f"use a local save_pretrained directory or a built-in name ({model_catalog.builtin_list_text()})"
    kind = model_catalog.classify(ref)
    trust = spec.trust_remote_code
    if kind == "builtin":
        from flashtui.engine.model_table import builtin_config

        longest = max(spec.seqs) + (spec.new_tokens if spec.mode == "decode" else 0)
        config, notes = builtin_config(ref, longest)
        return ModelSource(ref, kind, config, model_catalog.BUILTIN_MODELS[ref].causal, "random", notes)
    if kind == "unknown":
        raise SpecError(model_catalog.unknown_model_message(ref))
    if kind == "path":
        path = os.path.abspath(os.path.expanduser(ref))
        if not os.path.isdir(path):
            raise SpecError(f"model directory {ref!r} does not exist; {hint}")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise SpecError(f"{ref!r} has no config.json (not a save_pretrained directory); {hint}")
        try:
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust)
        except Exception as exc:  # noqa: BLE001
            raise SpecError(f"cannot read the model config in {ref!r}: {_remote_code_hint(exc)}") from None
        return ModelSource(path, kind, config, _config_is_causal(config), f"pretrained: {path}")
    # Hub id: the local cache first (works offline), then the Hub itself.
    try:
        config = AutoConfig.from_pretrained(ref, trust_remote_code=trust, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: ask the Hub
        unreachable = _hub_unreachable_reason()
        if unreachable:
            raise SpecError(f"cannot load {ref!r} from the Hugging Face Hub: {unreachable}; {hint}") from None
        try:
            config = AutoConfig.from_pretrained(ref, trust_remote_code=trust)
        except Exception as exc:  # noqa: BLE001
            raise SpecError(f"cannot load {ref!r} from the Hugging Face Hub: "
                            f"{_remote_code_hint(exc, 200)}; {hint}") from None
    return ModelSource(ref, kind, config, _config_is_causal(config), f"pretrained: hub {ref}")


def _remote_code_hint(exc: BaseException, limit: int = 240) -> str:
    text = one_line(exc, limit)
    if "trust_remote_code" in str(exc):
        return "this model needs its own code from the repository; rerun with --trust-remote-code"
    return text


# ------------------------------------------------------------------ runner
@dataclass
class _Built:
    model: torch.nn.Module
    dtype: str
    build_s: float
    n_params: int


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class ModelRunner:
    """Runs model-mode cells (prefill or decode) for one sweep spec on one device."""

    def __init__(self, spec: SweepSpec, device: DeviceInfo, *,
                 log: Callable[[str, str], None] = lambda level, text: None,
                 progress: Callable[[str], None] = lambda text: None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        if spec.mode not in ("prefill", "decode"):
            raise SpecError(f"ModelRunner runs prefill/decode, got mode {spec.mode!r}")
        self.spec = spec
        self.device = device
        self.log = log
        self.progress = progress
        self.should_stop = should_stop
        self.source = resolve_source(spec)
        self.config = self.source.config
        self._built: _Built | None = None
        self._build_failure: dict[str, tuple[str, str]] = {}
        self._group: tuple[int, str] | None = None
        self._input_ids: torch.Tensor | None = None
        # --pad: the batch's attention mask (1 = real token, left padding), else None.
        self._attention_mask: torch.Tensor | None = None
        # Per (seq, dtype) group: reference hidden state and the dtype's own (eager) error.
        self._reference: torch.Tensor | None = None
        self._reference_name: str = "fp64"
        self._standard_metrics: dict[str, float] | None = None
        self._parity_reason: str | None = None
        log("info", f"model {spec.model}: {self.config.model_type}, weights {self.source.weights}, "
                    f"transformers {transformers.__version__}")

    def pay_start_up(self) -> None:
        """One-time costs of a fresh worker that belong to no cell (the profiler's start-up),
        paid before the first CellStarted; the model build stays the first cell's own cost.
        The heap is settled once here (phases.settle_heap), not after a model build: a
        frozen model could never be collected when the next dtype's replaces it."""
        pay_start_up(self.device.kind, self.progress, self.log, profiler=True)  # _observe_all profiles

    # ------------------------------------------------------------ shapes
    def attention_shape(self, key: CellKey) -> Shape:
        c = self.config
        heads = int(c.num_attention_heads)
        kv_heads = int(getattr(c, "num_key_value_heads", None) or heads)
        head_dim = int(getattr(c, "head_dim", None) or c.hidden_size // heads)
        return Shape(self.spec.batch, heads, kv_heads, key.seq, head_dim, key.dtype,
                     self.source.causal, False)

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    # ------------------------------------------------------------ state
    def release(self) -> None:
        self._drop_group()
        self._built = None
        release(self.device.kind)

    def _drop_group(self) -> None:
        self._group = None
        self._input_ids = None
        self._attention_mask = None
        self._reference = None
        self._standard_metrics = None
        self._parity_reason = None

    def _model(self, dtype: str) -> _Built:
        """The model in ``dtype``, built once per dtype directly on the device."""
        if self._built is not None and self._built.dtype == dtype:
            return self._built
        self.release()  # free the other dtype's model before building this one
        self.progress(f"building {self.spec.model} in {dtype}")
        torch_dtype = TORCH_DTYPES[dtype]
        dev = self.device.kind
        torch.manual_seed(self.spec.seed)
        _sync(dev)
        started = time.perf_counter()
        cls = self.source.model_class
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.source.kind == "builtin":
                # Parameters are created and initialized on the device, in the target dtype.
                with torch.device(dev):
                    model = cls.from_config(copy.deepcopy(self.config), dtype=torch_dtype,
                                            attn_implementation="eager")
            else:
                # Straight onto the device needs accelerate (transformers' device_map); without
                # it, CPU loads directly and CUDA goes through host memory (slower, logged).
                direct = dev == "cpu" or importlib.util.find_spec("accelerate") is not None
                kwargs = {"device_map": dev} if direct and dev != "cpu" else {}
                model = cls.from_pretrained(self.source.ref, dtype=torch_dtype, attn_implementation="eager",
                                            trust_remote_code=self.spec.trust_remote_code, **kwargs)
                if not direct:
                    self.log("warning", "accelerate is not installed: weights were loaded to host memory "
                                        f"and copied to {dev} (pip install accelerate loads them directly)")
                    model = model.to(dev)
        model.eval()
        _sync(dev)
        build_s = time.perf_counter() - started
        n_params = sum(p.numel() for p in model.parameters())
        self.log("info", f"built {self.spec.model} ({n_params / 1e6:.1f}M params) in {dtype} "
                         f"on {dev} in {build_s:.3f} s")
        self._built = _Built(model, dtype, build_s, n_params)
        return self._built

    def _inputs(self, key: CellKey, built: _Built) -> torch.Tensor:
        group = (key.seq, key.dtype)
        if self._group != group:
            self._drop_group()
            release(self.device.kind)
            self._group = group
            gen = torch.Generator().manual_seed(hash((self.spec.seed, key.seq)) & 0x7FFF_FFFF)
            vocab = int(self.config.vocab_size)
            ids = torch.randint(0, vocab, (self.spec.batch, key.seq), generator=gen)
            self._input_ids = ids.to(self.device.kind)
            if self.spec.pad is not None:
                # Left padding, as a batch of prompts is padded for generation: the first
                # floor(pad * seq) tokens of each row are masked out through the model's mask.
                mask = torch.ones(self.spec.batch, key.seq, dtype=torch.long)
                mask[:, :variants.padding_tokens(key.seq, self.spec.pad)] = 0
                self._attention_mask = mask.to(self.device.kind)
        assert self._input_ids is not None
        return self._input_ids

    def _mask_kwargs(self, length: int, new_tokens: int = 0) -> dict[str, Any]:
        """The attention_mask of the first ``length`` prompt tokens plus ``new_tokens``
        generated ones, or {} without --pad. Positions are left to the model (padding
        counts, as in a plain forward call): the same for every backend and the reference."""
        mask = self._attention_mask
        if mask is None:
            return {}
        mask = mask[:, :length]
        if new_tokens:
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], new_tokens)], dim=1)
        return {"attention_mask": mask}

    # ------------------------------------------------------------ support checks
    def _supported(self, key: CellKey, backend: Backend) -> tuple[bool, str | None]:
        ok, reason = backend.supports(self.attention_shape(key), self.device)
        if not ok:
            return ok, reason
        if self.spec.mode == "decode" and not self.source.causal:
            return False, (f"{self.spec.model} is bidirectional (encoder-only): decode needs a causal "
                           "language model; use --mode prefill")
        impl = ATTN_IMPLEMENTATIONS[key.backend]
        cls = self._concrete_class()
        if cls is not None:
            flag = {"sdpa": "_supports_sdpa", "flex_attention": "_supports_flex_attn"}.get(
                impl, "_supports_flash_attn" if impl.startswith("flash") else None)
            if flag and not getattr(cls, flag, False):
                return False, (f"{cls.__name__} has no {impl} support in transformers "
                               f"{transformers.__version__}; pick another backend")
        longest = key.seq + (self.spec.new_tokens if self.spec.mode == "decode" else 0)
        limit = getattr(self.config, "max_position_embeddings", None)
        if isinstance(limit, int) and longest > limit:
            return False, (f"{self.spec.model} has {limit} positions; seq {key.seq}"
                           + (f" + {self.spec.new_tokens} new tokens" if self.spec.mode == "decode" else "")
                           + " does not fit")
        return True, None

    def _concrete_class(self):
        from transformers.models.auto import modeling_auto

        mapping = (modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING if self.source.causal
                   else modeling_auto.MODEL_MAPPING)
        try:
            return mapping[type(self.config)]
        except (KeyError, ValueError):
            return None  # remote code: transformers checks when the implementation is set

    # ------------------------------------------------------------ one cell
    def run_cell(self, key: CellKey) -> Cell:
        started = time.perf_counter()
        cell = self._run_cell(key)
        cell.duration_s = time.perf_counter() - started
        return cell

    def _base_extra(self) -> dict[str, Any]:
        c = self.config
        heads = int(c.num_attention_heads)
        # The model's own attention shape (the spec's heads/head_dim do not apply here).
        extra: dict[str, Any] = {"model": self.spec.model, "mode": self.spec.mode,
                                 "weights": self.source.weights, "batch": self.spec.batch,
                                 "layers": self.n_layers, "heads": heads,
                                 "kv_heads": int(getattr(c, "num_key_value_heads", None) or heads),
                                 "head_dim": int(getattr(c, "head_dim", None) or c.hidden_size // heads)}
        extra.update(self.source.notes)
        variant = self.model_variant()
        if variant:
            extra["variant"] = variant
        return extra

    def model_variant(self) -> dict[str, Any]:
        """The attention variant the model's own config asks for (and --pad), as recorded."""
        c = self.config
        out: dict[str, Any] = {}
        window = getattr(c, "sliding_window", None)
        types = list(getattr(c, "layer_types", None) or [])
        if window and (not types or "sliding_attention" in types):
            out["sliding_window"] = int(window)
            if types:
                out["sliding_layers"] = types.count("sliding_attention")
        softcap = getattr(c, "attn_logit_softcapping", None)
        if softcap:
            out["softcap"] = float(softcap)
        if self.spec.pad is not None:
            out["pad"] = self.spec.pad
            out["path"] = "the model's attention mask (left padding)"
        return out

    def _run_cell(self, key: CellKey) -> Cell:
        backend = REGISTRY.get(key.backend)
        if backend is None or key.backend not in ATTN_IMPLEMENTATIONS:
            return Cell(key.backend, key.seq, key.dtype, status="unsupported",
                        reason=f"unknown backend {key.backend!r}")
        cell = Cell(key.backend, key.seq, key.dtype, extra=self._base_extra())
        ok, reason = self._supported(key, backend)
        if not ok:
            cell.status, cell.reason = "unsupported", reason
            return cell
        if key.dtype in self._build_failure:
            cell.status, cell.reason = self._build_failure[key.dtype]
            return cell
        try:
            faults.maybe_inject(key, self.device.kind)
            try:
                built = self._model(key.dtype)
            except Exception as exc:  # noqa: BLE001 - remembered so the dtype's other cells skip
                status = "oom" if is_oom(exc) else "failed"
                self._build_failure[key.dtype] = (status, f"building the model failed: {one_line(exc, 240)}")
                self.release()
                raise
            cell.extra["build_s"] = built.build_s
            cell.extra["params"] = built.n_params
            refused = self._guard(key, backend, cell)
            if refused is not None:
                cell.status, cell.reason = "oom", refused
                return cell
            self._measure(key, backend, built, cell)
        except Exception as exc:  # noqa: BLE001 - every failure is a cell result
            if is_oom(exc):
                cell.status, cell.reason = "oom", one_line(exc, 160)
            else:
                cell.status, cell.reason = "failed", one_line(exc)
            self._drop_group()
            release(self.device.kind)
        return cell

    # ------------------------------------------------------------ memory guard
    def predicted_bytes(self, key: CellKey, backend: Backend) -> int:
        """What one forward must hold beside the resident model, by construction (a lower bound).

        One layer's attention theory bytes (S x S scores for eager), that layer's
        activations (hidden states, q/k/v, attention output and a 4x-wide MLP: about
        8 x tokens x hidden), and for decode the KV cache of every layer.
        """
        elem = ELEMENT_BYTES[key.dtype]
        shape = self.attention_shape(key)
        longest = key.seq + (self.spec.new_tokens if self.spec.mode == "decode" else 0)
        tokens = self.spec.batch * longest
        need = theory_bytes(backend, shape) + 8 * tokens * int(self.config.hidden_size) * elem
        if self.spec.mode == "decode":
            need += 2 * self.n_layers * tokens * shape.kv_heads * shape.head_dim * elem
        return int(need)

    def _guard(self, key: CellKey, backend: Backend, cell: Cell) -> str | None:
        """Refuse (as oom, before the cell allocates) a cell that clearly cannot fit."""
        need = self.predicted_bytes(key, backend)
        free = room(self.device.kind)
        cell.extra["predicted_bytes"] = need
        cell.extra["free_bytes"] = free.free_bytes
        reason = refusal(need, free, self.device.kind)
        if reason is not None:
            cell.extra["memory_guard"] = free.source
            cell.theory_bytes = theory_bytes(backend, self.attention_shape(key))
        return reason

    def _switch(self, model: torch.nn.Module, backend_name: str) -> str:
        impl = attn_implementation_for(backend_name)
        model.set_attn_implementation(impl)
        return impl

    def _context(self, backend_name: str):
        """Held around every call of the cell: forces one SDPA kernel (no silent fallback)."""
        kernel = SDPA_KERNELS.get(backend_name)
        if kernel is None:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([getattr(SDPBackend, kernel)])

    def _measure(self, key: CellKey, backend: Backend, built: _Built, cell: Cell) -> None:
        model = built.model
        ids = self._inputs(key, built)
        try:
            impl = self._switch(model, key.backend)
        except (ImportError, ValueError, KeyError) as exc:
            cell.status, cell.reason = "unsupported", f"transformers refused {key.backend}: {one_line(exc, 240)}"
            return
        cell.extra["attn_implementation"] = impl
        if key.backend in SDPA_KERNELS:
            cell.extra["sdpa_kernel"] = SDPA_KERNELS[key.backend]
        # Per layer (layers run one after another, each freeing its scores before the next):
        # what one attention call must materialize by construction, as in kernel mode. The
        # eager path writes that much S x S traffic in every layer; the total is kept beside.
        cell.theory_bytes = theory_bytes(backend, self.attention_shape(key))
        cell.extra["theory_bytes_all_layers"] = cell.theory_bytes * self.n_layers
        dev = self.device.kind
        call = self._prefill_call(model, ids) if self.spec.mode == "prefill" else None
        with torch.inference_mode(), self._context(key.backend):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    if call is not None:
                        call()
                    else:
                        self._decode(model, ids, steps=1, timed=False)
                    _sync(dev)
                except RuntimeError as exc:
                    refusal = forced_kernel_refusal(exc, caught, key.backend)
                    if refusal is None:
                        raise
                    cell.status, cell.reason = "unsupported", refusal
                    return
            self.progress(f"timing {self.spec.model} {self.spec.mode} {key.label()}")
            if call is not None:
                self._time_prefill(call, key, cell)
                profiled = call
            else:
                self._time_decode(model, ids, cell)
                profiled = lambda: self._decode(model, ids, steps=2, timed=False)  # noqa: E731
            seen = _observe_all(profiled, dev)
            if key.backend == "sdpa":
                cell.extra["sdpa_kernel"] = dispatch.sdpa_kernel_from_names(seen)
            if seen:
                # A whole model's top names are GEMMs: keep the attention kernels.
                cell.kernels = dispatch.telling(backend, seen)[: dispatch.MAX_NAMES] or seen[: dispatch.MAX_NAMES]
                verdict = dispatch.check(backend, seen, dev)
                cell.dispatch_ok = verdict.ok
                if verdict.ok is False:
                    cell.status, cell.reason = "failed", verdict.reason
            if self.spec.parity:
                cell.parity = self._parity(key, model, ids)

    # ------------------------------------------------------------ prefill
    def _prefill_call(self, model: torch.nn.Module, ids: torch.Tensor) -> Callable[[], Any]:
        kwargs: dict[str, Any] = {"use_cache": False}
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            kwargs["logits_to_keep"] = 1  # as generate's prefill: logits of the last position only
        kwargs.update(self._mask_kwargs(ids.shape[1]))
        return lambda: model(input_ids=ids, **kwargs)

    def _time_prefill(self, call: Callable[[], Any], key: CellKey, cell: Cell) -> None:
        dev = self.device.kind
        # A whole model forward: graph capture of HF models is not generally safe, so no
        # device_ms here (the loop time is what generate's prefill sees).
        timing = time_calls(call, dev, self.spec.reps, self.spec.warmup_ms, self.should_stop,
                            device_time=False)
        fill_timing(cell, timing)
        cell.extra["tokens_per_s"] = self.spec.batch * key.seq / (timing.median_ms * 1e-3)
        # TFLOP/s left empty: it needs the model's FLOPs (MLP, projections, LM head), not attention's.
        mem = measure_peak(call, dev)  # baseline: model and input ids resident
        cell.peak_alloc_bytes, cell.reserved_bytes = mem.peak_alloc_bytes, mem.reserved_bytes

    # ------------------------------------------------------------ decode
    def _decode(self, model: torch.nn.Module, ids: torch.Tensor, steps: int,
                timed: bool) -> tuple[list[float], list[float]]:
        """Prefill ``ids`` then ``steps`` greedy tokens with the KV cache.

        With ``timed``, each step is bracketed by device events (CUDA) or perf_counter
        (CPU); the next token stays on the device, so the host never waits between steps.
        Returns (device ms per step, host ms per step).
        """
        dev = self.device.kind
        prompt = ids.shape[1]
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **self._mask_kwargs(prompt))
        cache = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        events: list[tuple[Any, Any]] = []
        device_ms: list[float] = []
        host_ms: list[float] = []
        for step in range(steps):
            if timed and dev == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
            h0 = time.perf_counter()
            out = model(input_ids=token, past_key_values=cache, use_cache=True,
                        **self._mask_kwargs(prompt, step + 1))
            if timed and dev == "cuda":
                host_ms.append((time.perf_counter() - h0) * 1e3)
                end.record()
                events.append((start, end))
            elif timed:
                device_ms.append((time.perf_counter() - h0) * 1e3)
            cache = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        if events:
            torch.cuda.synchronize()
            device_ms = [s.elapsed_time(e) for s, e in events]
        return device_ms, host_ms

    def _time_decode(self, model: torch.nn.Module, ids: torch.Tensor, cell: Cell) -> None:
        dev = self.device.kind
        steps = self.spec.new_tokens
        # Warm-up by time with short generations (caches, allocator, kernel selection).
        warmup_calls, last_ms, _steady = warm_up(lambda: self._decode(model, ids, 2, False), dev, self.spec.warmup_ms)
        # Enough generations for reps samples, within the cell's time cap.
        rounds = max(1, math.ceil(self.spec.reps / steps))
        per_round_s = max(last_ms, 1e-3) * 1e-3 * (1 + steps / 2)
        rounds = max(1, min(rounds, int(MAX_TIMED_S / per_round_s)))
        samples: list[float] = []
        host: list[float] = []
        wall_start = time.time()
        load = hostload.HostLoad.start()
        for _ in range(rounds):
            device_ms, host_ms = self._decode(model, ids, steps, True)
            samples += device_ms
            host += host_ms
            if self.should_stop():
                break
        busy, cores = load.stop()
        timing = summarize(samples, warmup_calls, host or None, (wall_start, time.time()))
        timing = dataclasses.replace(timing, host_busy_cores=busy, host_cores=cores)
        noisy, reason = judge(timing, dev, 1)
        fill_timing(cell, dataclasses.replace(timing, noisy=noisy, noise_reason=reason))
        cell.extra.update({
            "ms_per_token": timing.median_ms, "new_tokens": steps, "generations": rounds,
            "warmup_calls": warmup_calls, "tokens_per_s": self.spec.batch / (timing.median_ms * 1e-3),
            "t_start_wall_s": wall_start, "t_end_wall_s": timing.wall_window_s[1],
            "peak_includes": "prefill + KV cache of all generated tokens",
        })
        mem = measure_peak(lambda: self._decode(model, ids, steps, False), dev)
        cell.peak_alloc_bytes, cell.reserved_bytes = mem.peak_alloc_bytes, mem.reserved_bytes

    # ------------------------------------------------------------ parity
    def _hidden(self, model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
        """The compared tensor: final hidden state (prefill) or of one cached step (decode)."""
        body = model.base_model
        if self.spec.mode == "decode" and ids.shape[1] >= 2:
            prompt = ids.shape[1] - 1
            first = body(input_ids=ids[:, :-1], use_cache=True, **self._mask_kwargs(prompt))
            return body(input_ids=ids[:, -1:], past_key_values=first.past_key_values,
                        use_cache=True, **self._mask_kwargs(prompt, 1)).last_hidden_state
        hidden = body(input_ids=ids, use_cache=False, **self._mask_kwargs(ids.shape[1])).last_hidden_state
        if self._attention_mask is not None:
            # Padding positions have no meaning: compared as zeros on both sides.
            real = self._attention_mask[:, :, None].bool()
            hidden = torch.where(real, hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device))
        return hidden

    def _reference_dtype(self, built: _Built, seq: int) -> tuple[torch.dtype | None, str]:
        """fp64 if a float64 copy and its activations fit; else fp32 eager; else None + why."""
        free = room(self.device.kind)
        shape = self.attention_shape(CellKey("standard", seq, built.dtype))
        for dtype, name, elem in ((torch.float64, "fp64", 8), (torch.float32, "fp32-eager", 4)):
            weights = built.n_params * elem
            # Eager scores + probabilities of one layer, plus a generous margin for activations.
            act = 2 * shape.batch * shape.heads * seq * seq * elem + 32 * shape.batch * seq * self.config.hidden_size * elem
            # On the GPU 10% slack; on the host the CPU margin (memory.refusal), since the
            # OOM killer, not an exception, is what meets a reference copy that does not fit.
            fits = (weights + act < 0.9 * free.free_bytes if self.device.kind == "cuda"
                    else refusal(weights + act, free, "cpu") is None)
            if fits:
                return dtype, name
        return None, (f"no room for a reference copy: fp32 weights alone need "
                      f"{built.n_params * 4 / 2**30:.1f} GiB, {free.free_bytes / 2**30:.1f} GiB free")

    def _group_reference(self, key: CellKey, model: torch.nn.Module, ids: torch.Tensor,
                         backend_name: str) -> None:
        built = self._built
        assert built is not None
        ref_dtype, name = self._reference_dtype(built, key.seq)
        if ref_dtype is None:
            self._parity_reason = name
            return
        self.progress(f"{name} reference for seq={key.seq} {key.dtype}")
        try:
            with torch.inference_mode(False):
                ref_model = copy.deepcopy(model).to(ref_dtype)
            ref_model.set_attn_implementation(
                register_reference_attention() if self._attention_mask is not None else "eager")
            with torch.inference_mode():
                self._reference = self._hidden(ref_model, ids).to(torch.float64)
            del ref_model
            release(self.device.kind)
            # The dtype's own error: eager attention in the cell's dtype, same weights, same ids.
            model.set_attn_implementation("eager")
            with torch.inference_mode():
                std = self._hidden(model, ids)
            self._standard_metrics = error_metrics(std, self._reference, distribution=True)
            del std
            self._reference_name = name
        except Exception as exc:  # noqa: BLE001
            self._reference = None
            self._parity_reason = ("reference ran out of memory" if is_oom(exc)
                                   else f"reference failed: {one_line(exc, 200)}")
            release(self.device.kind)
        finally:
            self._switch(model, backend_name)

    def _parity(self, key: CellKey, model: torch.nn.Module, ids: torch.Tensor) -> Parity:
        if self._reference is None and self._parity_reason is None:
            # Reference and the dtype's own error run eager attention: no SDPA kernel involved.
            self._group_reference(key, model, ids, key.backend)
        if self._reference is None or self._standard_metrics is None:
            return Parity(reference=self._reference_name, reason=self._parity_reason)
        out = self._hidden(model, ids)
        metrics = error_metrics(out, self._reference, distribution=True)
        std = self._standard_metrics["rel_l2"]
        ratio = metrics["rel_l2"] / max(std, REL_ERR_FLOOR)
        return Parity(reference=self._reference_name, max_abs=metrics["max_abs"],
                      mean_abs=metrics["mean_abs"], rel_l2=metrics["rel_l2"], standard_rel_l2=std,
                      ratio_vs_standard=ratio, passed=ratio <= PARITY_RATIO_LIMIT,
                      abs_diff=metrics["abs_diff"], standard_abs_diff=self._standard_metrics["abs_diff"])


# ------------------------------------------------------------------ dispatch proof
def _observe_all(fn: Callable[[], object], device: str) -> list[str] | None:
    """Every kernel (CUDA) or aten op (CPU) name one call launches, most time first.

    engine.dispatch keeps the top few names, which for a whole model are GEMMs; the
    attention kernels must be searched among all of them.
    """
    from collections import Counter

    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    try:
        with profile(activities=activities) as prof:
            fn()
            _sync(device)
    except Exception:  # noqa: BLE001 - a profiler hiccup must not cost the measurement
        return None
    weights: Counter[str] = Counter()
    for event in prof.events():
        is_kernel = str(getattr(event, "device_type", "")).endswith("CUDA")
        if (device == "cuda") != is_kernel or (device != "cuda" and not event.name.startswith("aten::")):
            continue
        duration = getattr(event, "device_time_total", 0) if device == "cuda" else event.cpu_time_total
        weights[" ".join(event.name.split())[:120]] += max(float(duration or 0), 1e-9)
    return [name for name, _ in weights.most_common()]


__all__ = ["ATTN_IMPLEMENTATIONS", "ModelRunner", "ModelSource", "SDPA_KERNELS",
           "attn_implementation_for", "register_bshd_attention", "resolve_source"]
