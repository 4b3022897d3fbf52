"""Generators driven from worker threads.

A :class:`Pump` runs a generator in a worker thread and hands its items to a reader over
a bounded buffer; the reader may block on it (:meth:`Pump.get`, for the watchdog) or be
told when an item arrives (:meth:`Pump.notify`, for the event loop). :meth:`Pump.stop`
ends it, and the generator is closed in the worker, whichever way it ends.

:class:`Workers` runs such jobs on a bounded number of threads: past the bound, jobs wait
their turn, and a waiting job can be cancelled at once. A thread with no job left ends.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, Literal, TypeVar, Union

__all__ = ["NOTHING", "Pump", "Ticket", "Workers"]

logger = logging.getLogger("providerhub.pump")

T = TypeVar("T")


class _Nothing(enum.Enum):
    NOTHING = "nothing"


NOTHING = _Nothing.NOTHING
"""What :meth:`Pump.get` and :meth:`Pump.poll` give when no item is in yet."""

Got = Union[T, Literal[_Nothing.NOTHING]]


class Pump(Generic[T]):
    """``source``, iterated by whoever calls :meth:`run` (a worker thread), its items
    handed over a buffer of at most ``room`` items: the worker runs that far ahead of a
    slow reader, then waits.

    The reader gets the items in order, then the source's end: ``StopIteration``, or the
    exception the source raised, raised once (then ``StopIteration``). After
    :meth:`stop` the reader gets ``StopIteration``; the worker stops at once if it waits
    for room, else after the item it is fetching (cutting a blocked read short is the
    business of the call's :class:`~providerhub._transports.abort.Abort`), and closes the source.
    """

    def __init__(self, source: Iterator[T], room: int) -> None:
        self._source = source
        self._room = room
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # an item, or the end
        self._taken = threading.Condition(self._lock)  # room for the worker
        self._end: BaseException | None = None
        self._ended = False  # the source is done; _end says how, until the reader is told
        self._stopped = False
        self._waiter: Callable[[], None] | None = None
        self.done = threading.Event()
        """Set when the worker is done with the source (closed it), or never ran."""

    def run(self) -> None:
        """Iterate the source until it ends or the pump is stopped, then close it."""
        error: BaseException | None = None
        try:
            if not self._stopped:
                for item in self._source:
                    if not self._put(item):
                        break
        except BaseException as exc:
            # The reader's to raise, as the source's own failure.
            error = exc
        finally:
            try:
                close = getattr(self._source, "close", None)
                if close is not None:
                    close()
            finally:
                self._finish(error)

    def abandon(self) -> None:
        """The worker will never run (its job was cancelled): close the source here."""
        self.stop()
        self.run()

    def _put(self, item: T) -> bool:
        with self._lock:
            while len(self._items) >= self._room and not self._stopped:
                self._taken.wait()
            if self._stopped:
                return False
            self._items.append(item)
            self._arrived.notify()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter()
        return True

    def _finish(self, error: BaseException | None) -> None:
        with self._lock:
            self._ended = True
            self._end = error
            self._arrived.notify()
            waiter, self._waiter = self._waiter, None
        self.done.set()
        if waiter is not None:
            waiter()

    def _take(self) -> Got[T]:
        # Under the lock: the next item, the end raised, or NOTHING.
        if self._items:
            item = self._items.popleft()
            self._taken.notify()
            return item
        if self._stopped:
            raise StopIteration
        if self._ended:
            error, self._end = self._end, None
            self._stopped = True  # told once; from now on the pump is over
            if error is not None:
                raise error
            raise StopIteration
        return NOTHING

    def get(self, timeout: float) -> Got[T]:
        """The next item, waiting at most ``timeout`` seconds for it (NOTHING if none
        came); raises at the end, as the class says."""
        with self._lock:
            self._arrived.wait_for(
                lambda: bool(self._items) or self._ended or self._stopped, timeout
            )
            return self._take()

    def poll(self) -> Got[T]:
        """The next item if one is in, else NOTHING; raises at the end."""
        with self._lock:
            return self._take()

    def notify(self, callback: Callable[[], None]) -> bool:
        """Have ``callback`` called (once, from the worker) when an item or the end
        arrives. False, without registering it, when one is already there to
        :meth:`poll`."""
        with self._lock:
            if self._items or self._ended or self._stopped:
                return False
            self._waiter = callback
            return True

    def stop(self) -> None:
        """Stop: the reader gets ``StopIteration``, the worker ends (see the class)."""
        with self._lock:
            self._stopped = True
            self._items.clear()
            self._taken.notify_all()
            self._arrived.notify_all()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter()


class Ticket:
    """A job handed to :class:`Workers`."""

    __slots__ = ("_job", "_workers", "state")

    def __init__(self, workers: Workers, job: Callable[[], None]) -> None:
        self._workers = workers
        self._job = job
        self.state = "waiting"
        """``waiting`` for a thread, ``running``, ``done``, or ``cancelled``."""

    def cancel(self) -> bool:
        """Take the job out of the line if it is still waiting: it will never run. False
        when it has started (or ended)."""
        return self._workers._cancel(self)


class Workers:
    """Runs jobs on at most ``limit`` threads named ``name``, in the order submitted.

    Past ``limit`` running jobs, a new one waits in line for a thread to be free; it can
    be cancelled while it waits. Each job runs in a fresh ``contextvars`` context, so it
    sees nothing a previous job of the same thread set. A thread ends when the line is
    empty: an idle program has no worker threads.
    """

    def __init__(self, limit: int, name: str) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.name = name
        self._lock = threading.Lock()
        self._line: deque[Ticket] = deque()
        self._threads = 0

    def submit(self, job: Callable[[], None]) -> Ticket:
        """Run ``job`` (which must not raise) on a worker thread, now or when one is free."""
        ticket = Ticket(self, job)
        with self._lock:
            if self._threads >= self.limit:
                self._line.append(ticket)
                return ticket
            self._threads += 1
            ticket.state = "running"
        try:
            threading.Thread(target=self._work, args=(ticket,), name=self.name, daemon=True).start()
        except BaseException:
            with self._lock:
                self._threads -= 1
                ticket.state = "cancelled"
            raise
        return ticket

    @property
    def waiting(self) -> int:
        """Jobs waiting for a thread."""
        with self._lock:
            return len(self._line)

    def _work(self, ticket: Ticket | None) -> None:
        while ticket is not None:
            try:
                contextvars.Context().run(ticket._job)
            except BaseException:
                # A job is meant to hand its outcome over itself; one that raises must not
                # take the thread, and the jobs waiting behind it, down with it.
                logger.exception("a worker job raised")
            with self._lock:
                ticket.state = "done"
                ticket._job = _nothing  # let go of what the job holds
                if self._line and self._threads <= self.limit:
                    ticket = self._line.popleft()
                    ticket.state = "running"
                else:
                    ticket = None
                    self._threads -= 1

    def _cancel(self, ticket: Ticket) -> bool:
        with self._lock:
            if ticket.state != "waiting":
                return False
            self._line.remove(ticket)
            ticket.state = "cancelled"
            ticket._job = _nothing
            return True


def _nothing() -> None:
    """A job that does nothing: what a ticket keeps once its own job is done with."""
