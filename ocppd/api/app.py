"""
The Klein application behind the web listener. Routes live on a class with
their collaborators injected (Klein's "non-global state" pattern).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

from klein import Klein
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.static import File
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from ocppd.alerts.observe import open_alerts
from ocppd.api.accounts import Accounts
from ocppd.api.auditlog import FILTERS as AUDIT_FILTERS
from ocppd.api.auditlog import AuditLog
from ocppd.api.closing import SessionClosing
from ocppd.api.cms import CmsService, path_id
from ocppd.api.cms_lists import POINT_ARGS, SESSION_ARGS, STATION_ARGS, CmsLists
from ocppd.api.cms_people import TAG_ARGS, USER_ARGS, CmsPeople
from ocppd.api.cms_reports import Reports
from ocppd.api.commands import CommandService
from ocppd.api.customer import CustomerService
from ocppd.api.errors import FORBIDDEN, ApiError
from ocppd.api.http import (
    header_text,
    read_json_object,
    string_field,
    write_error,
    write_json,
)
from ocppd.api.online import OnlineView
from ocppd.api.openapi import document
from ocppd.api.pagination import decode_cursor, page, parse_limit, query_arg
from ocppd.api.payments import PaymentWebhooks
from ocppd.api.point_meter import PointMeter
from ocppd.api.public import charger_json, charger_tx, stations_page_tx
from ocppd.api.receipt_words import choose_language
from ocppd.api.receipts import Receipts
from ocppd.api.reviews import SessionReviews
from ocppd.api.session_snapshot import running_sessions_tx, session_snapshot_tx
from ocppd.diagnostics import DiagnosticsFiles, upload_json
from ocppd.firmware import FirmwareFiles
from ocppd.health import Health, is_local, public
from ocppd.logs import Logger
from ocppd.representations import unmatched_stop_json
from ocppd.store import transactions
from ocppd.store.database import Database
from ocppd.store.records import UserRecord


def user_json(user: UserRecord) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role}


def _accept_language(request: IRequest) -> str | None:
    """Accept-Language as text, or None when it is not ASCII (English then, not a 400)."""
    values = request.requestHeaders.getRawHeaders(b"accept-language")
    if not values or not values[-1].isascii():
        return None
    return str(values[-1].decode("ascii"))


class Api:
    app = Klein()
    # werkzeug would answer ``/api//auth/me`` with a redirect to the merged
    # path: a path with an empty segment names nothing here (404).
    app.url_map.merge_slashes = False
    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        accounts: Accounts,
        commands: CommandService,
        cms: CmsService,
        people: CmsPeople,
        customer: CustomerService,
        reviews: SessionReviews,
        closing: SessionClosing,
        online: OnlineView,
        diagnostics: DiagnosticsFiles | None = None,
        firmware: FirmwareFiles | None = None,
        payments: PaymentWebhooks,
        receipts: Receipts,
        push: IResource | None = None,
        static: dict[str, IResource] | None = None,
        health: Health | None = None,
        map_settings: dict[str, Any] | None = None,
    ) -> None:
        self.database = database
        self.accounts = accounts
        self.commands = commands
        self.cms = cms
        #: Customers, id tags and wallets in the CMS (``ocppd.api.cms_people``).
        self.people = people
        self.customer = customer
        self.reviews = reviews
        #: Operators' hand close of a session that cannot end.
        self.closing = closing
        #: The audit log's pages (``GET /api/cms/audit``).
        self.audit_log = AuditLog(database)
        #: Charts over time (``GET /api/cms/reports/...``).
        self.reports = Reports(database, online)
        #: The stations, points and sessions lists and exports (``ocppd.api.cms_lists``).
        self.lists = CmsLists(database=database, online=online)
        #: The CMS map's tile server (``GET /api/cms/map``; ``ocppd.maptiles``).
        self.map_settings = map_settings or {"tiles": None, "attribution": None}
        #: Chargers' diagnostics uploads (``ocppd.diagnostics``), when the node takes them.
        self.diagnostics = diagnostics
        #: Firmware files for UpdateFirmware (``ocppd.firmware``), when configured.
        self.firmware = firmware or FirmwareFiles("", "")
        #: A point's meter history per connector (``GET /api/cms/points/{id}/meter``).
        self.point_meter = PointMeter(database)
        #: Whether chargers are online: presence, asked once per request.
        self.online = online
        #: The payment provider's webhook (no provider that has one: 404).
        self.payments = payments
        #: Receipts of customers' finished sessions.
        self.receipts = receipts
        #: The WAMP channel at ``/push`` (``ocppd.push``), when the node has one.
        self.push = push
        #: Static trees by their first path segment (``cms``, ``user``, ``vendor``).
        self.static = static or {}
        #: ``/health`` and ``/ready`` (``ocppd.health``), when the node has them.
        self.health = health

    def resource(self) -> Any:
        return self.app.resource()

    # -- errors ---------------------------------------------------------------

    @app.handle_errors(ApiError)
    def api_error(self, request: IRequest, failure: Failure) -> bytes:
        error = failure.value
        assert isinstance(error, ApiError)
        return write_error(request, error)

    @app.handle_errors(NotFound)
    def not_found(self, request: IRequest, failure: Failure) -> bytes:
        return write_error(request, ApiError(404, "not_found", "no such resource"))

    @app.handle_errors(RequestRedirect)
    def add_slash(self, request: IRequest, failure: Failure) -> bytes:
        # The only redirect left (see merge_slashes): a branch without its
        # slash, like /cms -> /cms/. Relative, so the Host header is not echoed.
        error = failure.value
        assert isinstance(error, RequestRedirect)
        target = urlsplit(error.new_url)
        request.setResponseCode(error.code)
        request.setHeader("Location", target.path + (f"?{target.query}" if target.query else ""))
        return b""

    @app.handle_errors(MethodNotAllowed)
    def method_not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        # RFC 9110 section 15.5.6: a 405 lists the methods the resource takes.
        allowed = ", ".join(sorted(getattr(failure.value, "valid_methods", None) or ()))
        return write_error(
            request,
            ApiError(405, "method_not_allowed", "method not allowed", headers={"Allow": allowed}),
        )

    @app.handle_errors(Exception)
    def internal_error(self, request: IRequest, failure: Failure) -> bytes:
        self.log.failure(
            "API request {method} {path} failed",
            failure,
            method=request.method,
            path=request.path,
        )
        return write_error(request, ApiError(500, "internal_error", "internal error"))

    # -- helpers --------------------------------------------------------------

    def user(self, request: IRequest) -> Deferred[UserRecord]:
        return self.accounts.authenticate(header_text(request, "Authorization"))

    @inlineCallbacks
    def admin(self, request: IRequest) -> Generator[Deferred[Any], Any, UserRecord]:
        user = yield self.user(request)
        if user.role != "admin":
            raise FORBIDDEN
        return user

    # -- what the web listener serves besides the API ------------------------------

    @app.route("/health", methods=["GET"])
    def alive(self, request: IRequest) -> bytes:
        if self.health is None:
            raise ApiError(404, "not_found", "no such resource")
        detailed = is_local(request.getClientAddress())
        return write_json(request, 200, self.health.alive(detailed=detailed))

    @app.route("/ready", methods=["GET"])
    @inlineCallbacks
    def ready(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        if self.health is None:
            raise ApiError(404, "not_found", "no such resource")
        ok, body = yield self.health.ready()
        if not is_local(request.getClientAddress()):
            body = public(body)
        return write_json(request, 200 if ok else 503, body)

    @app.route("/push")
    def push_channel(self, request: IRequest) -> IResource:
        if self.push is None:
            raise ApiError(404, "not_found", "this node has no push channel")
        return self.push

    @app.route("/<any(cms,user,shared,vendor):tree>/", branch=True)
    def static_tree(self, request: IRequest, tree: str) -> IResource:
        resource = self.static.get(tree)
        if resource is None:
            raise ApiError(404, "not_found", f"no /{tree}/ on this node")
        return resource

    @app.route("/favicon.ico", methods=["GET"])
    def favicon(self, request: IRequest) -> IResource:
        # Browsers ask for it unprompted; the pages name /shared/favicon.svg.
        shared = self.static.get("shared")
        if shared is None:
            raise ApiError(404, "not_found", "no /shared/ on this node")
        return shared.getChildWithDefault(b"favicon.svg", request)

    @app.route("/")
    def home(self, request: IRequest) -> bytes:
        # Customers are the many; operators know their way to /cms/.
        request.redirect(b"/user/")
        return b""

    # -- accounts ---------------------------------------------------------------

    @app.route("/api/openapi.json", methods=["GET"])
    def openapi(self, request: IRequest) -> bytes:
        return write_json(request, 200, document())

    @app.route("/api/auth/login", methods=["POST"])
    @inlineCallbacks
    def login(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        body = read_json_object(request)
        email = string_field(body, "email")
        password = string_field(body, "password", max_length=1024)
        address = request.getClientAddress()
        token, user = yield self.accounts.login(email, password, getattr(address, "host", "?"))
        return write_json(request, 200, {"token": token, "user": user_json(user)})

    @app.route("/api/auth/logout", methods=["POST"])
    @inlineCallbacks
    def logout(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.user(request)
        yield self.accounts.logout(header_text(request, "Authorization"))
        return write_json(request, 200, {"loggedOut": True})

    @app.route("/api/auth/me", methods=["GET"])
    @inlineCallbacks
    def me(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        body = user_json(user)
        if user.role == "customer":
            body["idTag"] = yield self.customer.id_tag(user)
        return write_json(request, 200, {"user": body})

    # -- for every signed-in user ----------------------------------------------

    @app.route("/api/stations", methods=["GET"])
    @inlineCallbacks
    def public_stations(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.user(request)
        limit = parse_limit(request)
        after = decode_cursor(query_arg(request, "cursor"), "stations", int)
        found = yield self.database.run(stations_page_tx, after, limit + 1)
        online = yield self.online.lookup(found.charge_point_ids())
        rows = found.json(online)
        return write_json(request, 200, page("stations", rows, limit, lambda r: r["id"], dict))

    @app.route("/api/chargers/<string:charge_point_id>", methods=["GET"])
    @inlineCallbacks
    def public_charger(
        self, request: IRequest, charge_point_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.user(request)
        found = yield self.database.run(charger_tx, charge_point_id)
        if found is None:
            raise ApiError(404, "not_found", f"no charger {charge_point_id!r}")
        record, connectors, tariff = found
        online = yield self.online.lookup([charge_point_id])
        return write_json(request, 200, charger_json(record, connectors, online, tariff))

    @app.route("/api/user/sessions", methods=["GET"])
    @inlineCallbacks
    def user_sessions(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        args = {
            name: query_arg(request, name) for name in ("chargePointId", "status", "from", "to")
        }
        # Always the caller's own: a userId in the query is not looked at.
        args["userId"] = str(user.id)
        body = yield self.cms.sessions(args, parse_limit(request), query_arg(request, "cursor"))
        return write_json(request, 200, body)

    @app.route("/api/user/sessions/running", methods=["GET"])
    @inlineCallbacks
    def user_running_sessions(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        found = yield self.database.run(running_sessions_tx, user.id)
        return write_json(request, 200, {"items": [s.json(history=False) for s in found]})

    @app.route("/api/user/sessions/<string:session_id>", methods=["GET"])
    @inlineCallbacks
    def user_session(
        self, request: IRequest, session_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        key = path_id(session_id, "session")
        found = yield self.database.run(session_snapshot_tx, user.id, key)
        if found is None:
            # Another customer's session answers as none at all: ids cannot be probed.
            raise ApiError(404, "not_found", f"you have no session {key}")
        return write_json(request, 200, found.json(history=True))

    @app.route("/api/user/wallet", methods=["GET"])
    @inlineCallbacks
    def user_wallet(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        return write_json(request, 200, (yield self.customer.wallet(user)))

    @app.route("/api/user/wallet/top-up", methods=["POST"])
    @inlineCallbacks
    def user_top_up(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        body = read_json_object(request)
        status, answer = yield self.customer.top_up(
            user, body, header_text(request, "Idempotency-Key")
        )
        return write_json(request, status, answer)

    @app.route("/api/user/sessions/<string:session_id>/receipt", methods=["GET"])
    @inlineCallbacks
    def user_session_receipt(
        self, request: IRequest, session_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        body = yield self.receipts.json(user, path_id(session_id, "session"))
        return write_json(request, 200, body)

    @app.route("/api/user/sessions/<string:session_id>/receipt.pdf", methods=["GET"])
    @inlineCallbacks
    def user_session_receipt_pdf(
        self, request: IRequest, session_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        key = path_id(session_id, "session")
        language = choose_language(query_arg(request, "lang"), _accept_language(request))
        pdf = yield self.receipts.pdf(user, key, language)
        request.setHeader("Content-Type", "application/pdf")
        request.setHeader("Content-Disposition", f'attachment; filename="receipt-{key}.pdf"')
        request.setHeader("Cache-Control", "no-store")
        return pdf

    # -- the payment provider's webhook (signed by the provider, no token) ------

    @app.route("/api/payments/stripe/webhook", methods=["POST"])
    @inlineCallbacks
    def payment_webhook(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        # The raw body: the signature is over its exact bytes (the size is
        # capped by the web listener before it is buffered).
        body = request.content.read() if request.content is not None else b""
        address = request.getClientAddress()
        answer = yield self.payments.receive(
            "stripe",
            header_text(request, "Stripe-Signature"),
            body,
            getattr(address, "host", "?"),
        )
        return write_json(request, 200, answer)

    @app.route("/api/user/wallet/transactions", methods=["GET"])
    @inlineCallbacks
    def user_wallet_transactions(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        body = yield self.customer.transactions(
            user, parse_limit(request), query_arg(request, "cursor")
        )
        return write_json(request, 200, body)

    @app.route("/api/user/charging/start", methods=["POST"])
    @inlineCallbacks
    def user_charging_start(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        answer = yield self.customer.start(user, read_json_object(request))
        return write_json(request, 202, answer)

    @app.route("/api/user/charging/stop", methods=["POST"])
    @inlineCallbacks
    def user_charging_stop(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        answer = yield self.customer.stop(user, read_json_object(request))
        return write_json(request, 202, answer)

    # -- charger commands (admin) ---------------------------------------------

    @app.route("/api/charger/<string:command>", methods=["POST"])
    @inlineCallbacks
    def charger_command(
        self, request: IRequest, command: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        body = read_json_object(request)
        answer = yield self.commands.run(command, body, user)
        return write_json(request, 200, answer)

    @app.route("/api/cms/commands", methods=["GET"])
    @inlineCallbacks
    def cms_command_forms(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        return write_json(request, 200, {"commands": self.commands.forms()})

    @app.route("/api/charger/commands/<string:command_id>", methods=["GET"])
    @inlineCallbacks
    def charger_command_status(
        self, request: IRequest, command_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        record = yield self.commands.describe(command_id)
        return write_json(request, 200, record)

    # -- CMS (admin) ------------------------------------------------------------
    # Stations, tariffs, charge points and id tags share one set of routes;
    # ocppd.api.cms does the work and documents the semantics.

    CMS_KINDS = "<any(stations,tariffs,points,tags):kind>"

    @app.route(f"/api/cms/{CMS_KINDS}", methods=["GET"])
    @inlineCallbacks
    def cms_list(self, request: IRequest, kind: str) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        cursor = query_arg(request, "cursor")
        if kind == "tags":
            # Searched, filtered and sorted (ocppd.api.cms_people).
            args = {name: query_arg(request, name) for name in TAG_ARGS}
            body = yield self.people.tags(args, limit, cursor)
        elif kind == "stations":
            # Searched, filtered and sorted (ocppd.api.cms_lists), as are points.
            args = {name: query_arg(request, name) for name in STATION_ARGS}
            body = yield self.lists.stations(args, limit, cursor)
        elif kind == "points":
            args = {name: query_arg(request, name) for name in POINT_ARGS}
            body = yield self.lists.points(args, limit, cursor)
        else:
            body = yield self.cms.list(kind, limit, cursor)
        return write_json(request, 200, body)

    @app.route(f"/api/cms/{CMS_KINDS}", methods=["POST"])
    @inlineCallbacks
    def cms_create(self, request: IRequest, kind: str) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        body = read_json_object(request)
        if kind == "tags" and isinstance(body.get("idTag"), str):
            # A tag asked for before it existed is cached as Invalid.
            self.people.tag_changed(body["idTag"])
        created = yield self.cms.create(kind, body, user)
        if kind == "tags":
            self.people.tag_changed(created["idTag"])
        return write_json(request, 201, created)

    @app.route(f"/api/cms/{CMS_KINDS}/<string:key>", methods=["GET"])
    @inlineCallbacks
    def cms_get(
        self, request: IRequest, kind: str, key: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        return write_json(request, 200, (yield self.cms.get(kind, key)))

    @app.route(f"/api/cms/{CMS_KINDS}/<string:key>", methods=["PUT"])
    @inlineCallbacks
    def cms_update(
        self, request: IRequest, kind: str, key: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        body = read_json_object(request)
        if kind == "tags":
            # Forgotten before the write too: its event may reach a page (and
            # the page a charger) before this answer does; an Authorize during
            # the write may cache the old status again, hence after as well.
            self.people.tag_changed(key)
        updated = yield self.cms.update(kind, key, body, user)
        if kind == "tags":
            self.people.tag_changed(key)
        return write_json(request, 200, updated)

    @app.route(f"/api/cms/{CMS_KINDS}/<string:key>", methods=["DELETE"])
    @inlineCallbacks
    def cms_delete(
        self, request: IRequest, kind: str, key: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        if kind == "tags":
            self.people.tag_changed(key)
        deleted = yield self.cms.delete(kind, key, user)
        if kind == "tags":
            self.people.tag_changed(key)
        return write_json(request, 200, {"deleted": deleted})

    @app.route("/api/cms/dashboard", methods=["GET"])
    @inlineCallbacks
    def cms_dashboard(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        body = yield self.cms.dashboard()
        yield self.people.with_customers(body["recentSessions"])
        return write_json(request, 200, body)

    @app.route("/api/cms/alerts", methods=["GET"])
    @inlineCallbacks
    def cms_alerts(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        found = yield self.database.run(open_alerts)
        return write_json(request, 200, {"alerts": [alert.to_json() for alert in found]})

    @app.route("/api/cms/sessions", methods=["GET"])
    @inlineCallbacks
    def cms_sessions(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        args = {name: query_arg(request, name) for name in SESSION_ARGS}
        # With their customers (ocppd.api.cms_lists joins them).
        body = yield self.lists.sessions(args, limit, query_arg(request, "cursor"))
        return write_json(request, 200, body)

    def _export(self, request: IRequest, kind: str) -> Deferred[bytes]:
        names = {"stations": STATION_ARGS, "points": POINT_ARGS, "sessions": SESSION_ARGS}[kind]

        @inlineCallbacks
        def answer() -> Generator[Deferred[Any], Any, bytes]:
            yield self.admin(request)
            args = {name: query_arg(request, name) for name in names}
            body = yield getattr(self.lists, f"{kind}_csv")(args)
            return write_csv(request, f"{kind}.csv", body)

        return answer()

    @app.route("/api/cms/stations.csv", methods=["GET"])
    def cms_stations_csv(self, request: IRequest) -> Deferred[bytes]:
        return self._export(request, "stations")

    @app.route("/api/cms/points.csv", methods=["GET"])
    def cms_points_csv(self, request: IRequest) -> Deferred[bytes]:
        return self._export(request, "points")

    @app.route("/api/cms/sessions.csv", methods=["GET"])
    def cms_sessions_csv(self, request: IRequest) -> Deferred[bytes]:
        return self._export(request, "sessions")

    @app.route("/api/cms/sessions/<string:session_id>/review", methods=["POST"])
    @inlineCallbacks
    def cms_session_review(
        self, request: IRequest, session_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        body = read_json_object(request)
        answer = yield self.reviews.decide(path_id(session_id, "session"), body, user)
        return write_json(request, 200, answer)

    # -- chargers' diagnostics uploads (the token in the URL is the credential) --

    def _diagnostics(self) -> DiagnosticsFiles:
        if self.diagnostics is None:
            raise ApiError(404, "not_found", "this node takes no diagnostics uploads")
        return self.diagnostics

    @app.route("/diagnostics/<string:token>", methods=["PUT", "POST"])
    @app.route("/diagnostics/<string:token>/", methods=["PUT", "POST"])
    @app.route("/diagnostics/<string:token>/<string:name>", methods=["PUT", "POST"])
    @inlineCallbacks
    def diagnostics_upload(
        self, request: IRequest, token: str, name: str | None = None
    ) -> Generator[Deferred[Any], Any, bytes]:
        record = yield self._diagnostics().receive(
            token, name, request.content, header_text(request, "Content-Type")
        )
        return write_json(request, 201, {"received": True, "size": record.size})

    @app.route("/api/cms/points/<string:charge_point_id>/diagnostics", methods=["GET"])
    @inlineCallbacks
    def cms_diagnostics(
        self, request: IRequest, charge_point_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        kind = f"diagnostics:{charge_point_id}"
        before = decode_cursor(query_arg(request, "cursor"), kind, int)
        rows = yield self._diagnostics().uploads(charge_point_id, before_id=before, limit=limit + 1)
        return write_json(request, 200, page(kind, rows, limit, lambda r: r.id, upload_json))

    @app.route("/api/cms/points/<string:charge_point_id>/unmatched-stops", methods=["GET"])
    @inlineCallbacks
    def cms_unmatched_stops(
        self, request: IRequest, charge_point_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        kind = f"unmatched-stops:{charge_point_id}"
        before = decode_cursor(query_arg(request, "cursor"), kind, int)
        rows = yield self.database.run(
            transactions.unmatched_stops_page, charge_point_id, before_id=before, limit=limit + 1
        )
        return write_json(
            request, 200, page(kind, rows, limit, lambda r: r.id, unmatched_stop_json)
        )

    @app.route("/api/cms/diagnostics/<string:upload_id>/file", methods=["GET"])
    @inlineCallbacks
    def cms_diagnostics_file(
        self, request: IRequest, upload_id: str
    ) -> Generator[Deferred[Any], Any, Any]:
        yield self.admin(request)
        files = self._diagnostics()
        record = yield files.upload(path_id(upload_id, "upload"))
        if record is None or record.received_at is None:
            raise ApiError(404, "not_found", f"no file for upload {upload_id}")
        path = files.path_of(record)
        if not os.path.isfile(path):
            raise ApiError(404, "not_found", f"the file of upload {upload_id} is gone")
        # The kept name is safe_name()'s: letters, digits, . _ - only.
        request.setHeader("Content-Disposition", f'attachment; filename="{os.path.basename(path)}"')
        # Streamed from the folder by Twisted's File (a producer), not read whole.
        return File(path, defaultType="application/octet-stream")

    @app.route("/api/cms/diagnostics/<string:upload_id>", methods=["DELETE"])
    @inlineCallbacks
    def cms_diagnostics_delete(
        self, request: IRequest, upload_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        record = yield self._diagnostics().delete(path_id(upload_id, "upload"), user)
        return write_json(request, 200, {"deleted": upload_json(record)})

    # -- firmware files for UpdateFirmware ----------------------------------------

    @app.route("/firmware/<string:name>", methods=["GET"])
    def firmware_file(self, request: IRequest, name: str) -> IResource:
        resource = self.firmware.resource(name)
        if resource is None:
            raise ApiError(404, "not_found", "no such firmware file")
        return resource

    @app.route("/api/cms/firmware", methods=["GET"])
    @inlineCallbacks
    def cms_firmware(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        # A directory listing: on a thread, the folder may be on a network share.
        files = yield deferToThread(self.firmware.listing)
        return write_json(request, 200, {"items": files})

    @app.route("/api/cms/audit", methods=["GET"])
    @inlineCallbacks
    def cms_audit(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        args = {name: query_arg(request, name) for name in AUDIT_FILTERS}
        body = yield self.audit_log.entries(args, limit, query_arg(request, "cursor"))
        return write_json(request, 200, body)

    @app.route("/api/cms/sessions/<string:session_id>/close", methods=["POST"])
    @inlineCallbacks
    def cms_session_close(
        self, request: IRequest, session_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        body = read_json_object(request)
        answer = yield self.closing.close(path_id(session_id, "session"), body, user)
        return write_json(request, 200, answer)

    @app.route("/api/cms/points/<string:charge_point_id>/messages", methods=["GET"])
    @inlineCallbacks
    def cms_messages(
        self, request: IRequest, charge_point_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        body = yield self.cms.messages(charge_point_id, limit, query_arg(request, "cursor"))
        return write_json(request, 200, body)

    @app.route("/api/cms/points/<string:charge_point_id>/meter", methods=["GET"])
    @inlineCallbacks
    def cms_point_meter(
        self, request: IRequest, charge_point_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        body = yield self.point_meter.history(
            charge_point_id, query_arg(request, "from"), query_arg(request, "to")
        )
        return write_json(request, 200, body)

    # -- customers, id tags and wallets (admin; ocppd.api.cms_people) ----------------

    @app.route("/api/cms/users", methods=["GET"])
    @inlineCallbacks
    def cms_users(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        args = {name: query_arg(request, name) for name in USER_ARGS}
        body = yield self.people.users(args, limit, query_arg(request, "cursor"))
        return write_json(request, 200, body)

    @app.route("/api/cms/users.csv", methods=["GET"])
    @inlineCallbacks
    def cms_users_csv(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        args = {name: query_arg(request, name) for name in USER_ARGS}
        return write_csv(request, "users.csv", (yield self.people.users_csv(args)))

    @app.route("/api/cms/tags.csv", methods=["GET"])
    @inlineCallbacks
    def cms_tags_csv(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        args = {name: query_arg(request, name) for name in TAG_ARGS}
        return write_csv(request, "id-tags.csv", (yield self.people.tags_csv(args)))

    @app.route("/api/cms/users", methods=["POST"])
    @inlineCallbacks
    def cms_user_create(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        created = yield self.people.create_user(read_json_object(request), user)
        return write_json(request, 201, created)

    @app.route("/api/cms/users/<string:user_id>", methods=["GET"])
    @inlineCallbacks
    def cms_user(self, request: IRequest, user_id: str) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        return write_json(request, 200, (yield self.people.user(user_id)))

    @app.route("/api/cms/users/<string:user_id>", methods=["PUT"])
    @inlineCallbacks
    def cms_user_update(
        self, request: IRequest, user_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        updated = yield self.people.update_user(user_id, read_json_object(request), user)
        return write_json(request, 200, updated)

    @app.route("/api/cms/users/<string:user_id>/wallet/transactions", methods=["GET"])
    @inlineCallbacks
    def cms_user_wallet_transactions(
        self, request: IRequest, user_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        limit = parse_limit(request)
        body = yield self.people.transactions(user_id, limit, query_arg(request, "cursor"))
        return write_json(request, 200, body)

    @app.route("/api/cms/users/<string:user_id>/wallet/adjustments", methods=["POST"])
    @inlineCallbacks
    def cms_user_wallet_adjust(
        self, request: IRequest, user_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.admin(request)
        body = read_json_object(request)
        key = header_text(request, "Idempotency-Key")
        status, answer = yield self.people.adjust(user_id, body, key, user)
        return write_json(request, status, answer)

    def _report(self, request: IRequest, report: str) -> Deferred[bytes]:
        @inlineCallbacks
        def answer() -> Generator[Deferred[Any], Any, bytes]:
            yield self.admin(request)
            args = {name: query_arg(request, name) for name in ("period", "from", "to")}
            if report == "faults":
                body = yield self.reports.faults(args, parse_limit(request))
            else:
                body = yield getattr(self.reports, report)(args)
            return write_json(request, 200, body)

        return answer()

    @app.route("/api/cms/reports/sessions", methods=["GET"])
    def cms_report_sessions(self, request: IRequest) -> Deferred[bytes]:
        return self._report(request, "sessions")

    @app.route("/api/cms/reports/utilisation", methods=["GET"])
    def cms_report_utilisation(self, request: IRequest) -> Deferred[bytes]:
        return self._report(request, "utilisation")

    @app.route("/api/cms/reports/faults", methods=["GET"])
    def cms_report_faults(self, request: IRequest) -> Deferred[bytes]:
        return self._report(request, "faults")

    @app.route("/api/cms/points/<string:charge_point_id>/connections", methods=["GET"])
    @inlineCallbacks
    def cms_point_connections(
        self, request: IRequest, charge_point_id: str
    ) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        body = yield self.reports.connections(charge_point_id)
        return write_json(request, 200, body)

    @app.route("/api/cms/map", methods=["GET"])
    @inlineCallbacks
    def cms_map(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        yield self.admin(request)
        return write_json(request, 200, self.map_settings)


def write_csv(request: IRequest, filename: str, body: bytes) -> bytes:
    """A CSV export, to be saved as ``filename`` (never shown inline)."""
    request.setHeader("Content-Type", "text/csv; charset=utf-8")
    request.setHeader("Content-Disposition", f'attachment; filename="{filename}"')
    request.setHeader("Cache-Control", "no-store")
    return body
