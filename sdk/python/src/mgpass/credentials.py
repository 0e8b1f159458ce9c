"""Credentials as call metadata, added to every call by a channel interceptor.

An access token and a personal or organization API key (``mgp_...``) travel as
``authorization: Bearer``; a loyalty partner key as ``x-api-key``. Every failure is re-raised as
an :class:`~mgpass.errors.MgpassError`.
"""

from __future__ import annotations

import collections
import typing

import grpc
import grpc.aio

from mgpass.errors import MgpassError


class Credential(typing.NamedTuple):
    """One of: ``Credential.access_token(t)``, ``Credential.api_key(k)``, ``Credential.partner_key(k)``."""

    header: str
    value: str

    @classmethod
    def access_token(cls, token: str) -> Credential:
        return cls("authorization", f"Bearer {token}")

    @classmethod
    def api_key(cls, key: str) -> Credential:
        return cls("authorization", f"Bearer {key}")

    @classmethod
    def partner_key(cls, key: str) -> Credential:
        return cls("x-api-key", key)


CredentialSource = typing.Union[Credential, typing.Callable[[], typing.Optional[Credential]], None]


def _metadata(details: typing.Any, credential: CredentialSource) -> list[tuple[str, str]]:
    metadata = list(details.metadata or [])
    current = credential() if callable(credential) else credential
    if current is not None:
        metadata.append((current.header, current.value))
    return metadata


class _Details(
    collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class SyncInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the credential; turns failures of unary calls into MgpassError."""

    def __init__(self, credential: CredentialSource) -> None:
        self._credential = credential

    def _details(self, details: typing.Any) -> _Details:
        return _Details(details.method, details.timeout, _metadata(details, self._credential),
                        details.credentials, getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        outcome = continuation(self._details(client_call_details), request)
        error = outcome.exception()
        if isinstance(error, grpc.RpcError):
            raise MgpassError.from_rpc_error(error) from error
        return outcome

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details), request)


class AsyncInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """The asyncio twin of :class:`SyncInterceptor`."""

    def __init__(self, credential: CredentialSource) -> None:
        self._credential = credential

    def _details(self, details: typing.Any) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(details.method, details.timeout, _metadata(details, self._credential),
                                          details.credentials, details.wait_for_ready)

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        call = await continuation(self._details(client_call_details), request)
        try:
            await call
        except grpc.aio.AioRpcError as error:
            raise MgpassError.from_rpc_error(error) from error
        return call

    async def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._details(client_call_details), request)
