"""group_send_many on a layer without a batch method: every group's events in order, groups at once."""

import asyncio
from unittest import mock

from social.realtime.publish import group_send_many


class SlowLayer:
    """Each send takes longer the earlier it started: concurrent sends to one group would arrive reversed."""

    def __init__(self, fail_group: str | None = None) -> None:
        self.arrived: list[tuple[str, int]] = []
        self.fail_group = fail_group

    async def group_send(self, group: str, event: dict) -> None:
        await asyncio.sleep(0.01 * (10 - event["n"] % 10))
        if group == self.fail_group:
            raise ConnectionError("down")
        self.arrived.append((group, event["n"]))


async def test_one_groups_events_arrive_in_the_order_given():
    layer = SlowLayer()
    events = [(f"room_{n % 2}", {"n": n}) for n in range(10)]
    with mock.patch("social.realtime.publish.get_channel_layer", return_value=layer):
        sent = await group_send_many(events)
    assert sent == [True] * 10
    assert [n for group, n in layer.arrived if group == "room_0"] == [0, 2, 4, 6, 8]
    assert [n for group, n in layer.arrived if group == "room_1"] == [1, 3, 5, 7, 9]


async def test_each_event_reports_whether_it_went_out():
    layer = SlowLayer(fail_group="room_1")
    events = [(f"room_{n % 2}", {"n": n}) for n in range(4)]
    with mock.patch("social.realtime.publish.get_channel_layer", return_value=layer):
        sent = await group_send_many(events)
    assert sent == [True, False, True, False]
