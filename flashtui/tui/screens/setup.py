"""Setup screen: what to measure. Enter alone starts a useful run.

The form starts from the device's defaults (``cuda_defaults`` when the worker reports
CUDA, else ``cpu_defaults``, then the app's injected overrides) and validates as you
type: the spec is rebuilt on every change and a :class:`~flashtui.core.spec.SpecError` is
shown inline as its one line. Backends the worker cannot run are greyed with the reason.
Posts :class:`SetupScreen.RunRequested` with a valid ``SweepSpec``.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Header, Input, Label, Select, Static

from flashtui.tui.widgets.tick import Tick as Checkbox
from flashtui.tui.present import short_reason
from flashtui.core.spec import BACKENDS, DTYPES, MODES, SpecError, SweepSpec, parse_seqs
from flashtui.core.protocol import WorkerReady
from flashtui.tui.widgets.footer import QuietFooter

DIRECTIONS = (("forward", "fwd"), ("forward + backward", "fwd+bwd"))
# Attention variants (flashtui.core.variants): (field id, label, input type, placeholder).
VARIANT_INPUTS = (
    ("window", "window", "integer", "off: last N tokens"),
    ("softcap", "softcap", "number", "off: tanh cap X"),
    ("docs", "documents", "integer", "off: packed N docs"),
    ("pad", "padding", "number", "off: fraction F"),
    ("q_len", "q len", "integer", "= seq; 1 is decode"),
    ("page_size", "page size", "integer", "off: paged KV"),
)


def model_names() -> list[str]:
    """Built-in model names from flashtui.core.model_catalog when it exists (torch-free)."""
    try:
        from flashtui.core import model_catalog  # type: ignore[attr-defined]
    except ImportError:
        return ["gpt2"]
    for attr in ("builtin_names", "model_names", "names"):
        fn = getattr(model_catalog, attr, None)
        if callable(fn):
            try:
                return [str(n) for n in fn()]
            except Exception:
                break
    catalog = getattr(model_catalog, "MODELS", None) or getattr(model_catalog, "CATALOG", None)
    return [str(n) for n in catalog] if catalog else ["gpt2"]


def _check_model(model: str) -> None:
    """SpecError when ``model`` is neither built-in, a path nor a Hub id (catalog present)."""
    try:
        from flashtui.core import model_catalog  # type: ignore[attr-defined]
    except ImportError:
        return
    if model_catalog.classify(model) == "unknown":
        raise SpecError(model_catalog.unknown_model_message(model))


def _model_kind(model: str) -> str | None:
    """'builtin', 'path', 'hub' or 'unknown' (None without the catalog)."""
    try:
        from flashtui.core import model_catalog  # type: ignore[attr-defined]
    except ImportError:
        return None
    return model_catalog.classify(model)


def _csv(values: Any) -> str:
    return ",".join(str(v) for v in values)


class SetupScreen(Screen):
    """The form. ``apply_defaults(dict)`` fills it; ``build_spec()`` reads it."""

    BINDINGS = [
        # r runs when focus is not in a text field (there it types); ctrl+r/F5 from anywhere.
        Binding("r", "run", "Run"),
        Binding("ctrl+r", "run", "Run", show=False, priority=True),
        Binding("f5", "run", "Run", show=False),
        Binding("ctrl+t", "app.cycle_theme", "Theme"),
        Binding("ctrl+q", "app.request_quit", "Quit", priority=True),
    ]

    FOOTER_ESSENTIAL = ("run", "app.request_quit")

    class RunRequested(Message):
        """The user asked to run ``spec``."""

        def __init__(self, spec: SweepSpec, gpus: str | None = None) -> None:
            super().__init__()
            self.spec = spec
            self.gpus = gpus  # 'all' or '0,1': one worker per GPU; None: the one worker

    def __init__(self, defaults: dict[str, Any]) -> None:
        super().__init__(id="setup")
        self.defaults = dict(defaults)
        self.backend_info: dict[str, dict[str, Any]] | None = None
        self.cpu_backend_info: dict[str, dict[str, Any]] | None = None
        self.user_edited = False
        self.ready: WorkerReady | None = None
        self.last_error: str | None = None
        self._filling = False

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="setup-form"):
            with Grid(id="setup-grid"):
                yield Label("mode", classes="field-label")
                yield Select([(m, m) for m in MODES], value="kernel", allow_blank=False,
                             compact=True, id="mode")
                yield Label("model", classes="field-label")
                yield Input(placeholder="built-in name or local path (prefill/decode)",
                            suggester=SuggestFromList(model_names(), case_sensitive=False),
                            compact=True, id="model")
                yield Label("device", classes="field-label")
                yield Select([("cuda", "cuda"), ("cpu", "cpu")], value="cpu", allow_blank=False,
                             compact=True, id="device")
                yield Label("seq lengths", classes="field-label")
                yield Input(placeholder="e.g. 512,1024,2048", compact=True, id="seqs")
                yield Label("batch", classes="field-label")
                yield Input(type="integer", compact=True, id="batch")
                yield Label("heads", classes="field-label")
                yield Input(type="integer", compact=True, id="heads")
                yield Label("kv heads", classes="field-label")
                yield Input(placeholder="same as heads", type="integer", compact=True, id="kv_heads")
                yield Label("head_dim", classes="field-label")
                yield Input(type="integer", compact=True, id="head_dim")
                yield Label("reps", classes="field-label")
                yield Input(type="integer", compact=True, id="reps")
                yield Label("warm-up ms (least)", classes="field-label")
                yield Input(type="number", compact=True, id="warmup_ms")
                yield Label("pass", classes="field-label")
                yield Select([(t, v) for t, v in DIRECTIONS], value="fwd", allow_blank=False,
                             compact=True, id="direction")
                for field_id, label, kind, hint in VARIANT_INPUTS:
                    yield Label(label, classes="field-label")
                    yield Input(placeholder=hint, type=kind, compact=True, id=field_id)
                yield Label("GPUs", classes="field-label")
                yield Input(placeholder="all, 0,1: worker per GPU", compact=True, id="gpus")
            with Horizontal(id="flags-row"):
                yield Checkbox("causal", True, id="causal")
                yield Checkbox("parity", True, id="parity")
                yield Label("dtypes:", classes="inline-label")
                for dtype in DTYPES:
                    yield Checkbox(dtype, False, id=f"dtype-{dtype}")
            yield Label("backends (greyed: cannot run here, with why)", classes="section-label")
            with Vertical(id="backend-list"):
                for name in BACKENDS:
                    yield Checkbox(name, False, id=f"backend-{name}", classes="backend")
            yield Static("", id="model-note")
            yield Static("", id="spec-error")
        with Horizontal(id="setup-actions"):  # outside the scroll: always visible
            yield Button("Run ▶", id="run", variant="primary", compact=True)
            yield Static("starting worker…", id="worker-status")
        yield QuietFooter()

    def on_mount(self) -> None:
        self.apply_defaults(self.defaults)
        self.query_one("#run", Button).focus()

    # --------------------------------------------------------------- defaults
    def apply_defaults(self, values: dict[str, Any], *, force: bool = False) -> None:
        """Fill the form from spec field values (unless the user already edited it)."""
        if self.user_edited and not force:
            return
        self._filling = True
        try:
            spec = SweepSpec(**values)
        except (SpecError, TypeError):
            spec = SweepSpec(device=str(values.get("device", "cpu")))
        self.query_one("#mode", Select).value = spec.mode
        self.query_one("#model", Input).value = spec.model or ""
        self.query_one("#device", Select).value = spec.device
        self.query_one("#seqs", Input).value = _csv(spec.seqs)
        for name in ("batch", "heads", "head_dim", "reps"):
            self.query_one(f"#{name}", Input).value = str(getattr(spec, name))
        self.query_one("#kv_heads", Input).value = "" if spec.kv_heads is None else str(spec.kv_heads)
        self.query_one("#warmup_ms", Input).value = f"{spec.warmup_ms:g}"
        for field_id, *_ in VARIANT_INPUTS:
            value = getattr(spec, field_id)
            self.query_one(f"#{field_id}", Input).value = "" if value is None else f"{value:g}"
        self.query_one("#direction", Select).value = "fwd+bwd" if spec.backward else "fwd"
        self.query_one("#causal", Checkbox).value = spec.causal
        self.query_one("#parity", Checkbox).value = spec.parity
        for dtype in DTYPES:
            self.query_one(f"#dtype-{dtype}", Checkbox).value = dtype in spec.dtypes
        self._wanted_backends = spec.backends
        self._refresh_backends()
        self._filling = False
        self.validate_form()

    def set_worker_info(self, ready: WorkerReady, defaults: dict[str, Any]) -> None:
        """The worker is up: grey out unavailable backends, apply device defaults."""
        self.backend_info = ready.backends
        self.cpu_backend_info = ready.cpu_backends
        self.ready = ready
        status = self.query_one("#worker-status", Static)
        status.update(f"worker ready on {ready.device_kind} (pid {ready.pid})")
        self.defaults = dict(defaults)
        if not self.user_edited:
            self.apply_defaults(defaults)
        else:
            self._refresh_backends()

    def set_worker_failed(self, reason: str) -> None:
        self.query_one("#worker-status", Static).update(f"worker failed: {reason}")

    def _availability(self) -> dict[str, dict[str, Any]] | None:
        device = self.query_one("#device", Select).value
        if device == "cpu" and self.cpu_backend_info is not None:
            return self.cpu_backend_info
        return self.backend_info

    def _refresh_backends(self) -> None:
        """Enable/disable backend checkboxes from the worker's availability."""
        info = self._availability()
        wanted = getattr(self, "_wanted_backends", None)
        filling, self._filling = self._filling, True
        for name in BACKENDS:
            box = self.query_one(f"#backend-{name}", Checkbox)
            entry = (info or {}).get(name)
            if info is None:
                box.label = f"{name} (probing…)"
                box.disabled = False
                box.value = wanted is None or name in wanted
                continue
            available = bool(entry and entry.get("available"))
            reason = (entry or {}).get("reason") or "not reported by the worker"
            box.label = name if available else f"{name} — {short_reason(name, reason)}"
            box.disabled = not available
            box.tooltip = None if available else reason
            box.value = available and (wanted is None or name in wanted)
        self._filling = filling

    # ------------------------------------------------------------- validation
    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _changed(self, event: Message) -> None:
        if self._filling:
            return
        if isinstance(event, Select.Changed) and event.select.id == "device":
            self._refresh_backends()
        self.user_edited = True
        self.validate_form()

    def _int_or_text(self, widget_id: str) -> Any:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def build_spec(self) -> SweepSpec:
        """The spec the form describes; SpecError with one line when it is not valid."""
        mode = self.query_one("#mode", Select).value
        model = self.query_one("#model", Input).value.strip() or None
        dtypes = [d for d in DTYPES if self.query_one(f"#dtype-{d}", Checkbox).value]
        backends = [
            b for b in BACKENDS
            if self.query_one(f"#backend-{b}", Checkbox).value
            and not self.query_one(f"#backend-{b}", Checkbox).disabled
        ]
        if not backends:
            raise SpecError("pick at least one backend")
        if mode != "kernel" and model:
            _check_model(model)
        kv_heads = self._int_or_text("kv_heads") or None
        return SweepSpec(
            mode=str(mode),
            model=model if mode != "kernel" else None,
            device=str(self.query_one("#device", Select).value),
            seqs=self._int_or_text("seqs"),
            dtypes=dtypes,
            backends=backends,
            batch=self._int_or_text("batch"),
            heads=self._int_or_text("heads"),
            kv_heads=kv_heads,
            head_dim=self._int_or_text("head_dim"),
            reps=self._int_or_text("reps"),
            warmup_ms=self._int_or_text("warmup_ms") or "x",
            causal=bool(self.query_one("#causal", Checkbox).value),
            backward=self.query_one("#direction", Select).value == "fwd+bwd",
            parity=bool(self.query_one("#parity", Checkbox).value),
            **{field_id: self._int_or_text(field_id) or None for field_id, *_ in VARIANT_INPUTS},
        )

    def gpus_choice(self) -> str | None:
        """The GPUs field: None (one worker) or 'all' / '0,1', checked against the worker's
        GPU count (client.worker_pool); SpecError with one line when it cannot be run."""
        text = self.query_one("#gpus", Input).value.strip()
        if not text:
            return None
        from flashtui.client.worker_pool import parse_gpus, resolve_gpus

        choice = parse_gpus(text)
        if self.query_one("#device", Select).value != "cuda":
            raise SpecError("GPUs: one worker per GPU needs device cuda")
        if self.ready is not None:
            resolve_gpus(choice, self.ready)
        return text

    def _update_model_fields(self) -> None:
        """Model modes take heads and head_dim from the model's config: grey them out and
        say so; a built-in name is a config only (random weights, nothing downloaded)."""
        mode = self.query_one("#mode", Select).value
        model_mode = mode != "kernel"
        for name in ("heads", "head_dim"):
            self.query_one(f"#{name}", Input).disabled = model_mode
        note = self.query_one("#model-note", Static)
        note.display = model_mode
        if not model_mode:
            return
        model = self.query_one("#model", Input).value.strip()
        text = f"{mode}: heads and head_dim come from the model's config (the fields are ignored)"
        kind = _model_kind(model) if model else None
        if kind == "builtin":
            text += f"; {model!r} is a built-in config: random weights, timings only (no download)"
        elif kind == "path":
            text += "; weights loaded from the local directory"
        elif kind == "hub":
            text += "; weights from the Hugging Face Hub"
        note.update(text)

    def validate_form(self) -> SweepSpec | None:
        """Rebuild the spec; show the error line (seq errors beside the seq field)."""
        self._update_model_fields()
        error = self.query_one("#spec-error", Static)
        seqs_input = self.query_one("#seqs", Input)
        try:
            parse_seqs(seqs_input.value)
            seqs_input.remove_class("-invalid-spec")
        except SpecError:
            seqs_input.add_class("-invalid-spec")
        try:
            spec = self.build_spec()
            gpus = self.gpus_choice()
        except SpecError as exc:
            self.last_error = str(exc)
            error.update(f"✗ {exc}")
            error.add_class("-error")
            return None
        self.last_error = None
        n_cells = len(spec.cells())
        notes = "".join(f" · note: {note}" for note in spec.notes())
        variant = "" if spec.variant == "dense" else f" · {spec.variant}"
        where = f" · on GPUs {gpus}" if gpus else ""
        error.update(f"✓ {n_cells} cells: {len(spec.resolve_backends())} backends × "
                     f"{len(spec.seqs)} seqs × {len(spec.dtypes)} dtypes{variant}{where}{notes}")
        error.remove_class("-error")
        return spec

    # ---------------------------------------------------------------- actions
    def action_run(self) -> None:
        spec = self.validate_form()
        if spec is None:
            self.notify(self.last_error or "the form is not valid", severity="error",
                        title="cannot run")
            return
        self.post_message(self.RunRequested(spec, self.gpus_choice()))

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_run()
