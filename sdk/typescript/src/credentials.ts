import type { Interceptor } from "@connectrpc/connect";

/**
 * How calls authenticate. A user's or application's access token and a personal or organization
 * API key (`mgp_...`) both travel as `Authorization: Bearer`; a loyalty partner key travels as
 * `X-API-Key`.
 */
export type Credential =
  | { accessToken: string }
  | { apiKey: string }
  | { partnerKey: string };

/** An interceptor that adds the credential's header to every call (none without a credential). */
export function credentialInterceptor(credential?: Credential | (() => Credential | undefined)): Interceptor {
  return (next) => async (req) => {
    const current = typeof credential === "function" ? credential() : credential;
    if (current && "accessToken" in current) req.header.set("authorization", `Bearer ${current.accessToken}`);
    else if (current && "apiKey" in current) req.header.set("authorization", `Bearer ${current.apiKey}`);
    else if (current && "partnerKey" in current) req.header.set("x-api-key", current.partnerKey);
    return next(req);
  };
}
