"""The per-socket batcher, without a database: batches, order, refusals, backpressure."""

import asyncio

from social.realtime.batching import Batcher


class Recorder:
    def __init__(self, *, refuse=None, delay=0.01, fail_answer=None):
        self.batches, self.answers = [], []
        self.refuse, self.delay, self.fail_answer = refuse, delay, fail_answer

    async def handle(self, batch):
        self.batches.append(list(batch))
        await asyncio.sleep(self.delay)
        outcomes = []
        for item in batch:
            # As the message service does: a refusal is the batch's last outcome.
            outcomes.append("refused" if item == self.refuse else f"ok {item}")
            if item == self.refuse:
                break
        return outcomes

    async def answer(self, item, outcome):
        if item == self.fail_answer:
            raise ConnectionError("socket closed")
        self.answers.append((item, outcome))


def batcher(recorder, limit=100):
    return Batcher(
        handle=recorder.handle, answer=recorder.answer, stop=lambda outcome: outcome == "refused", limit=limit
    )


async def test_items_that_queue_up_meanwhile_go_in_one_batch_and_are_answered_in_order():
    recorder = Recorder()
    queue = batcher(recorder)
    for n in range(10):
        await queue.put(n)
        await asyncio.sleep(0)  # the socket reads its next frame
    await queue.settle()
    assert recorder.answers == [(n, f"ok {n}") for n in range(10)]
    # The first item starts a batch alone; the rest arrived while it was handled.
    assert recorder.batches == [[0], list(range(1, 10))]


async def test_a_refusal_ends_the_queue():
    recorder = Recorder(refuse=2, delay=0.05)
    queue = batcher(recorder)
    await queue.put(0)
    await asyncio.sleep(0)
    for n in range(1, 4):
        await queue.put(n)
    await asyncio.sleep(0.07)
    # 4 and 5 come after the refusal (in its batch or queued behind it): never answered.
    await queue.put(4)
    await queue.put(5)
    await queue.settle()
    assert recorder.answers == [(0, "ok 0"), (1, "ok 1"), (2, "refused")]
    assert recorder.batches[0] == [0]
    assert [4, 5] not in recorder.batches


async def test_at_the_limit_put_waits_until_the_queue_is_handled():
    recorder = Recorder(delay=0.05)
    queue = batcher(recorder, limit=3)
    await queue.put(0)
    await queue.put(1)
    assert not recorder.answers
    await queue.put(2)  # three pending: waits
    assert [item for item, _ in recorder.answers] == [0, 1, 2]


async def test_an_answer_that_fails_does_not_stop_the_others():
    recorder = Recorder(fail_answer=1)
    queue = batcher(recorder)
    for n in range(3):
        await queue.put(n)
    await queue.settle()
    assert [item for item, _ in recorder.answers] == [0, 2]
