"""Bad input: a corpus of malformed values for every user input, through the real CLI
(and the TUI's form, its theme and config loaders, through Pilot).

Each one must give one readable line (CLI: ``flashtui: error: ...`` on stderr and a
non-zero exit; TUI: a notification), no traceback, and nothing lost: the session file
that was there before is byte-for-byte the same after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flashtui.store import index as store
from flashtui.core.results import Cell
from flashtui.core.session import Session

from .conftest import TINY, assert_one_line_error, finish, flashtui, kill_quietly, start_flashtui


# ----------------------------------------------------------------- fixtures
@pytest.fixture
def stored_session(data_dir, monkeypatch) -> Path:
    """A finished session in the store (written by the real journal writer, no worker)."""
    monkeypatch.setenv("FLASHTUI_DATA_DIR", str(data_dir))
    session = Session(spec={"mode": "kernel", "device": "cpu", "seqs": [64]},
                      provenance={"device_kind": "cpu", "device_name": "test CPU"})
    journal = store.open_journal(session)
    for backend, ms in (("standard", 2.0), ("sdpa-flash", 1.0)):
        cell = Cell(backend, 64, "fp32", median_ms=ms)
        session.add_cell(cell)
        journal.append_cell(cell)
    session.finish("complete")
    journal.finish(session)
    return store.journal_path(session.id)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------- bench: rejected before any work
BENCH_PARSE_CORPUS = [
    (["--seq", "0"], "seq must be a positive integer, got 0"),
    (["--seq", "-1"], "seq must be a positive integer, got -1"),
    (["--seq", "abc"], "seq must be a positive integer, got 'abc'"),
    (["--seq", str(10**9)], "larger than the supported maximum"),
    (["--seq", "64,,abc"], "got 'abc'"),
    (["--seq", ""], "at least one sequence length"),
    (["--batch", "0"], "batch must be a positive integer, got 0"),
    (["--batch", "-3"], "batch must be a positive integer"),
    (["--head-dim", "0"], "head-dim must be a positive integer"),
    (["--heads", "x"], "heads must be a positive integer, got 'x'"),
    (["--dtype", "int8"], "unknown dtype 'int8'"),
    (["--dtype", "fp8"], "unknown dtype"),
    (["--backends", "flash9"], "unknown backend 'flash9'"),
    (["--reps", "0"], "reps must be a positive integer"),
    (["--warmup-ms", "-5"], "must be >= 0"),
    (["--warmup-ms", "nan"], "must be >= 0"),
    (["--cell-timeout", "soon"], "must be a number"),
    (["--cell-timeout", "0"], "--cell-timeout: must be a number of seconds > 0, got 0"),
    (["--cell-timeout", "-3"], "must be a number of seconds > 0"),
    (["--cell-timeout", "inf"], "must be a number of seconds > 0"),
    (["--cell-timeout", "nan"], "must be a number of seconds > 0"),
    (["--cell-timeout", "2", "--warmup-ms", "5000"], "--cell-timeout 2 s is below what a cell needs"),
    (["--seed", "abc"], "--seed: must be an integer between 0 and"),
    (["--seed", "-1"], "--seed: must be an integer between 0 and"),
    (["--seed", "1.5"], "--seed: must be an integer"),
    (["--seed", str(2**64)], "--seed: must be an integer between 0 and"),
    (["--reps", "many"], "reps must be a positive integer, got 'many'"),
    (["--reps", str(10**6)], "reps 1000000 is larger than the supported maximum"),
    (["--new-tokens", "0"], "new-tokens must be a positive integer"),
    (["--kv-heads", "0"], "kv-heads must be a positive integer"),
    (["--batch", "1.5"], "batch must be a positive integer, got '1.5'"),
    (["--warmup-ms", "inf"], "warmup_ms must be between 0 and 600000"),
    (["--monitor-hz", "nan"], "must be >= 0"),
    (["--monitor-hz", "-2"], "must be >= 0"),
    (["--monitor-hz", "0.1"], "--monitor-hz must be 0 (off) or between 0.5 and 50"),
    (["--monitor-hz", "1000"], "--monitor-hz must be 0 (off) or between 0.5 and 50"),
    (["--mode", "prefill"], "needs --model"),
    (["--mode", "train"], "invalid choice"),
    (["--out", "/nonexistent-dir/x.json"], "does not exist"),
    (["--no-such-flag"], "unrecognized arguments"),
    # Attention variants: each refused before the worker starts.
    (["--window", "0"], "--window must be a positive integer, got 0"),
    (["--docs", "300", "--seq", "256"], "--docs 300 is larger than seq 256"),
    (["--pad", "1.0"], "--pad must be a fraction of each row in [0, 1)"),
    (["--q-len", "600", "--seq", "512"], "--q-len 600 is larger than seq 512"),
    (["--softcap", "-1"], "--softcap must be a positive number (Gemma-2 uses 50), got -1"),
    (["--page-size", "0"], "--page-size must be a positive integer, got 0"),
    (["--window", "64", "--no-causal"], "--window is causal sliding-window attention"),
    (["--docs", "4", "--pad", "0.1"], "--docs and --pad do not combine"),
    (["--mode", "prefill", "--model", "tiny-gpt2", "--window", "8"], "--window: kernel mode only"),
]


@pytest.mark.parametrize("args, needle", BENCH_PARSE_CORPUS, ids=[" ".join(a) for a, _ in BENCH_PARSE_CORPUS])
def test_bench_bad_value_is_one_line_exit_2_and_stores_nothing(args, needle, data_dir):
    run = flashtui(["bench", *TINY, "--quiet", *args], data_dir, timeout=60)
    assert_one_line_error(run, needle)
    assert run.stdout == ""
    assert not (data_dir / "sessions").exists() or not list((data_dir / "sessions").iterdir())


# ------------------------------------- bench: found out once the worker is up
@pytest.fixture(scope="module")
def worker_runs(tmp_path_factory):
    """The bench runs that need a worker, started together (they overlap on 2 cores)."""
    base = tmp_path_factory.mktemp("bad-input")
    scenarios = {
        # A dtype and head_dim the kernels lack: results, not errors.
        "unsupported": ["--seq", "64", "--dtype", "fp32", "--head-dim", "320",
                        "--backends", "standard,sdpa-cudnn,fa2,flex", "--json"],
        "model-name": ["--mode", "prefill", "--model", "nope"],
        "model-path": ["--mode", "prefill", "--model", "/no/such/dir"],
        "model-decode": ["--mode", "decode", "--model", "no/such-model-xyz", "--device", "cpu"],
    }
    started = {}
    for name, args in scenarios.items():
        data_dir = base / name / "data"
        extra = [a for a in TINY if a not in ("--head-dim", "32")] if name == "unsupported" else TINY
        started[name] = (start_flashtui(["bench", *extra, "--quiet", *args], data_dir), data_dir)
    done: dict = {}

    def get(name):
        if name not in done:
            proc, data_dir = started[name]
            done[name] = (finish(proc, timeout=240), data_dir)
        return done[name]
    yield get
    kill_quietly([proc.pid for proc, _ in started.values() if proc.poll() is None])


def test_dtype_and_head_dim_the_kernels_lack_are_unsupported_cells_not_errors(worker_runs):
    run, data_dir = worker_runs("unsupported")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    cells = {c["backend"]: c for c in json.loads(run.stdout)["cells"]}
    assert cells["standard"]["status"] == "ok" and cells["standard"]["median_ms"] > 0  # standard still runs
    for name in ("sdpa-cudnn", "fa2", "flex"):
        assert cells[name]["status"] == "unsupported", cells[name]
        assert cells[name]["reason"] and cells[name]["median_ms"] is None
    assert "power-of-two head_dim" in cells["flex"]["reason"] or "CUDA" in cells["flex"]["reason"]
    # And it is journaled like any other result.
    stored = store.load_path(next((data_dir / "sessions").glob("*.jsonl")))[0]
    assert {c.backend: c.status for c in stored.cells}["sdpa-cudnn"] == "unsupported"


# SDPA kernels are not in this table: PyTorch's own can_use_* checks decide them on the
# real inputs (engine.backends._sdpa_refusal; tests/gpu/test_trust_gpu.py on the GPU).
@pytest.mark.parametrize("backend, dtype, head_dim, reason", [
    ("fa3", "fp32", 128, "fp16 or bf16, got fp32"),
    ("fa4", "fp32", 128, "fp16 or bf16, got fp32"),
    ("flex", "bf16", 320, "power-of-two head_dim"),
])
def test_kernel_backends_give_the_reason_on_an_h100(backend, dtype, head_dim, reason):
    """What the GPU would say (the CPU run above can only say "CUDA only"): the same
    ``supports`` the worker calls, against an H100's description. Whatever the
    installed flash-attn, the answer is a sentence, never an exception."""
    from flashtui.engine.backends import REGISTRY, DeviceInfo, Shape

    h100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", (9, 0))
    shape = Shape(batch=1, heads=16, kv_heads=16, seq=1024, head_dim=head_dim, dtype=dtype,
                  causal=True, backward=False)
    ok, why = REGISTRY[backend].supports_shape(shape, h100)
    assert ok is False and reason in why, why
    std_ok, _ = REGISTRY["standard"].supports(shape, h100)
    assert std_ok  # standard attention takes any dtype and head_dim


@pytest.mark.parametrize("name, needle", [
    ("model-name", "unknown model 'nope'"),
    ("model-path", "/no/such/dir"),
])
def test_unknown_model_name_or_path_is_one_line_exit_2(worker_runs, name, needle):
    run, _ = worker_runs(name)
    line = assert_one_line_error(run, needle)
    assert "built-in" in line or "directory" in line, line


def test_unreachable_hub_model_is_one_line_not_a_traceback(worker_runs):
    """A Hub id that cannot be fetched (no network here, or no such repo)."""
    run, _ = worker_runs("model-decode")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("flashtui: error: ")]
    assert len(lines) == 1 and "no/such-model-xyz" in lines[0], run.stderr[-2000:]


# ----------------------------------------------------------- export / diff
def test_export_of_a_missing_session_file(data_dir, stored_session):
    run = flashtui(["export", "/no/such/session.jsonl"], data_dir)
    assert_one_line_error(run, "no such session file: /no/such/session.jsonl")


CORRUPT_SESSIONS = {
    "garbage.jsonl": (b"this is not json\n{{{\n", "not"),
    "empty.jsonl": (b"", "empty"),
    "binary.jsonl": (bytes(range(256)) * 4, "not"),
    "newer.jsonl": (json.dumps({"record": "header", "schema": {"name": "flashtui.session", "version": 99},
                                "id": "x", "spec": {}}).encode() + b"\n", "version"),
    "garbage.json": (b"{not json", "not valid JSON"),
    "list.json": (b"[1, 2, 3]", ""),
    "binary.json": (b"\xff\xfe\x00garbage", "not"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT_SESSIONS))
def test_export_of_a_corrupt_session_file_is_one_line(name, data_dir, tmp_path, stored_session):
    data, needle = CORRUPT_SESSIONS[name]
    bad = tmp_path / name
    bad.write_bytes(data)
    before = _digest(stored_session)
    run = flashtui(["export", str(bad), "--format", "md"], data_dir)
    line = assert_one_line_error(run, needle)
    assert name in line or str(bad) in line, line  # says which file
    assert bad.read_bytes() == data and _digest(stored_session) == before  # nothing touched


def test_export_of_an_unreadable_session_file(data_dir, tmp_path, stored_session):
    """Root reads any mode, so "unreadable" is a path that cannot be read as a file."""
    weird = tmp_path / "dir.jsonl"
    weird.mkdir()
    run = flashtui(["export", str(weird)], data_dir)
    assert_one_line_error(run, "dir.jsonl")
    if os.geteuid() != 0:
        locked = tmp_path / "locked.jsonl"
        shutil.copy(stored_session, locked)
        locked.chmod(0)
        assert_one_line_error(flashtui(["export", str(locked)], data_dir), "locked.jsonl")


@pytest.mark.parametrize("target, needle", [
    ("{file}/x.md", "not a directory"),      # a file used as a directory
    ("{tmp}/missing/dir/x.md", "does not exist"),
    ("/proc/flashtui-export.md", "cannot write /proc/flashtui-export.md"),  # a read-only place
    ("{tmp}/x.docx", "cannot tell the format"),
])
def test_export_to_a_place_that_cannot_be_written(target, needle, data_dir, tmp_path, stored_session):
    plain_file = tmp_path / "plain-file"
    plain_file.write_text("keep me\n")
    out = target.format(file=plain_file, tmp=tmp_path)
    before = _digest(stored_session)
    run = flashtui(["export", stored_session.stem, "-o", out], data_dir)
    assert_one_line_error(run, needle)
    assert plain_file.read_text() == "keep me\n" and _digest(stored_session) == before


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 16 KiB tmpfs: a full export directory (needs root and mount)."""
    mountpoint = tmp_path / "full"
    mountpoint.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mountpoint)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def test_export_into_a_full_directory_keeps_the_old_file(data_dir, tiny_tmpfs, stored_session):
    existing = tiny_tmpfs / "report.md"
    existing.write_text("the previous export\n")
    filler = tiny_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill it up
        while True:
            os.write(fd, b"x" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)
    before = _digest(stored_session)
    # html: a page of SVG, far bigger than what is left.
    run = flashtui(["export", stored_session.stem, "--format", "html", "-o", str(existing)], data_dir)
    assert_one_line_error(run, "No space left on device")
    assert existing.read_text() == "the previous export\n"  # atomic: the old file survives
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["filler", "report.md"]  # no temp left
    assert _digest(stored_session) == before


