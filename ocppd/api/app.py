"""
The Klein application behind the web listener. Routes live on a class with
their collaborators injected (Klein's "non-global state" pattern).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from klein import Klein
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ocppd.api.accounts import Accounts
from ocppd.api.commands import CommandService
from ocppd.api.errors import FORBIDDEN, ApiError
from ocppd.api.http import read_json_object, string_field, write_error, write_json
from ocppd.store.records import UserRecord


def user_json(user: UserRecord) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role}


class Api:
    app = Klein()
    log = Logger()

    def __init__(self, *, accounts: Accounts, commands: CommandService) -> None:
        self.accounts = accounts
        self.commands = commands

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

    @app.handle_errors(MethodNotAllowed)
    def method_not_allowed(self, request: IRequest, failure: Failure) -> bytes:
        return write_error(request, ApiError(405, "method_not_allowed", "method not allowed"))

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
        return self.accounts.authenticate(request.getHeader("authorization"))

    @inlineCallbacks
    def admin(self, request: IRequest) -> Generator[Deferred[Any], Any, UserRecord]:
        user = yield self.user(request)
        if user.role != "admin":
            raise FORBIDDEN
        return user

    # -- accounts ---------------------------------------------------------------

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
        yield self.accounts.logout(request.getHeader("authorization"))
        return write_json(request, 200, {"loggedOut": True})

    @app.route("/api/auth/me", methods=["GET"])
    @inlineCallbacks
    def me(self, request: IRequest) -> Generator[Deferred[Any], Any, bytes]:
        user = yield self.user(request)
        return write_json(request, 200, {"user": user_json(user)})

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
