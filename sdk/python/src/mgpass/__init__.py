"""mgpass: typed gRPC stubs for every mgpass service, sync and asyncio clients, and a token verifier.

The generated modules keep the proto packages' names: ``mgpass.identity.v1.user_pb2`` and so on.
"""

from mgpass.client import AsyncClient, Client
from mgpass.credentials import Credential
from mgpass.errors import MgpassError
from mgpass.verifier import TokenVerificationError, TokenVerifier

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Client", "Credential", "MgpassError", "TokenVerificationError", "TokenVerifier", "__version__"]
