"""Frames built once for a whole group, read back by a real WebSocket implementation."""

import threading

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


class FakeTransport:
    """The parts of Twisted's TCP connection a DirectWriter touches; the socket takes ``room`` bytes."""

    def __init__(self, room: int = 1 << 20) -> None:
        self.room = room
        self.sent: list[bytes] = []
        self.buffered = b""
        self.connected = True
        self.disconnecting = False
        self.dataBuffer = b""
        self._tempDataLen = 0

    def writeSomeData(self, data: bytes) -> int:  # noqa: N802 (Twisted's name)
        taken = bytes(data[: self.room])
        self.sent.append(taken)
        return len(taken)

    def write(self, data: bytes) -> None:
        self.buffered += data
        self._tempDataLen = len(self.buffered)


class FakeProtocol:
    STATE_OPEN = 1
    state = 1
    send_queue = ()
    maxMessagePayloadSize = 0  # noqa: N815 (autobahn's name)


def writer(transport: FakeTransport) -> wire.DirectWriter:
    return wire.DirectWriter(FakeProtocol(), transport)


def texts(data: bytes) -> list[str]:
    found = []
    while data:
        frame, data = parse(data)
        found.append(frame.data.decode())
    return found


def test_coalesced_writes_are_held_until_the_block_ends():
    transports = [FakeTransport(), FakeTransport()]
    writers = [writer(transport) for transport in transports]
    with wire.coalesced():
        for n in range(3):
            for index, direct in enumerate(writers):
                assert direct.write(wire.text_frame(f"{index}:{n}"))
        with wire.coalesced():  # nested: still held for the outer block
            assert writers[0].write(wire.text_frame("0:3"))
        assert all(transport.sent == [] for transport in transports)
    assert [len(transport.sent) for transport in transports] == [1, 1]
    assert texts(transports[0].sent[0]) == ["0:0", "0:1", "0:2", "0:3"]
    assert texts(transports[1].sent[0]) == ["1:0", "1:1", "1:2"]
    assert writers[0].write(wire.text_frame("0:4"))  # outside the block: at once
    assert texts(transports[0].sent[1]) == ["0:4"]


def test_what_the_socket_does_not_take_is_buffered_behind_and_keeps_the_order():
    transport = FakeTransport(room=10)
    direct = writer(transport)
    with wire.coalesced():
        for n in range(3):
            direct.write(wire.text_frame(f"frame {n}"))
    direct.write(wire.text_frame("frame 3"))
    assert len(transport.sent) == 1
    assert texts(transport.sent[0] + transport.buffered) == [f"frame {n}" for n in range(4)]


def test_a_socket_that_failed_a_write_refuses_the_next_frame():
    transport = FakeTransport()
    transport.writeSomeData = lambda data: ConnectionResetError()
    direct = writer(transport)
    assert direct.write(wire.text_frame("lost with the connection"))
    assert not direct.write(wire.text_frame("next"))


def test_coalescing_in_another_thread_does_not_hold_this_threads_writes():
    transport = FakeTransport()
    direct = writer(transport)
    inside, release = threading.Event(), threading.Event()

    def other_thread():
        with wire.coalesced():
            inside.set()
            release.wait(2)

    thread = threading.Thread(target=other_thread)
    thread.start()
    inside.wait(2)
    direct.write(wire.text_frame("now"))
    release.set()
    thread.join(2)
    assert [texts(sent) for sent in transport.sent] == [["now"]]
    assert direct.held is None
