"""The PDU meter (gateway/meter.py) on byte streams that pynetdicom itself encodes: C-STORE
requests fragmented into P-DATA-TF PDUs as a sender writes them (PS3.8 9.3.5, E.2)."""

from __future__ import annotations

import random
import struct
from io import BytesIO

import pytest

from sr2fhir.gateway.meter import PduMeter, StreamRefused


def c_store_stream(data_set: bytes, max_pdu: int = 16382, message_id: int = 1) -> bytes:
    """The P-DATA-TF PDUs of one C-STORE-RQ carrying `data_set`, encoded by pynetdicom."""
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.pdu import P_DATA_TF

    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    primitive.AffectedSOPInstanceUID = f"1.2.3.{message_id}"
    primitive.Priority = 2
    primitive.DataSet = BytesIO(data_set)
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    out = bytearray()
    for p_data in message.encode_msg(1, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        out += pdu.encode()
    return bytes(out)


def feed_in_pieces(meter: PduMeter, stream: bytes, rng: random.Random) -> int:
    """Feed `stream` in random pieces; the number of bytes fed before a refusal (all of them if none)."""
    fed = 0
    while fed < len(stream):
        piece = stream[fed : fed + rng.choice((1, 2, 5, 6, 7, 100, 4096, 70000))]
        try:
            meter.feed(piece)
        except StreamRefused:
            return fed + len(piece)
        fed += len(piece)
    return fed


ASSOCIATE_RQ = bytes([0x01, 0x00]) + struct.pack(">L", 300) + b"\x00" * 300  # only its length is read


def test_messages_within_the_limit_pass_however_the_bytes_arrive() -> None:
    """Each message is counted alone: three objects of 90 kB pass a 100 kB limit, in any pieces."""
    stream = ASSOCIATE_RQ + b"".join(c_store_stream(b"\x01" * 90_000, message_id=i) for i in (1, 2, 3))
    for seed in range(20):
        meter = PduMeter(max_pdu=1 << 20, max_message=100_000)
        assert feed_in_pieces(meter, stream, random.Random(seed)) == len(stream)
        assert meter.message == 0  # ended on the last fragment of the last data set


def test_an_object_past_the_limit_is_refused_before_its_excess_arrives() -> None:
    """A 300 kB data set against a 100 kB limit: refused at the PDV header that declares the
    fragment crossing it, so at most one PDU past the limit has been read."""
    stream = c_store_stream(b"\x02" * 300_000)
    for seed in range(20):
        meter = PduMeter(max_pdu=1 << 20, max_message=100_000)
        read = feed_in_pieces(meter, stream, random.Random(seed))
        assert read < 100_000 + 16382 + 70000, read
        assert meter.message > 100_000


def test_the_limit_is_exact() -> None:
    """A data set of exactly the limit passes; one byte more is refused (the command is its own message)."""
    assert feed_in_pieces(PduMeter(1 << 20, 50_000), c_store_stream(b"\x03" * 50_000), random.Random(1)) > 50_000
    meter = PduMeter(1 << 20, 50_000)
    with pytest.raises(StreamRefused, match="DIMSE message"):
        meter.feed(c_store_stream(b"\x03" * 50_001))


def test_a_pdu_that_declares_too_much_is_refused_at_its_header() -> None:
    """pynetdicom reads a whole PDU into memory: a header claiming 4 GiB is refused after 6 bytes."""
    meter = PduMeter(max_pdu=1 << 20, max_message=1 << 30)
    meter.feed(ASSOCIATE_RQ)
    with pytest.raises(StreamRefused, match="a PDU of 4294967295 bytes"):
        meter.feed(bytes([0x04, 0x00]) + b"\xff\xff\xff\xff")
    with pytest.raises(StreamRefused, match="PDU of"):  # any PDU type
        PduMeter(1 << 20, 1 << 30).feed(bytes([0x01, 0x00]) + struct.pack(">L", (1 << 20) + 1))


def test_a_pdv_item_longer_than_its_pdu_is_refused() -> None:
    pdv = struct.pack(">LBB", 1000, 1, 0x02)  # declares 998 data bytes in a 10-byte PDU
    with pytest.raises(StreamRefused, match="malformed"):
        PduMeter(1 << 20, 1 << 30).feed(bytes([0x04, 0x00]) + struct.pack(">L", 10) + pdv + b"\x00" * 4)


def test_fragments_of_one_message_add_up_across_pdus() -> None:
    """Many small PDUs (max PDU 1,000) carrying one 20 kB data set still count as one message."""
    stream = c_store_stream(b"\x04" * 20_000, max_pdu=1000)
    with pytest.raises(StreamRefused):
        PduMeter(1 << 20, 19_999).feed(stream)
    PduMeter(1 << 20, 20_000).feed(stream)
