"""Typed mgpass errors: the gRPC code plus the stable reason of the ``google.rpc.ErrorInfo`` detail."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class MgpassError(grpc.RpcError):
    """A failed mgpass call. Branch on ``reason`` (``USER_NOT_FOUND``, ``PERMISSION_DENIED``, ...;
    see docs/errors.md), not on the message. Still a ``grpc.RpcError``, so existing handlers work."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str, metadata: dict[str, str]) -> None:
        super().__init__(f"{code.name} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = metadata

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> MgpassError:
        """Reads the code, message and ErrorInfo of a sync or asyncio ``RpcError``."""
        if isinstance(error, MgpassError):
            return error
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        reason, metadata = "", {}
        trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        for key, value in trailers or ():
            if key == _DETAILS_KEY:
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    info = error_details_pb2.ErrorInfo()
                    if detail.Unpack(info):
                        reason, metadata = info.reason, dict(info.metadata)
                        break
        return cls(code, reason, message or "", metadata)
