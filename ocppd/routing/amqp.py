"""
The command transport on RabbitMQ (pika's Twisted adapter, pinned as in
``ocppd.bus.amqp``; pika is imported only here and there).

It has its own connection, apart from the bus's: a command waiting on the
events' flow control (a blocked publisher, a busy consumer channel) would
time out for nothing.

On the broker:

- **Requests** go through the default exchange to the owner's command queue
  ``<prefix>.commands.<node id>``, published ``mandatory`` with a publisher
  confirm: a node whose queue is gone (the node is) makes the request fail at
  once with ``NodeUnreachable``. Each request is transient with
  ``expiration`` = the caller's deadline, so the commands of a dead (or
  stuck) node expire instead of piling up; the queue holds at most
  ``MAX_QUEUED`` (more are refused: ``RoutingUnavailable``) and deletes itself
  after ``queue_expiry`` seconds without a consumer.
- The owner takes at most ``concurrency`` requests at once and acks each
  *before* running it: a command is sent to a charger at most once, never
  again after a crash (the caller gets a timeout).
- **Replies** go to the caller's reply queue (server-named, exclusive,
  auto-delete: one per connection of each node) with the request's
  ``correlation_id``. A reply that matches no waiting request (it came too
  late) is dropped. A ``reply_to`` that is not a server-named queue is
  refused, so a forged request cannot aim a reply at a work queue.

Losing the connection fails the requests waiting for a reply with
``TransportTimeout`` (whether they ran is unknown); while disconnected, a
request fails at once with ``RoutingUnavailable``. ``ClientService``
reconnects with back-off and redeclares the queues.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any, cast

import pika
from pika import exceptions as pika_exceptions
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet import protocol
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredSemaphore,
    fail,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.python.failure import Failure
from zope.interface import implementer

from ocppd.bus.amqp import NoDelayConnection, close_channel, hold_loss_notice
from ocppd.bus.envelope import new_id
from ocppd.logs import Logger
from ocppd.routing.errors import NodeUnreachable, RoutingUnavailable, TransportTimeout
from ocppd.routing.interface import ICommandTransport, IServing, RequestHandler
from ocppd.routing.wire import MAX_BODY

#: Most requests a node's command queue holds; beyond, requests are refused.
MAX_QUEUED = 1000
#: What a server-named (reply) queue's name starts with.
_SERVER_NAMED = "amq.gen-"
_CONTENT_TYPE = "application/json"


class _NoReturnedBodies(logging.Filter):
    """
    Drops pika's warning about a returned (unroutable) message: it quotes the
    body, and a command's body may hold a new AuthorizationKey. A request for
    a node that is gone is expected, and answered 409.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Published message was returned")


logging.getLogger("pika.adapters.twisted_connection").addFilter(_NoReturnedBodies())


def _describe(error: Failure | BaseException | None) -> str:
    if error is None:
        return "unknown reason"
    value = error.value if isinstance(error, Failure) else error
    return f"{type(value).__name__}: {value or repr(value)}"


def command_queue(prefix: str, node_id: str) -> str:
    """The broker queue of ``node_id``'s commands."""
    return f"{prefix}.commands.{node_id}"


class _Connection(NoDelayConnection):
    def __init__(self, parameters: Any, transport: AmqpCommandTransport) -> None:
        super().__init__(parameters, custom_reactor=transport._reactor)
        self._owner = transport

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        super().connectionLost(reason)
        self._owner._connection_lost(self, reason)


class _Factory(protocol.Factory):
    def __init__(self, transport: AmqpCommandTransport) -> None:
        self._transport = transport

    def buildProtocol(self, addr: IAddress | None) -> protocol.Protocol | None:
        return cast(protocol.Protocol, _Connection(self._transport._parameters, self._transport))


@implementer(IServing)
class _Serving:
    def __init__(self, transport: AmqpCommandTransport, node_id: str, handler: RequestHandler):
        self._transport = transport
        self.node_id = node_id
        self.handler = handler
        self.channel: Any = None

    def stop(self) -> Deferred[None]:
        return self._transport._stop_serving(self)


