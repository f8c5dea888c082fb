import json
import math

import pytest

from flashtui.core.protocol import PROTOCOL_VERSION, ProtocolError, decode, encode


def test_round_trip_every_field():
    line = encode("CellFinished", index=3, cell={"backend": "fa4", "seq": 512, "median_ms": 1.5})
    assert line.endswith("\n") and line.count("\n") == 1
    msg = decode(line)
    assert msg.type == "CellFinished"
    assert msg["index"] == 3 and msg["cell"]["backend"] == "fa4"


def test_nan_and_inf_become_null():
    msg = decode(encode("Log", level="info", text="x", value=math.nan, more=[math.inf, 1.0]))
    assert msg["value"] is None and msg["more"] == [None, 1.0]


@pytest.mark.parametrize("line, needle", [
    ("not json", "not JSON"),
    ("[1,2]", "JSON object"),
    (json.dumps({"v": PROTOCOL_VERSION + 1, "type": "Log"}), "protocol version"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "Explode"}), "unknown message type"),
    (json.dumps({"v": PROTOCOL_VERSION, "type": "Log", "level": "info"}), "missing field(s): text"),
    ("   ", "empty line"),
])
def test_bad_lines(line, needle):
    with pytest.raises(ProtocolError) as err:
        decode(line)
    assert needle in str(err.value)


def test_encode_refuses_unknown_and_incomplete():
    with pytest.raises(ProtocolError):
        encode("Nope")
    with pytest.raises(ProtocolError, match="missing"):
        encode("RunSweep", spec={})
