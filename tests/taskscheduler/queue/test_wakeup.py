"""Wake-ups over Redis: what one process announces wakes the loops of another."""

from __future__ import annotations

import threading
import uuid

from taskscheduler.queue.wakeup import Wakeup


def test_an_announcement_wakes_a_listener_and_nothing_else_does(redis_url):
    channel = f"test-wake-{uuid.uuid4().hex}"
    listener, api = Wakeup(redis_url, channel), Wakeup(redis_url, channel)
    woken, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=listener.listen, args=(woken, stop), daemon=True)
    thread.start()
    try:
        # Given a listener subscribed (announce until the subscription is in place)
        while not woken.wait(0.05):
            api.notify()
        woken.clear()
        # When nothing is announced, nothing wakes it
        assert not woken.wait(0.3)
        # When the API announces new work, it wakes
        api.notify()
        assert woken.wait(5)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_without_redis_announcing_is_a_no_op_and_listening_returns():
    quiet = Wakeup(None)
    quiet.notify()
    woken, stop = threading.Event(), threading.Event()
    quiet.listen(woken, stop)  # returns at once: the loops look on their own
    assert not woken.is_set()
