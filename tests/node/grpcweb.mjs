// An independent grpc-web client: connect-web's grpc-web transport (the browser library) run in
// Node, with the service schema loaded at run time from the server's descriptor set.
//
//   node grpcweb.mjs BASE_URL DESCRIPTOR_SET_FILE TOKEN list|get [USER_ID]
//
// Prints one JSON object: {"emails": [...]} for list, {"user": ...} or {"code": "..."} for get.
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

const [baseUrl, fdsPath, token, action, arg] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(fdsPath)));
const UserService = registry.getService("mgpass.identity.v1.UserService");
const transport = createGrpcWebTransport({ baseUrl });
const client = createClient(UserService, transport);
const headers = { authorization: `Bearer ${token}` };

try {
  if (action === "list") {
    const res = await client.listUsers({ pageSize: 100 }, { headers });
    console.log(JSON.stringify({ emails: res.users.map((u) => u.email) }));
  } else if (action === "get") {
    const res = await client.getUser({ userId: arg }, { headers });
    console.log(JSON.stringify({ user: { id: res.user.id, email: res.user.email } }));
  } else {
    throw new Error(`unknown action ${action}`);
  }
} catch (err) {
  if (err instanceof ConnectError) {
    // Code names in snake_case, as the gRPC spec spells them.
    const name = Code[err.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());
    console.log(JSON.stringify({ code: name, message: err.rawMessage }));
  } else {
    console.error(err);
    process.exit(1);
  }
}