@implementer(ICommandTransport)
class AmqpCommandTransport(Service):
    log = Logger()

    def __init__(
        self,
        *,
        url: str,
        reactor: Any,
        prefix: str,
        connection_name: str = "ocppd commands",
        concurrency: int = 100,
        queue_expiry: float = 60.0,
        max_size: int = MAX_BODY,
        connect_timeout: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._reactor = reactor
        self._prefix = prefix
        self._concurrency = concurrency
        self._queue_expiry_ms = max(1000, round(queue_expiry * 1000))
        self._max_size = max_size
        self._parameters = pika.URLParameters(url)
        self._parameters.client_properties = {"connection_name": connection_name}
        host, port = self._parameters.host, self._parameters.port
        self._where = f"{host}:{port}"
        endpoint: Any = HostnameEndpoint(reactor, host, port, timeout=connect_timeout)
        if self._parameters.ssl_options is not None:
            from twisted.internet.endpoints import wrapClientTLS
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        policy = backoffPolicy(initialDelay=0.5, factor=2, maxDelay=30)
        self._client = ClientService(
            endpoint,
            _Factory(self),
            retryPolicy=lambda attempt: float(policy(attempt - 1)),
            clock=reactor,
            prepareConnection=self._prepare,
        )
        self._protocol: Any = None
        self._channel: Any = None
        self._reply_queue: str | None = None
        #: correlation id -> (the caller's Deferred, its expiry).
        self._pending: dict[str, tuple[Deferred[bytes], IDelayedCall]] = {}
        self._served: dict[str, _Serving] = {}
        self._lost_waiters: list[Deferred[None]] = []

    # --- ICommandTransport ---------------------------------------------------

    def request(self, node_id: str, body: bytes, timeout: float) -> Deferred[bytes]:
        channel, reply_queue = self._channel, self._reply_queue
        if channel is None or reply_queue is None:
            return fail(RoutingUnavailable(f"not connected to RabbitMQ at {self._where}"))
        if len(body) > self._max_size:
            return fail(RoutingUnavailable(f"a command of {len(body)} bytes is too big to route"))
        correlation_id = new_id()
        reply: Deferred[bytes] = Deferred()
        expiry = self._reactor.callLater(
            timeout,
            self._settle,
            correlation_id,
            TransportTimeout(f"no reply from node {node_id} in {timeout:g}s"),
        )
        self._pending[correlation_id] = (reply, expiry)
        properties = pika.BasicProperties(
            content_type=_CONTENT_TYPE,
            correlation_id=correlation_id,
            reply_to=reply_queue,
            # The TTL: a request nobody took by the caller's deadline expires.
            expiration=str(max(1, round(timeout * 1000))),
            delivery_mode=1,
        )
        try:
            confirmed = channel.basic_publish(
                exchange="",
                routing_key=command_queue(self._prefix, node_id),
                body=body,
                properties=properties,
                mandatory=True,
            )
        except Exception as e:
            self._settle(correlation_id, RoutingUnavailable(f"publish failed: {_describe(e)}"))
            return reply
        confirmed.addErrback(self._not_delivered, correlation_id, node_id)
        return reply

    def serve(self, node_id: str, handler: RequestHandler) -> Deferred[IServing]:
        if node_id in self._served:
            return fail(ValueError(f"node {node_id!r} is already served"))
        serving = _Serving(self, node_id, handler)
        self._served[node_id] = serving
        if self._protocol is None:
            return succeed(cast(IServing, serving))
        d = self._start_serving(serving, self._protocol)
        return d.addCallback(lambda _: cast(IServing, serving))

    # --- Service ---------------------------------------------------------------

    def when_connected(self, failAfterFailures: int | None = None) -> Deferred[None]:
        """Fires once connected, with the reply queue and served queues set up."""
        d = self._client.whenConnected(failAfterFailures=failAfterFailures)
        return d.addCallback(lambda _: None)

    def startService(self) -> None:
        super().startService()
        self._client.startService()

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        super().stopService()
        yield DeferredList(
            [self._stop_serving(s) for s in list(self._served.values())], consumeErrors=True
        )
        for correlation_id in list(self._pending):
            self._settle(correlation_id, RoutingUnavailable("the node is stopping"))
        proto = self._protocol
        if proto is not None and proto.is_open:
            lost: Deferred[None] = Deferred()
            self._lost_waiters.append(lost)
            try:
                proto.close()
                lost.addTimeout(5, self._reactor)
                yield lost
            except Exception:
                self.log.failure("Closing the command connection to RabbitMQ failed")
        yield self._client.stopService()

    # --- Connection --------------------------------------------------------------

    @inlineCallbacks
    def _prepare(self, proto: Any) -> Generator[Deferred[Any], Any, None]:
        release = hold_loss_notice(proto)
        proto = proto.unwrap()
        try:
            yield proto.ready
            channel = yield maybeDeferred(proto.channel)
            yield channel.confirm_delivery()
            yield channel.basic_qos(prefetch_count=self._concurrency)
            declared = yield channel.queue_declare(
                queue="",
                exclusive=True,
                auto_delete=True,
                arguments={"x-max-length": MAX_QUEUED},
            )
            reply_queue = declared.method.queue
            replies, _ = yield channel.basic_consume(queue=reply_queue, auto_ack=False)
        except Exception as e:
            self.log.warn(
                "RabbitMQ command connection setup failed: {reason}",
                reason=_describe(e),
                state="setup-failed",
            )
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.loseConnection()
            raise
        self._protocol, self._channel, self._reply_queue = proto, channel, reply_queue
        self._take_replies(channel, replies).addErrback(
            lambda f: self.log.failure("Reading command replies failed", f)
        )
        self.log.info(
            "Command transport connected to RabbitMQ at {where}",
            where=self._where,
            state="connected",
        )
        yield DeferredList(
            [self._start_serving(s, proto) for s in list(self._served.values())],
            consumeErrors=True,
        )
        release()

    def _connection_lost(self, proto: Any, reason: Failure) -> None:
        waiters, self._lost_waiters = self._lost_waiters, []
        for waiter in waiters:
            self._reactor.callLater(0, waiter.callback, None)
        if proto is not self._protocol:
            return
        self._protocol = self._channel = self._reply_queue = None
        for serving in self._served.values():
            serving.channel = None
        for correlation_id in list(self._pending):
            # The reply queue went with the connection: no reply can come.
            self._settle(correlation_id, TransportTimeout("the connection to RabbitMQ was lost"))
        if self.running:
            self.log.warn(
                "Command connection to RabbitMQ lost: {reason}",
                reason=_describe(reason),
                state="lost",
            )

    # --- Caller side -------------------------------------------------------------

    def _settle(self, correlation_id: str, outcome: bytes | Exception) -> None:
        entry = self._pending.pop(correlation_id, None)
        if entry is None:
            return
        reply, expiry = entry
        if expiry.active():
            expiry.cancel()
        if isinstance(outcome, Exception):
            reply.errback(outcome)
        else:
            reply.callback(outcome)

    def _not_delivered(self, failure: Failure, correlation_id: str, node_id: str) -> None:
        if failure.check(pika_exceptions.UnroutableError):
            error: Exception = NodeUnreachable(f"no node {node_id!r} takes commands")
        elif failure.check(pika_exceptions.NackError):
            error = RoutingUnavailable(f"RabbitMQ refused the command for node {node_id}")
        else:
            error = TransportTimeout(f"the command may not have reached node {node_id}")
        self._settle(correlation_id, error)

    @inlineCallbacks
    def _take_replies(self, channel: Any, replies: Any) -> Generator[Deferred[Any], Any, None]:
        while self._channel is channel:
            try:
                message = yield replies.get()
            except Exception:
                return  # the channel or connection closed
            channel.basic_ack(delivery_tag=message.method.delivery_tag)
            correlation_id = message.properties.correlation_id
            if not isinstance(correlation_id, str) or correlation_id not in self._pending:
                self.log.debug("Dropped a command reply that nobody waits for (any more)")
                continue
            if len(message.body) > self._max_size:
                self._settle(
                    correlation_id,
                    TransportTimeout(f"a reply of {len(message.body)} bytes was dropped"),
                )
                continue
            self._settle(correlation_id, bytes(message.body))

    # --- Owner side ---------------------------------------------------------------

    @inlineCallbacks
    def _start_serving(self, serving: _Serving, proto: Any) -> Generator[Deferred[Any], Any, None]:
        queue = command_queue(self._prefix, serving.node_id)
        channel = yield maybeDeferred(proto.channel)
        try:
            yield channel.basic_qos(prefetch_count=self._concurrency)
            yield channel.queue_declare(
                queue=queue,
                durable=False,
                auto_delete=False,
                arguments={
                    "x-expires": self._queue_expiry_ms,
                    "x-max-length": MAX_QUEUED,
                    "x-overflow": "reject-publish",
                },
            )
            messages, _ = yield channel.basic_consume(queue=queue, auto_ack=False)
        except Exception as e:
            self.log.error(
                "Could not take the commands of {queue}: {reason}", queue=queue, reason=_describe(e)
            )
            raise
        if self._served.get(serving.node_id) is not serving or proto is not self._protocol:
            channel.close()
            return
        serving.channel = channel
        self.log.info(
            "Taking commands for node {node_id} from {queue}", node_id=serving.node_id, queue=queue
        )
        self._serve_loop(serving, channel, messages).addErrback(
            lambda f: self.log.failure("Serving commands of {queue} failed", f, queue=queue)
        )

    @inlineCallbacks
    def _serve_loop(
        self, serving: _Serving, channel: Any, messages: Any
    ) -> Generator[Deferred[Any], Any, None]:
        slots = DeferredSemaphore(self._concurrency)
        while serving.channel is channel:
            yield slots.acquire()
            try:
                message = yield messages.get()
            except Exception:
                slots.release()
                return
            # Acked before it runs: at most once, even if this node dies now.
            channel.basic_ack(delivery_tag=message.method.delivery_tag)
            self._run_one(serving, message).addBoth(lambda _: slots.release())

    @inlineCallbacks
    def _run_one(self, serving: _Serving, message: Any) -> Generator[Deferred[Any], Any, None]:
        properties = message.properties
        reply_to, correlation_id = properties.reply_to, properties.correlation_id
        if not (
            isinstance(reply_to, str)
            and reply_to.startswith(_SERVER_NAMED)
            and len(reply_to) <= 255
            and isinstance(correlation_id, str)
            and 0 < len(correlation_id) <= 64
        ):
            self.log.warn("Dropped a command without a valid reply address")
            return
        if len(message.body) > self._max_size:
            self.log.warn("Dropped a command of {size} bytes", size=len(message.body))
            return
        try:
            reply = yield serving.handler(bytes(message.body))
        except Exception:
            self.log.failure("Command handler of node {node_id} failed", node_id=serving.node_id)
            return
        channel = self._channel
        if channel is None:
            return  # the connection went: the caller times out
        try:
            yield channel.basic_publish(
                exchange="",
                routing_key=reply_to,
                body=reply,
                properties=pika.BasicProperties(
                    content_type=_CONTENT_TYPE, correlation_id=correlation_id, delivery_mode=1
                ),
            )
        except Exception as e:
            # The caller went (its reply queue with it) or we lost the broker.
            self.log.debug("Reply not delivered: {reason}", reason=_describe(e))

    @inlineCallbacks
    def _stop_serving(self, serving: _Serving) -> Generator[Deferred[Any], Any, None]:
        if self._served.get(serving.node_id) is serving:
            del self._served[serving.node_id]
        channel, serving.channel = serving.channel, None
        # Prefetched requests go back to the queue (and expire there).
        yield close_channel(channel, self._reactor)


__all__ = ["AmqpCommandTransport", "command_queue"]
