/**
 * Node: native gRPC over HTTP/2 (h2c on http:// URLs) by default, or grpc-web over HTTP/1.1.
 * mgpass speaks gRPC and grpc-web (tonic), not the Connect protocol, so those are the two choices.
 */
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Transport } from "@connectrpc/connect";
import { createClients, type MgpassClients } from "./gen/clients.js";
import { credentialInterceptor, type Credential } from "./credentials.js";

export * from "./index.js";
export { TokenVerifier, TokenVerificationError, type VerifierOptions, type VerifiedToken } from "./verifier.js";

export interface NodeOptions {
  /** The mgpass base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** A fixed credential, or a function read before every call (for tokens that refresh). */
  credential?: Credential | (() => Credential | undefined);
  /** `grpc` (default, HTTP/2) or `grpc-web` (HTTP/1.1). */
  protocol?: "grpc" | "grpc-web";
}

/** A transport carrying the credential. */
export function createNodeTransport(options: NodeOptions): Transport {
  const interceptors = [credentialInterceptor(options.credential)];
  if (options.protocol === "grpc-web") {
    return createGrpcWebTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", interceptors });
  }
  return createGrpcTransport({ baseUrl: options.baseUrl, interceptors });
}

/** Every service's client over gRPC (or grpc-web). */
export function createNodeClients(options: NodeOptions): MgpassClients {
  return createClients(createNodeTransport(options));
}