def test_diff_with_bad_threshold_and_missing_session(data_dir, stored_session):
    assert_one_line_error(flashtui(["diff", stored_session.stem, stored_session.stem, "--threshold", "lots"],
                                   data_dir), "--threshold must be a number")
    assert_one_line_error(flashtui(["diff", stored_session.stem, "nope-nope"], data_dir),
                          "unknown session 'nope-nope'")


# ------------------------------------------------- TUI: theme and config files
def test_corrupt_theme_files_are_one_line_each_and_good_ones_still_load(tmp_path):
    from flashtui.tui.themes import load_theme_dir

    folder = tmp_path / "themes"
    folder.mkdir()
    (folder / "a-good.toml").write_text('name = "good"\nprimary = "#336699"\n')
    (folder / "b-broken.toml").write_text('name = "x"\nprimary = [[[')
    (folder / "c-binary.toml").write_bytes(bytes(range(256)))
    (folder / "d-colour.toml").write_text('name = "d"\nprimary = "bluish"\n')
    (folder / "e-dir.toml").mkdir()  # unreadable as a file
    themes, errors = load_theme_dir(folder)
    assert [t.name for t in themes] == ["good"]
    assert len(errors) == 4, errors
    for error, name in zip(errors, ("b-broken", "c-binary", "d-colour", "e-dir")):
        assert name in error and "\n" not in error, error


