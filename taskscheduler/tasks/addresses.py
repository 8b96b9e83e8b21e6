"""The addresses a node calls on a task's behalf, and the one rule for each.

A create body may name two URLs the node will call later: ``create_info.http_url`` (the
worker the task is pinned to) and ``create_info.callback_url`` (where the finished task is
POSTed). Both calls come from inside the network the node runs in, and the first carries
the task's notify token and the worker secret's signature: a node that called any URL it
was given would let anyone who may create a task make it reach, again and again, hosts the
caller could not reach itself (server-side request forgery). So the node calls only
addresses it was told to trust:

* **a worker's URL**: the URL some worker registered with a request signed by the worker
  secret, and has not withdrawn (a worker that stopped on purpose is gone). Anything else as
  ``http_url`` is refused.
* **a callback host**: one matching a pattern of ``TASK_CALLBACK_ALLOW`` (``*.example.com``,
  ``10.0.0.*``: shell-style, on the host alone, matched case-insensitively). With no
  pattern, callbacks are refused.

Each rule is checked twice: when a task is created (:meth:`Addresses.check`, from
``TaskCreator.check``, so single creates, batches, topology nodes, fan-outs and trigger
templates all meet it; a 400 naming the field, nothing stored), and again right before the
call, since workers go and settings change in between: the Scheduler loop treats a pinned
URL that no longer belongs to a registered worker as no worker at all
(:func:`registered_workers`), and the Callback loop abandons a callback whose host is no
longer allowed (:func:`callback_refusal`). Hosts are read with urllib3's own URL parser, the
one that sends the request, so the host checked is the host called.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, Engine, select
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from taskscheduler.control.checks import TOPOLOGY_TYPE
from taskscheduler.db.engine import reading
from taskscheduler.db.tables import WORKERS
from taskworker.contract.api import CreateInfo, TopologyNode
from taskworker.errors import InvalidInput

#: A worker in this status deregistered on purpose: its URL is no longer trusted.
GONE = "stopped"
#: How long the registered workers' URLs are reused by create checks; a URL not among them
#: is always looked up afresh, so a worker that just registered is accepted at once.
URLS_TTL_SECONDS = 2.0


class Addresses:
    """The create-time checks of ``http_url`` and ``callback_url`` (see the module docstring)."""

    def __init__(self, engine: Engine, callback_hosts: Sequence[str]) -> None:
        self._engine = engine
        self._callback_hosts = tuple(callback_hosts)
        #: (monotonic time read, the registered workers' URLs)
        self._urls: tuple[float, frozenset[str]] = (float("-inf"), frozenset())

    def check(self, info: CreateInfo) -> None:
        """Raise :class:`InvalidInput` naming ``create_info.http_url`` or
        ``create_info.callback_url`` when either is not an address the node trusts."""
        if info.callback_url is not None:
            why = callback_refusal(info.callback_url, self._callback_hosts)
            if why is not None:
                raise InvalidInput("create_info.callback_url", why)
        if info.http_url is not None and not self._registered(info.http_url):
            raise InvalidInput(
                "create_info.http_url",
                f"{info.http_url!r} is not the URL of a registered worker "
                "(GET /v1/workers lists them); leave it out to let the scheduler choose",
            )

    def check_topology(self, info: CreateInfo, nodes: Sequence[TopologyNode]) -> None:
        """:meth:`check` for a topology's own ``create_info`` and its nested topologies'
        (the other nodes are single creates, checked as such), naming the node."""
        self.check(info)
        for index, node in enumerate(nodes):
            if node.task_type != TOPOLOGY_TYPE:
                continue
            where = f"nodes[{index}]"
            try:
                self.check_topology(node.create_info or CreateInfo(), node.nodes or [])
            except InvalidInput as exc:
                raise exc.within(where) from None

    def _registered(self, url: str) -> bool:
        read_at, urls = self._urls
        if url in urls and time.monotonic() - read_at <= URLS_TTL_SECONDS:
            return True
        with reading(self._engine) as conn:
            found = conn.execute(select(WORKERS.c.url).where(WORKERS.c.status != GONE))
            urls = frozenset(found.scalars())
        self._urls = (time.monotonic(), urls)
        return url in urls


def registered_workers(conn: Connection, urls: Collection[str]) -> set[str]:
    """Those of ``urls`` that registered workers have now (read in ``conn``)."""
    if not urls:
        return set()
    query = select(WORKERS.c.url).where(WORKERS.c.url.in_(list(urls)), WORKERS.c.status != GONE)
    return set(conn.execute(query).scalars())


def callback_refusal(url: str, hosts: Sequence[str]) -> str | None:
    """Why a callback may not go to ``url`` under the host patterns ``hosts``, or None."""
    if not hosts:
        return (
            "callbacks are refused on this node; "
            "set TASK_CALLBACK_ALLOW to the hosts they may go to"
        )
    host = callback_host(url)
    if host is None:
        return f"{url!r} names no host a request could go to"
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in hosts):
        return f"host {host!r} is not allowed by TASK_CALLBACK_ALLOW"
    return None


def callback_host(url: str) -> str | None:
    """The host a request to ``url`` goes to, as urllib3 reads it: lower case, an IPv6
    address without its brackets; None when the URL names none."""
    try:
        host = parse_url(url).host
    except LocationParseError:
        return None
    if not host:
        return None
    return host.strip("[]").lower()
