import pytest

from flashtui.core.spec import CellKey, SpecError, SweepSpec, parse_backends, parse_dtypes, parse_seqs


@pytest.mark.parametrize("bad, needle", [
    ("0", "positive integer, got 0"),
    ("-1", "positive integer, got -1"),
    ("abc", "positive integer, got 'abc'"),
    (str(10**9), "larger than the supported maximum"),
    ("512,,x", "got 'x'"),
    ("", "at least one"),
    ("1.5", "got '1.5'"),
])
def test_bad_seqs_are_one_line_errors(bad, needle):
    with pytest.raises(SpecError) as err:
        parse_seqs(bad)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_seqs_parse_and_dedupe():
    assert parse_seqs("512, 1024,512") == (512, 1024)
    assert parse_seqs([256, "128"]) == (256, 128)


def test_dtypes_aliases_and_unknown():
    assert parse_dtypes("float16,bf16,fp16") == ("fp16", "bf16")
    with pytest.raises(SpecError, match="unknown dtype 'fp8'"):
        parse_dtypes("fp8")


def test_backends_unknown_and_all():
    assert parse_backends("all") is None
    assert parse_backends(None) is None
    assert parse_backends("fa4,standard") == ("fa4", "standard")
    with pytest.raises(SpecError, match="unknown backend 'flash'"):
        parse_backends("flash")


@pytest.mark.parametrize("kwargs, needle", [
    (dict(batch=0), "batch must be a positive integer"),
    (dict(heads=12, kv_heads=5), "multiple of kv_heads"),
    (dict(head_dim=4096), "head_dim 4096 is larger"),
    (dict(mode="prefill"), "needs a model"),
    (dict(mode="train"), "unknown mode"),
    (dict(device="tpu"), "unknown device"),
    (dict(warmup_ms="soon"), "warmup_ms must be a number"),
    (dict(reps=True), "reps must be a positive integer"),
])
def test_spec_validation(kwargs, needle):
    with pytest.raises(SpecError, match=needle):
        SweepSpec(**kwargs)


def test_plan_groups_inputs_and_puts_standard_first():
    spec = SweepSpec(seqs=(256, 128), dtypes=("fp16", "bf16"), backends=("sdpa-flash", "standard"))
    cells = spec.cells()
    assert cells[:2] == [CellKey("standard", 256, "fp16"), CellKey("sdpa-flash", 256, "fp16")]
    assert len(cells) == 8
    assert cells[-1] == CellKey("sdpa-flash", 128, "bf16")


def test_default_backends_resolve_against_available():
    spec = SweepSpec(seqs=(128,))
    assert [c.backend for c in spec.cells(["sdpa-math", "standard"])] == ["standard", "sdpa-math"]


def test_round_trip_and_unknown_field():
    spec = SweepSpec(seqs="128,256", dtypes="fp32", kv_heads=4, heads=8, backends="standard")
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="unknown spec field"):
        SweepSpec.from_dict({**spec.to_dict(), "sequence": 3})
