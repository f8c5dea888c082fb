"""Reading a lazily loaded library's files ahead of first use: real files, a real package
layout found by importlib (no torch), a real background thread."""

from __future__ import annotations

import sys
import time

from flashtui.client import page_cache


def _vendor(tmp_path, monkeypatch):
    """A wheel-shaped namespace package, vendorx/dnn/lib/*.so*, importable from tmp_path."""
    lib = tmp_path / "site" / "vendorx" / "dnn" / "lib"
    lib.mkdir(parents=True)
    (lib / "libdnn_engines.so.9").write_bytes(b"\x7fELF" + b"e" * (3 << 20))
    (lib / "libdnn.so.9").write_bytes(b"\x7fELF" + b"d" * 1000)
    (lib / "README.txt").write_text("not a library")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m.startswith("vendorx")]:
        monkeypatch.delitem(sys.modules, name)
    return lib


def _wait(ahead, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not ahead.done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ahead.done


def test_it_finds_the_libraries_largest_first_and_reads_every_byte(tmp_path, monkeypatch):
    lib = _vendor(tmp_path, monkeypatch)
    files = page_cache.library_files(("vendorx.dnn",))
    assert [p.name for p in files] == ["libdnn_engines.so.9", "libdnn.so.9"]
    ahead = page_cache.read_ahead(("vendorx.dnn",))
    _wait(ahead)
    summary = ahead.summary()
    assert summary["files"] == 2 and summary["errors"] == []
    assert summary["bytes"] == sum(p.stat().st_size for p in lib.iterdir() if ".so" in p.name)
    assert summary["seconds"] is not None and summary["seconds"] >= 0


def test_a_missing_package_reads_nothing_and_a_vanished_file_is_one_error(tmp_path, monkeypatch):
    assert page_cache.read_ahead(("vendorx_not_installed.dnn",)) is None
    assert page_cache.library_files(("json.decoder",)) == []  # a module, not a package: no lib dir
    lib = _vendor(tmp_path, monkeypatch)
    files = page_cache.library_files(("vendorx.dnn",))
    (lib / "libdnn.so.9").unlink()
    ahead = page_cache.ReadAhead(files).start()
    _wait(ahead)
    assert ahead.bytes_read == (lib / "libdnn_engines.so.9").stat().st_size
    assert len(ahead.errors) == 1 and ahead.errors[0].startswith("libdnn.so.9:")
