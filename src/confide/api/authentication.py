"""gRPC adapter for the authentication API and its internal token check (no logic here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf import empty_pb2

from ..errors import Code, ServiceError
from ..rpc._gen import teaclave_authentication_service_pb2 as pb
from ..rpc._gen import teaclave_authentication_service_pb2_grpc as pb_grpc
from ..services._identity import Principal
from ..services.authentication import AuthenticationService
from ..services.frontend import peer_ip
from ._serving import metadata_value

__all__ = ["add_authentication_servicers"]

T = TypeVar("T")


class _Api(pb_grpc.TeaclaveAuthenticationApiServicer):
    def __init__(self, service: AuthenticationService) -> None:
        self._s = service

    def _caller(self, context: grpc.aio.ServicerContext) -> Principal:
        user_id = metadata_value(context, "id")
        if not user_id:
            raise ServiceError(Code.UNAUTHENTICATED, "missing user id")
        token = metadata_value(context, "token")
        if not token:
            raise ServiceError(Code.UNAUTHENTICATED, "missing token")
        return self._s.authenticate(user_id, token)

    def _as(self, context: grpc.aio.ServicerContext, fn: Callable[[Principal], T]) -> T:
        return fn(self._caller(context))

    def UserLogin(self, request: pb.UserLoginRequest, context: grpc.aio.ServicerContext
                  ) -> pb.UserLoginResponse:
        return pb.UserLoginResponse(token=self._s.login(request.id, request.password,
                                                        ip=peer_ip(context.peer())))

    def UserRegister(self, request: pb.UserRegisterRequest, context: grpc.aio.ServicerContext
                     ) -> empty_pb2.Empty:
        self._as(context, lambda who: self._s.register(
            who, request.id, request.password, request.role, request.attribute))
        return empty_pb2.Empty()

    def UserUpdate(self, request: pb.UserUpdateRequest, context: grpc.aio.ServicerContext
                   ) -> empty_pb2.Empty:
        self._as(context, lambda who: self._s.update(
            who, request.id, request.password, request.role, request.attribute))
        return empty_pb2.Empty()

    def UserChangePassword(self, request: pb.UserChangePasswordRequest,
                           context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        self._as(context, lambda who: self._s.change_password(who, request.password))
        return empty_pb2.Empty()

    def ResetUserPassword(self, request: pb.ResetUserPasswordRequest,
                          context: grpc.aio.ServicerContext) -> pb.ResetUserPasswordResponse:
        password = self._as(context, lambda who: self._s.reset_password(who, request.id))
        return pb.ResetUserPasswordResponse(password=password)

    def DeleteUser(self, request: pb.DeleteUserRequest, context: grpc.aio.ServicerContext
                   ) -> empty_pb2.Empty:
        self._as(context, lambda who: self._s.delete(who, request.id))
        return empty_pb2.Empty()

    def ListUsers(self, request: pb.ListUsersRequest, context: grpc.aio.ServicerContext
                  ) -> pb.ListUsersResponse:
        ids = self._as(context, lambda who: self._s.list_users(who, request.id))
        return pb.ListUsersResponse(ids=ids)


class _Internal(pb_grpc.TeaclaveAuthenticationInternalServicer):
    def __init__(self, service: AuthenticationService) -> None:
        self._s = service

    def UserAuthenticate(self, request: pb.UserAuthenticateRequest,
                         context: grpc.aio.ServicerContext) -> pb.UserAuthenticateResponse:
        cred = request.credential
        who = self._s.authenticate(cred.id, cred.token)
        return pb.UserAuthenticateResponse(claims=pb.UserAuthClaims(
            sub=who.user_id, role=who.role.canonical, iss="Teaclave"))


def add_authentication_servicers(service: AuthenticationService, server: grpc.aio.Server,
                                 *, internal: bool) -> tuple[str, ...]:
    """Serve the authentication API (and the internal token check); their full names."""
    pb_grpc.add_TeaclaveAuthenticationApiServicer_to_server(_Api(service), server)
    names = ["TeaclaveAuthenticationApi"]
    if internal:
        pb_grpc.add_TeaclaveAuthenticationInternalServicer_to_server(_Internal(service), server)
        names.append("TeaclaveAuthenticationInternal")
    return tuple(pb.DESCRIPTOR.services_by_name[n].full_name for n in names)
