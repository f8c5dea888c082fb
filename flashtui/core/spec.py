"""Run specifications: frozen dataclasses, validated on creation.

Everything a sweep needs to be reproduced lives here, as plain data that
crosses the process boundary as JSON (``to_dict`` / ``from_dict``). No torch:
the UI process builds and validates specs without importing it.

Validation errors are :class:`SpecError` with a one-line message a user can act on.
"""

from __future__ import annotations

from flashtui.errors import SpecError  # noqa: F401 - raised here, importable from here

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Iterable

from flashtui.core.variants import FLAGS, KERNEL_ONLY, describe, spec_notes

DTYPES = ("fp32", "fp16", "bf16")
MODES = ("kernel", "prefill", "decode")
DEVICES = ("cuda", "cpu")
BACKENDS = (
    "standard",
    "sdpa",
    "sdpa-math",
    "sdpa-flash",
    "sdpa-efficient",
    "sdpa-cudnn",
    "flex",
    "fa2",
    "fa3",
    "fa4",
)
# Far past what any GPU holds for attention today (a 16M-token sequence); a larger
# value is a typo, not an experiment.
MAX_SEQ = 1 << 24
MAX_HEAD_DIM = 1024
MAX_REPS = 100_000
# torch.manual_seed takes any 64-bit value; one range, said once, keeps specs portable.
MAX_SEED = 2**63 - 1


