"""Sync and asyncio clients: one channel with the credential attached, and every service's stub.

    with mgpass.Client("127.0.0.1:8080", credential=Credential.access_token(token)) as client:
        client.identity.profile.GetMyProfile(profile_service_pb2.GetMyProfileRequest())
"""

from __future__ import annotations

import typing

import grpc
import grpc.aio

from mgpass._stubs import AsyncStubs, Stubs
from mgpass.credentials import AsyncInterceptor, CredentialSource, SyncInterceptor


def _target(endpoint: str) -> tuple[str, bool]:
    """``http://host:port`` -> (``host:port``, plaintext); ``https://`` -> TLS; bare ``host:port`` is plaintext."""
    if endpoint.startswith("https://"):
        return endpoint.removeprefix("https://").rstrip("/"), False
    return endpoint.removeprefix("http://").rstrip("/"), True


class Client(Stubs):
    """A blocking client. ``endpoint`` is ``http://host:port``, ``https://host`` or ``host:port``."""

    def __init__(self, endpoint: str, credential: CredentialSource = None,
                 root_certificates: typing.Optional[bytes] = None) -> None:
        target, plaintext = _target(endpoint)
        channel = (grpc.insecure_channel(target) if plaintext
                   else grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates)))
        self.channel = grpc.intercept_channel(channel, SyncInterceptor(credential))
        self._raw = channel
        super().__init__(self.channel)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(AsyncStubs):
    """An asyncio client; use ``async with``."""

    def __init__(self, endpoint: str, credential: CredentialSource = None,
                 root_certificates: typing.Optional[bytes] = None) -> None:
        target, plaintext = _target(endpoint)
        interceptors = [AsyncInterceptor(credential)]
        self.channel = (grpc.aio.insecure_channel(target, interceptors=interceptors) if plaintext
                        else grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(root_certificates),
                                                     interceptors=interceptors))
        super().__init__(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
