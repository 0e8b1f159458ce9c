"""mgpass: typed gRPC stubs for every mgpass service, sync and asyncio clients, and a token verifier.

The generated modules keep the proto packages' names: ``mgpass.identity.v1.user_pb2`` and so on.
"""

__version__ = "0.1.0"
