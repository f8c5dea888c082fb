"""core/units.py: the one rule per kind of measured value (see its docstring)."""

from __future__ import annotations

import pytest

from flashtui.core import units

MISSING = (None, float("nan"), float("inf"), float("-inf"))


@pytest.mark.parametrize("value, text", [
    (1.0, "1.00"), (0.0123, "0.0123"), (3.14159, "3.14"), (99.96, "100"), (9.996, "10.0"),
    (1234.5, "1234"), (0.0, "0"), (-2.5, "-2.50"), (1.23e-5, "0.0000123"),
])
def test_sig_keeps_three_significant_digits_without_exponent(value, text):
    assert units.sig(value) == text


@pytest.mark.parametrize("value_ms, text", [
    (0.0123, "12.3 us"), (0.0767, "76.7 us"), (0.09996, "0.100 ms"), (0.1, "0.100 ms"),
    (0.214, "0.214 ms"), (1.0, "1.00 ms"), (1.234, "1.23 ms"), (12.5, "12.5 ms"),
    (999.6, "1.00 s"), (1234.0, "1.23 s"), (12_345.0, "12.3 s"), (5e-4, "0.500 us"),
])
def test_time_unit_is_chosen_by_magnitude_after_rounding(value_ms, text):
    assert units.fmt_ms(value_ms) == text


def test_time_with_spread_shares_the_unit_or_keeps_each():
    assert units.fmt_ms_iqr(1.234, 0.05) == "1.23 ms ± 50.0 us"
    assert units.fmt_ms_iqr(12.5, 0.25) == "12.5 ± 0.250 ms"
    assert units.fmt_ms_iqr(0.0767, 0.0077) == "76.7 ± 7.70 us"
    assert units.fmt_ms_iqr(0.214, 0.0042) == "0.214 ms ± 4.20 us"
    assert units.fmt_ms_iqr(0.214, 1234.0) == "0.214 ms ± 1.23 s"
    assert units.fmt_ms_iqr(2.0, None) == "2.00 ms ± NA"
    assert units.fmt_ms_iqr(None, 1.0) == "NA"


@pytest.mark.parametrize("seconds, text", [
    (0.512, "0.512 s"), (4.2, "4.20 s"), (42, "42.0 s"), (59.99, "1m00s"), (125, "2m05s"),
    (3725, "1h02m"), (-1, "NA"),
])
def test_durations(seconds, text):
    assert units.fmt_seconds(seconds) == text


@pytest.mark.parametrize("seconds, text", [
    (0.4, "0 s"), (4.6, "5 s"), (59.4, "59 s"), (59.6, "1m00s"), (125, "2m05s"), (3725, "1h02m"),
    (-1, "NA"),
])
def test_clocks_tick_in_whole_seconds(seconds, text):
    assert units.fmt_clock(seconds) == text


@pytest.mark.parametrize("n_bytes, text", [
    (0, "0 B"), (512, "512 B"), (1536, "1.50 KiB"), (3 * 1024**2, "3.00 MiB"),
    (512 * 1024**2, "512 MiB"), (16 * 1024**3, "16.0 GiB"), (80 << 30, "80.0 GiB"),
    (1024**2 - 1, "1.00 MiB"),  # rounds up into the next unit, not '1024 KiB'
])
def test_bytes_in_binary_units(n_bytes, text):
    assert units.fmt_bytes(n_bytes) == text


def test_ratios_throughput_percent_errors():
    assert units.fmt_ratio(3.14159) == "3.14x"
    assert units.fmt_ratio(0.5) == "0.500x"
    assert units.fmt_ratio(16) == "16.0x"
    assert units.fmt_ratio(150.2) == "150x"
    assert units.fmt_tflops(512.3) == "512 TFLOP/s"
    assert units.fmt_tflops(20.54) == "20.5 TFLOP/s"
    assert units.fmt_tflops(0.0123) == "12.3 GFLOP/s"
    assert units.fmt_tflops(2e-5) == "20.0 MFLOP/s"
    assert units.fmt_gbps(3352.0) == "3352 GB/s"
    assert units.fmt_gbps(1.5) == "1.50 GB/s"
    assert units.fmt_pct(97.3) == "97%"
    assert units.fmt_pct(3.21) == "3.2%"
    assert units.fmt_pct(9.96) == "10%"
    assert units.fmt_sci(1.8145e-7) == "1.8e-07"
    assert units.fmt_pass(True) == "pass" and units.fmt_pass(False) == "FAIL"
    assert units.fmt_pass(None) == "NA"


def test_nvml_readings_are_whole_numbers():
    assert units.fmt_mhz(1979.6) == "1980 MHz"
    assert units.fmt_watts(689.7) == "690 W"
    assert units.fmt_celsius(65) == "65 C"


@pytest.mark.parametrize("name", [
    "fmt_ms", "fmt_seconds", "fmt_clock", "fmt_bytes", "fmt_ratio", "fmt_tflops", "fmt_gbps", "fmt_pct",
    "fmt_sci", "fmt_mhz", "fmt_watts", "fmt_celsius", "sig", "whole",
])
def test_missing_is_na_never_zero(name):
    formatter = getattr(units, name)
    assert {formatter(value) for value in MISSING} == {units.NA}


def test_every_formatter_but_the_spread_is_ascii():
    samples = [units.fmt_ms(v) for v in (0.0123, 1.5, 1234)] + [
        units.fmt_bytes(1536), units.fmt_ratio(3.14), units.fmt_tflops(0.01), units.fmt_gbps(900),
        units.fmt_pct(50), units.fmt_sci(1e-3), units.fmt_seconds(3725), units.fmt_clock(42), units.fmt_mhz(1980),
        units.fmt_watts(700), units.fmt_celsius(60), units.fmt_pass(True)]
    assert all(text.isascii() for text in samples), samples
