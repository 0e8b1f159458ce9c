import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/**
 * An mgpass error: the gRPC code and the stable `reason` of its `google.rpc.ErrorInfo` detail
 * (`USER_NOT_FOUND`, `PERMISSION_DENIED`, ...; see docs/errors.md). Branch on `reason`, not on the
 * message.
 */
export class MgpassError extends Error {
  constructor(
    readonly code: Code,
    readonly reason: string,
    message: string,
    readonly metadata: Record<string, string>,
    override readonly cause: ConnectError,
  ) {
    super(message);
    this.name = "MgpassError";
  }

  /** The code's name as gRPC spells it, e.g. `NOT_FOUND`. */
  get codeName(): string {
    return Code[this.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  }
}

/** Converts any error thrown by a client call into an MgpassError (others pass through). */
export function toMgpassError(err: unknown): MgpassError | unknown {
  if (!(err instanceof ConnectError)) return err;
  const info = err.findDetails(ErrorInfoSchema)[0];
  return new MgpassError(err.code, info?.reason ?? "", err.rawMessage, info?.metadata ?? {}, err);
}

/** Runs a call and rethrows its failure as an MgpassError. */
export async function call<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw toMgpassError(err);
  }
}
