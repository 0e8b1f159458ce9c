/** Browsers: grpc-web over fetch, which mgpass serves on its one port. */
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Transport } from "@connectrpc/connect";
import { createClients, type MgpassClients } from "./gen/clients.js";
import { credentialInterceptor, type Credential } from "./credentials.js";

export * from "./index.js";

export interface WebOptions {
  /** The mgpass base URL, e.g. `https://id.example.com`. */
  baseUrl: string;
  /** A fixed credential, or a function read before every call (for tokens that refresh). */
  credential?: Credential | (() => Credential | undefined);
}

/** A grpc-web transport carrying the credential. */
export function createWebTransport(options: WebOptions): Transport {
  return createGrpcWebTransport({ baseUrl: options.baseUrl, interceptors: [credentialInterceptor(options.credential)] });
}

/** Every service's client over grpc-web. */
export function createWebClients(options: WebOptions): MgpassClients {
  return createClients(createWebTransport(options));
}
