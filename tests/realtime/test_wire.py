"""Frames built once for a whole group, read back by a real WebSocket implementation."""

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from social.realtime import wire


def parse(data: bytes) -> tuple[Frame, bytes]:
    """One server frame as the ``websockets`` client reads it, and what follows it."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value, reader.buffer
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_text_frame_round_trips_through_every_length_form(size):
    text = ("é" * size)[: size // 2] + "a" * (size - size // 2)
    frame, rest = parse(wire.text_frame(text))
    assert frame.opcode == Opcode.TEXT
    assert frame.fin
    assert frame.data.decode() == text
    assert rest == b""


def test_back_to_back_frames_for_different_texts_stay_separate():
    first, second = '{"type": "message", "n": 1}', '{"type": "message", "n": 2}'
    stream = wire.text_frame(first) + wire.text_frame(second) + wire.text_frame(first)
    texts = []
    while stream:
        frame, stream = parse(stream)
        texts.append(frame.data.decode())
    assert texts == [first, second, first]


def test_an_equal_text_built_separately_gets_the_same_bytes():
    text = "x" * 300
    copy = "".join(["x"] * 300)
    assert copy is not text
    assert wire.text_frame(text) == wire.text_frame(copy)


async def test_sends_that_are_not_a_daphne_connection_get_no_writer():
    async def send(message):
        return None

    assert wire.direct_writer(send) is None
