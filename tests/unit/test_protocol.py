import dataclasses
import json
import math

import pytest

from flashtui.core import protocol as proto
from flashtui.core.protocol import PROTOCOL_VERSION, ProtocolError, decode, encode
from flashtui.core.spec import CellKey


def test_round_trip_every_field():
    line = encode(proto.CellFinished(index=3, cell={"backend": "fa4", "seq": 512, "dtype": "bf16",
                                                    "median_ms": 1.5}))
    assert line.endswith("\n") and line.count("\n") == 1
    msg = decode(line)
    assert isinstance(msg, proto.CellFinished) and msg.type == "CellFinished"
    assert msg.index == 3 and msg.cell["backend"] == "fa4"
    assert msg.key == CellKey("fa4", 512, "bf16") and msg.to_cell().median_ms == 1.5


def test_nan_and_inf_become_null():
    msg = decode(encode(proto.CellFinished(index=0, cell={
        "backend": "standard", "seq": 64, "dtype": "fp32", "median_ms": math.nan, "more": [math.inf, 1.0]})))
    assert msg.cell["median_ms"] is None and msg.cell["more"] == [None, 1.0]


@pytest.mark.parametrize("line, needle", [
    ("not json", "not JSON"),
    ("[1,2]", "JSON object"),
    (json.dumps({"v": PROTOCOL_VERSION + 1, "type": "Log"}), "protocol version"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "Explode"}), "unknown message type"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "Log", "level": "info"}), "missing field(s): text"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "Log", "level": 3, "text": "x"}), "Log.level must be str"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "SweepStarted", "n_cells": True}), "must be int"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "RunSweep", "spec": {}, "cells": [["fa2", 64]]}),
     "RunSweep.cells: a cell key is [backend, seq, dtype]"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "CellFinished", "index": 0, "cell": {"seq": 64}}),
     "CellFinished.cell has no valid key"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "WorkerDied", "reason": "x"}), "client event"),
    ("   ", "empty line"),
])
def test_bad_lines(line, needle):
    with pytest.raises(ProtocolError) as err:
        decode(line)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_encode_refuses_what_is_not_a_message_and_construction_checks_fields():
    with pytest.raises(ProtocolError):
        encode({"type": "Log"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cells"):
        proto.RunSweep(spec={})  # type: ignore[call-arg]
    with pytest.raises(ProtocolError, match="RunSweep.cells must be"):
        proto.RunSweep(spec={}, cells=[["standard", 64, "fp32"]])  # type: ignore[arg-type]


def test_every_brief_message_is_registered_once_with_its_kind():
    assert set(proto.message_types(proto.REQUEST)) == {
        "RunSweep", "Cancel", "Probe", "Capacity", "WarmUp", "Shutdown", "Inject"}
    assert set(proto.message_types(proto.EVENT)) == {
        "WorkerReady", "SweepStarted", "CellStarted", "CellFinished", "SweepFinished",
        "ProbeCellFinished", "ProbeFinished", "WarmedUp", "CapacityFinished", "Progress", "Log", "RequestFailed"}
    assert set(proto.message_types(proto.CLIENT)) == {"WorkerDied", "WorkerRestarted", "WorkerStartFailed"}
    for name, cls in proto.REGISTRY.items():
        assert cls.__name__ == name and dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_the_wire_format_of_version_1_is_unchanged():
    """The exact JSON the old (dict-based) protocol wrote: same keys, same shapes."""
    run = json.loads(encode(proto.RunSweep(spec={"seqs": [64]}, cells=(CellKey("standard", 64, "fp32"),))))
    # ``distributed`` was added within v1 (fields are only ever added): null unless under torchrun,
    # and a request without it (an older client's) decodes to None.
    assert run == {"v": 1, "type": "RunSweep", "spec": {"seqs": [64]}, "cells": [["standard", 64, "fp32"]],
                   "distributed": None}
    old_run = '{"v":1,"type":"RunSweep","spec":{"seqs":[64]},"cells":[["standard",64,"fp32"]]}'
    assert decode(old_run) == proto.RunSweep(spec={"seqs": [64]}, cells=(CellKey("standard", 64, "fp32"),))
    started = json.loads(encode(proto.CellStarted(index=1, backend="fa2", seq=128, dtype="bf16")))
    assert started == {"v": 1, "type": "CellStarted", "index": 1, "backend": "fa2", "seq": 128, "dtype": "bf16"}
    assert json.loads(encode(proto.Cancel())) == {"v": 1, "type": "Cancel"}
    assert json.loads(encode(proto.SweepFinished(cancelled=False))) == {"v": 1, "type": "SweepFinished",
                                                                        "cancelled": False}
    # A line as a worker of the dict-based protocol wrote it decodes into the typed event.
    old_line = ('{"v":1,"type":"WorkerReady","pid":7,"ready_s":2.5,"ready_breakdown_s":{"import_torch":2.0},'
                '"provenance":{"device_kind":"cpu"},"backends":{"standard":{"available":true,"reason":null}},'
                '"cpu_backends":{"standard":{"available":true,"reason":null}}}')
    ready = decode(old_line)
    assert isinstance(ready, proto.WorkerReady) and ready.pid == 7 and ready.available("cpu") == ["standard"]
    assert json.loads(encode(ready)) == json.loads(old_line)


def test_fields_from_a_newer_worker_are_tolerated():
    line = json.dumps({"v": 1, "type": "Log", "level": "info", "text": "x", "added_in_v1_9": {"a": 1}})
    assert decode(line) == proto.Log(level="info", text="x")


def test_requests_and_events_are_only_accepted_where_they_belong():
    log_line = encode(proto.Log(level="info", text="x"))
    with pytest.raises(ProtocolError, match="Log is an event; expected a request"):
        decode(log_line, kinds=(proto.REQUEST,))
    with pytest.raises(ProtocolError, match="Cancel is a request; expected an event"):
        decode(encode(proto.Cancel()), kinds=(proto.EVENT,))
    # Client events can be written (recordings of a sweep) but are read back only on request.
    died = encode(proto.WorkerDied(reason="killed by SIGKILL", returncode=-9))
    with pytest.raises(ProtocolError, match="client event"):
        decode(died)
    assert decode(died, kinds=(proto.EVENT, proto.CLIENT)) == proto.WorkerDied(reason="killed by SIGKILL",
                                                                              returncode=-9)


def test_probe_defaults_and_ready_backends_for_another_device():
    assert decode(json.dumps({"v": 1, "type": "Probe"})) == proto.Probe(fastest=True, full=None)
    ready = proto.WorkerReady(pid=1, ready_s=1.0, provenance={"device_kind": "cuda"},
                              backends={"fa2": {"available": True}, "standard": {"available": True}},
                              cpu_backends={"fa2": {"available": False}, "standard": {"available": True}})
    assert ready.available("cuda") == ["fa2", "standard"] and ready.available("cpu") == ["standard"]


def test_cell_key_string_and_list_forms_round_trip():
    key = CellKey("sdpa-flash", 1024, "bf16")
    assert CellKey.from_row_key(key.row_key()) == key and key.row_key() == "sdpa-flash|1024|bf16"
    assert CellKey.from_list(key.to_list()) == key
    assert key.label() == "sdpa-flash seq=1024 bf16"
