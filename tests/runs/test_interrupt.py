"""Ctrl-C deferred to a step boundary: the request, nesting, a second Ctrl-C, and the handler put back."""
import os
import signal
import threading

import pytest

from tfnas.runs.interrupt import deferred_interrupts


@pytest.fixture
def default_handler():
    """Python's SIGINT handler (a test run in the background inherits an ignored SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_is_a_request_until_the_outermost_block_ends(default_handler):
    with deferred_interrupts() as outer:
        assert not outer.pending()
        with deferred_interrupts() as inner:
            os.kill(os.getpid(), signal.SIGINT)            # handled at once: a request, no exception
            assert inner.pending() and outer.pending()
            with pytest.raises(KeyboardInterrupt):       # a second Ctrl-C stops at once
                os.kill(os.getpid(), signal.SIGINT)
        assert outer.pending()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with deferred_interrupts() as again:
        assert not again.pending()


def test_an_ignored_sigint_stays_ignored_and_threads_are_left_alone(default_handler):
    signal.signal(signal.SIGINT, signal.SIG_IGN)                  # nohup
    with deferred_interrupts() as state:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        assert not state.pending()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    signal.signal(signal.SIGINT, signal.default_int_handler)
    seen = []

    def worker():
        with deferred_interrupts():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def test_stop_if_pending_checkpoints_says_where_and_raises_only_after_ctrl_c(default_handler):
    lines, saved = [], []
    with deferred_interrupts() as state:
        state.stop_if_pending("at step 3", lines.append, lambda: saved.append(1) or "ckpt/step-3")
        assert lines == [] and saved == []                     # no Ctrl-C: nothing happens
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt, match="^interrupted at step 4$"):
            state.stop_if_pending("at step 4", lines.append, lambda: saved.append(1) or "ckpt/step-4")
        with pytest.raises(KeyboardInterrupt, match="^interrupted before round 2$"):
            state.stop_if_pending("before round 2", lines.append)
    assert saved == [1]
    assert lines == ["interrupted at step 4: checkpoint ckpt/step-4 written", "interrupted before round 2"]