def check_seed(value: Any) -> int:
    """An integer seed in 0..MAX_SEED (not a bool, not a float with a fraction)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise SpecError(f"seed must be an integer between 0 and {MAX_SEED}, got {value!r}")
    return value

def _positive_int(name: str, value: Any, upper: int | None = None) -> int:
    if isinstance(value, bool):
        raise SpecError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            raise SpecError(f"{name} must be a positive integer, got {text!r}") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise SpecError(f"{name} must be a positive integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise SpecError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise SpecError(f"{name} must be a positive integer, got {value}")
    if upper is not None and value > upper:
        raise SpecError(f"{name} {value} is larger than the supported maximum {upper}")
    return value


def _positive_float(name: str, value: Any, example: str = "") -> float:
    flag = FLAGS.get(name, name)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
        if isinstance(value, bool):
            raise TypeError
    except (TypeError, ValueError):
        raise SpecError(f"{flag} must be a positive number{example}, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise SpecError(f"{flag} must be a positive number{example}, got {value}")
    return number


def _split(value: str | Iterable[Any]) -> list[Any]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        return [item for item in items if item != ""]
    return list(value)


def parse_seqs(value: str | Iterable[Any]) -> tuple[int, ...]:
    """``"512,1024"`` or ``[512, 1024]`` -> ``(512, 1024)``; duplicates dropped, order kept."""
    items = _split(value)
    if not items:
        raise SpecError("seq needs at least one sequence length, e.g. --seq 512,1024")
    seqs: list[int] = []
    for item in items:
        seq = _positive_int("seq", item, MAX_SEQ)
        if seq not in seqs:
            seqs.append(seq)
    return tuple(seqs)


DTYPE_ALIASES = {
    "fp32": "fp32", "float32": "fp32", "float": "fp32", "f32": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "f16": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
}


def parse_dtypes(value: str | Iterable[Any]) -> tuple[str, ...]:
    items = _split(value)
    if not items:
        raise SpecError("dtype needs at least one of: " + ", ".join(DTYPES))
    dtypes: list[str] = []
    for item in items:
        key = str(item).strip().lower()
        if key not in DTYPE_ALIASES:
            raise SpecError(f"unknown dtype {item!r}; choose from {', '.join(DTYPES)}")
        if DTYPE_ALIASES[key] not in dtypes:
            dtypes.append(DTYPE_ALIASES[key])
    return tuple(dtypes)


def parse_backends(value: str | Iterable[Any] | None) -> tuple[str, ...] | None:
    """``None`` or ``"all"`` means every backend available on the worker."""
    if value is None:
        return None
    items = _split(value)
    if not items or items == ["all"]:
        return None
    names: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name not in BACKENDS:
            raise SpecError(f"unknown backend {item!r}; choose from {', '.join(BACKENDS)}")
        if name not in names:
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class CellKey:
    """One measured cell of a sweep: a backend at one sequence length and dtype."""

    backend: str
    seq: int
    dtype: str

    # Separator of the string form (a Textual row key); no backend or dtype contains it.
    ROW_KEY_SEPARATOR = "|"

    def label(self) -> str:
        """What a person reads: ``sdpa-flash seq=1024 bf16``."""
        return f"{self.backend} seq={self.seq} {self.dtype}"

    def to_list(self) -> list[Any]:
        """The JSON form: ``[backend, seq, dtype]`` (RunSweep's cells, diff's one-sided lists)."""
        return [self.backend, self.seq, self.dtype]

    @classmethod
    def from_list(cls, value: Any) -> "CellKey":
        """Inverse of :meth:`to_list`; a malformed value is a one-line :class:`SpecError`."""
        try:
            backend, seq, dtype = value
            if isinstance(seq, bool) or not isinstance(backend, str) or not isinstance(dtype, str):
                raise TypeError
            return cls(backend, int(seq), dtype)
        except (TypeError, ValueError):
            raise SpecError(f"a cell key is [backend, seq, dtype], got {value!r}") from None

    def row_key(self) -> str:
        """The string form for widgets that key rows by text: ``sdpa-flash|1024|bf16``."""
        return self.ROW_KEY_SEPARATOR.join((self.backend, str(self.seq), self.dtype))

    @classmethod
    def from_row_key(cls, text: str) -> "CellKey":
        """Inverse of :meth:`row_key`."""
        parts = str(text).split(cls.ROW_KEY_SEPARATOR)
        if len(parts) != 3:
            raise SpecError(f"a cell row key is backend|seq|dtype, got {text!r}")
        return cls.from_list(parts)


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: every backend x sequence length x dtype, with shared shape and method."""

    mode: str = "kernel"
    seqs: tuple[int, ...] = (512, 1024, 2048)
    dtypes: tuple[str, ...] = ("bf16",)
    # None: every backend the worker reports available.
    backends: tuple[str, ...] | None = None
    batch: int = 1
    heads: int = 16
    # None: same as heads (plain multi-head attention); fewer is GQA/MQA.
    kv_heads: int | None = None
    head_dim: int = 128
    causal: bool = True
    backward: bool = False
    device: str = "cuda"
    # Warm-up runs at least this much wall time (and 2 calls), then on until steady
    # (engine.timing.warm_up: two bursts agree within 2%, 100 ms at most).
    warmup_ms: float = 25.0
    reps: int = 30
    seed: int = 0
    # Model modes (prefill/decode): a built-in model name, local path or hub id.
    model: str | None = None
    new_tokens: int = 32
    trust_remote_code: bool = False
    # fp64 oracle parity; off skips it (faster, but no accuracy columns).
    parity: bool = True
    # Flush L2 before every timed call (as triton's do_bench does); default: L2-warm loop.
    cold_l2: bool = False
    # Attention variants (flashtui.core.variants says what each means); None: off.
    # Kernel mode only, except pad: in model mode the model's own config decides.
    window: int | None = None
    softcap: float | None = None
    docs: int | None = None
    pad: float | None = None
    q_len: int | None = None
    page_size: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SpecError(f"unknown mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.device not in DEVICES:
            raise SpecError(f"unknown device {self.device!r}; choose from {', '.join(DEVICES)}")
        object.__setattr__(self, "seqs", parse_seqs(self.seqs))
        object.__setattr__(self, "dtypes", parse_dtypes(self.dtypes))
        object.__setattr__(self, "backends", parse_backends(self.backends))
        object.__setattr__(self, "batch", _positive_int("batch", self.batch, 1 << 20))
        object.__setattr__(self, "heads", _positive_int("heads", self.heads, 4096))
        object.__setattr__(self, "head_dim", _positive_int("head_dim", self.head_dim, MAX_HEAD_DIM))
        object.__setattr__(self, "reps", _positive_int("reps", self.reps, MAX_REPS))
        object.__setattr__(self, "new_tokens", _positive_int("new_tokens", self.new_tokens, 1 << 20))
        check_seed(self.seed)
        if self.kv_heads is not None:
            kv = _positive_int("kv_heads", self.kv_heads, 4096)
            if self.heads % kv != 0:
                raise SpecError(f"heads ({self.heads}) must be a multiple of kv_heads ({kv}) for GQA")
            object.__setattr__(self, "kv_heads", kv)
        try:
            warmup = float(self.warmup_ms)
        except (TypeError, ValueError):
            raise SpecError(f"warmup_ms must be a number of milliseconds, got {self.warmup_ms!r}") from None
        if not (0 <= warmup <= 600_000):
            raise SpecError(f"warmup_ms must be between 0 and 600000, got {self.warmup_ms!r}")
        object.__setattr__(self, "warmup_ms", warmup)
        if self.mode != "kernel" and not self.model:
            raise SpecError(f"mode {self.mode} needs a model, e.g. --model gpt2")
        for flag in ("causal", "backward", "trust_remote_code", "parity", "cold_l2"):
            if not isinstance(getattr(self, flag), bool):
                raise SpecError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        self._validate_variant()

    def _validate_variant(self) -> None:
        """Each variant field on its own, then how they combine (one line each)."""
        for name in ("window", "docs", "q_len", "page_size"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _positive_int(FLAGS[name], value, MAX_SEQ))
        if self.softcap is not None:
            object.__setattr__(self, "softcap", _positive_float("softcap", self.softcap, " (Gemma-2 uses 50)"))
        if self.pad is not None:
            try:
                pad = float(self.pad.strip() if isinstance(self.pad, str) else self.pad)
                if isinstance(self.pad, bool):
                    raise TypeError
            except (TypeError, ValueError):
                raise SpecError(f"--pad must be a fraction of each row in [0, 1), got {self.pad!r}") from None
            if not (0.0 <= pad < 1.0):
                raise SpecError(f"--pad must be a fraction of each row in [0, 1) (1 would pad every "
                                f"token), got {self.pad}")
            object.__setattr__(self, "pad", pad)
        if self.mode != "kernel":
            given = [FLAGS[n] for n in KERNEL_ONLY if getattr(self, n) is not None]
            if given:
                raise SpecError(f"{', '.join(given)}: kernel mode only; in {self.mode} mode the model's own "
                                "config decides (e.g. --model mistral-7b-v0.1 has a 4096-token window)")
        shortest = min(self.seqs)
        if self.window is not None and not self.causal:
            raise SpecError("--window is causal sliding-window attention: drop --no-causal")
        if self.docs is not None and self.docs > shortest:
            raise SpecError(f"--docs {self.docs} is larger than seq {shortest}: "
                            "each document needs at least one token")
        if self.q_len is not None and self.q_len > shortest:
            raise SpecError(f"--q-len {self.q_len} is larger than seq {shortest} "
                            "(the queries attend to a KV cache of seq tokens)")
        if self.docs is not None and self.pad is not None:
            raise SpecError("--docs and --pad do not combine: a packed row has no padding")
        if self.docs is not None and self.q_len is not None:
            raise SpecError("--docs and --q-len do not combine: packed documents are a prefill "
                            "layout; decode one sequence per row")
        if self.page_size is not None and (self.docs is not None or self.pad is not None):
            raise SpecError("--page-size does not combine with --docs or --pad: a paged cache "
                            "holds one sequence per row")

    @property
    def variant(self) -> str:
        """``"window 4096"``, ``"8 documents"``, ..., or ``"dense"``."""
        return describe(self)

    def notes(self) -> list[str]:
        """Allowed but worth saying (e.g. a window at least the sequence is plain causal)."""
        return spec_notes(self)

    @property
    def effective_kv_heads(self) -> int:
        return self.kv_heads if self.kv_heads is not None else self.heads

    def cells(self, available_backends: Iterable[str] | None = None) -> list[CellKey]:
        """The ordered cell plan.

        Grouped by (dtype, seq) so every backend sees the same inputs back to back
        and the fp64 oracle is computed once per group; ``standard`` goes first in
        each group so speedups are known as soon as a flash cell lands.
        """
        backends = self.resolve_backends(available_backends)
        return [
            CellKey(backend, seq, dtype)
            for dtype in self.dtypes
            for seq in self.seqs
            for backend in backends
        ]

    def resolve_backends(self, available_backends: Iterable[str] | None = None) -> tuple[str, ...]:
        if self.backends is not None:
            chosen = list(self.backends)
        elif available_backends is not None:
            chosen = [b for b in BACKENDS if b in set(available_backends)]
        else:
            chosen = list(BACKENDS)
        chosen.sort(key=lambda name: (name != "standard", BACKENDS.index(name)))
        return tuple(chosen)

    def replace(self, **changes: Any) -> "SweepSpec":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seqs"] = list(self.seqs)
        data["dtypes"] = list(self.dtypes)
        data["backends"] = list(self.backends) if self.backends is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        if not isinstance(data, dict):
            raise SpecError(f"a sweep spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s): {', '.join(unknown)}")
        return cls(**data)


def cpu_defaults() -> dict[str, Any]:
    """Small shapes that finish in seconds on a laptop CPU, so a bare `flashtui bench` is useful."""
    return dict(
        device="cpu", seqs=(128, 256, 512), dtypes=("fp32",), batch=1, heads=4,
        head_dim=64, reps=10, warmup_ms=50.0,
    )


def cuda_defaults() -> dict[str, Any]:
    return dict(device="cuda", seqs=(512, 1024, 2048, 4096), dtypes=("bf16",), batch=1,
                heads=16, head_dim=128, reps=30, warmup_ms=25.0)


__all__ = [
    "BACKENDS", "CellKey", "DEVICES", "DTYPES", "MAX_SEED", "MODES", "SpecError", "SweepSpec", "check_seed",
    "cpu_defaults", "cuda_defaults", "parse_backends", "parse_dtypes", "parse_seqs",
]