@pytest.mark.parametrize("content, needle", [
    (b'theme = "x"\n[[[broken', "not valid TOML"),
    (bytes(range(256)), "not valid TOML"),
    (b"theme = 3\n", "theme must be a str"),
    (b"nvml_rate_hz = 'fast'\n", "nvml_rate_hz must be a float"),
    (None, "cannot read"),  # a directory where the file should be
])
def test_corrupt_or_unreadable_config_gives_defaults_and_one_line(content, needle, tmp_path):
    from flashtui.tui.config import TuiConfig, load_config

    path = tmp_path / "config.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    config, error = load_config(path)
    assert config == TuiConfig()
    assert error and needle in error and "\n" not in error, error
    if needle == "not valid TOML":  # kept beside itself with the time, and the user told
        kept = [p for p in tmp_path.iterdir() if p.name.startswith("config.toml.unparsable-")]
        assert len(kept) == 1 and kept[0].read_bytes() == content and not path.exists()
        assert str(kept[0]) in error
    elif content is not None:
        assert path.read_bytes() == content  # not overwritten


async def test_tui_with_unreadable_config_and_corrupt_theme_notifies_and_starts(monkeypatch, tmp_path):
    from flashtui.tui.app import FlashTuiApp

    config_dir = tmp_path / "config"
    (config_dir / "themes").mkdir(parents=True)
    (config_dir / "config.toml").mkdir()  # unreadable as a file
    (config_dir / "themes" / "bin.toml").write_bytes(bytes(range(256)))
    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(config_dir))
    app = FlashTuiApp(worker_factory=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("cannot read" in n and "config.toml" in n for n in notes), notes
        assert any("bin.toml" in n for n in notes), notes
        assert all("\n" not in n for n in notes)
        assert app.screen.id == "setup"
        assert app.theme == "flashtui-dark"


# ------------------------------------------------------------ TUI: the form
TUI_CORPUS = [
    ({"seqs": "0"}, "seq must be a positive integer, got 0"),
    ({"seqs": "-1"}, "seq must be a positive integer, got -1"),
    ({"seqs": "abc"}, "seq must be a positive integer, got 'abc'"),
    ({"seqs": str(10**9)}, "larger than the supported maximum"),
    ({"seqs": ""}, "at least one sequence length"),
    ({"batch": "0"}, "batch must be a positive integer, got 0"),
    ({"head_dim": "0"}, "head_dim must be a positive integer"),
    ({"heads": "6", "kv_heads": "4"}, "multiple of kv_heads"),
    ({"mode": "prefill", "model": "nope"}, "unknown model 'nope'"),
    ({"mode": "prefill"}, "needs a model"),
    ({"window": "0"}, "--window must be a positive integer, got 0"),
    ({"docs": "300"}, "--docs 300 is larger than seq 128"),
    ({"pad": "1.0"}, "--pad must be a fraction of each row in [0, 1)"),
    ({"q_len": "600"}, "--q-len 600 is larger than seq 128"),
    ({"softcap": "-1"}, "--softcap must be a positive number"),
    # The GPUs field (one worker per GPU): checked as `bench --gpus` is.
    ({"gpus": "x"}, "--gpus takes 'all' or GPU indices such as 0,1; got 'x'"),
    ({"gpus": "0"}, "GPUs: one worker per GPU needs device cuda"),
]


@pytest.mark.parametrize("fields, needle", TUI_CORPUS, ids=[str(f) for f, _ in TUI_CORPUS])
async def test_tui_form_bad_value_is_one_notification_and_no_run(fields, needle, monkeypatch, tmp_path):
    from textual.widgets import Input, Select

    from flashtui.tui.app import FlashTuiApp

    monkeypatch.setenv("FLASHTUI_CONFIG_DIR", str(tmp_path / "config"))
    app = FlashTuiApp(worker_factory=None, default_spec_overrides={"device": "cpu"})
    runs: list = []
    async with app.run_test(size=(120, 40), message_hook=lambda m: runs.append(m)
                            if type(m).__name__ == "RunRequested" else None) as pilot:
        await pilot.pause()
        screen = app.screen
        for key, value in fields.items():
            widget = screen.query_one(f"#{key}")
            if isinstance(widget, Select):
                widget.value = value
            else:
                assert isinstance(widget, Input)
                widget.value = value
        await pilot.pause()
        screen.action_run()
        await pilot.pause()
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and needle in errors[0] and "\n" not in errors[0], errors
        assert runs == [] and app.screen.id == "setup"


def test_every_cli_corpus_value_is_also_checked_in_the_tui():
    """The two corpora stay in step: each bad sequence length and variant is tried in both."""
    cli = {args[1] for args, _ in BENCH_PARSE_CORPUS if args[0] == "--seq"}
    tui = {fields["seqs"] for fields, _ in TUI_CORPUS if "seqs" in fields}
    assert {"0", "-1", "abc", str(10**9)} <= cli & tui
    cli_variants = {args[0].lstrip("-").replace("-", "_") for args, _ in BENCH_PARSE_CORPUS
                    if args[0] in ("--window", "--docs", "--pad", "--q-len", "--softcap")}
    tui_variants = {key for fields, _ in TUI_CORPUS for key in fields}
    assert cli_variants <= tui_variants


def test_window_longer_than_the_sequence_runs_and_says_so(data_dir):
    """--window >= seq is allowed: plain causal attention, said once on stderr and in each cell."""
    run = flashtui(["bench", *TINY, "--seq", "64", "--window", "128", "--backends", "standard,sdpa-math",
                    "--json"], data_dir, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "note: --window 128 is at least every seq" in run.stderr
    cells = json.loads(run.stdout)["cells"]
    assert [c["status"] for c in cells] == ["ok", "ok"]
    for cell in cells:
        assert cell["extra"]["variant"]["notes"] == ["window 128 >= seq 64: plain causal attention here"]
        assert cell["parity"]["passed"] is True



