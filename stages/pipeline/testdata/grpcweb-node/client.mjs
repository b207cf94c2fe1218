// A grpc-web client as browsers' apps use one (protobuf-ts's fetch
// transport), calling grpc.testing.TestService through the gateway:
//   node client.mjs <base URL> <binary|text>
// It prints one JSON line of what it got; the Go test checks it.
import { MessageType, ScalarType, RepeatType } from "@protobuf-ts/runtime";
import { ServiceType, RpcError } from "@protobuf-ts/runtime-rpc";
import { GrpcWebFetchTransport } from "@protobuf-ts/grpcweb-transport";

// The interop messages, declared by field number (no code generation).
const Payload = new MessageType("grpc.testing.Payload", [
  { no: 2, name: "body", kind: "scalar", T: ScalarType.BYTES },
]);
const SimpleRequest = new MessageType("grpc.testing.SimpleRequest", [
  { no: 3, name: "payload", kind: "message", T: () => Payload },
]);
const SimpleResponse = new MessageType("grpc.testing.SimpleResponse", [
  { no: 1, name: "payload", kind: "message", T: () => Payload },
]);
const ResponseParameters = new MessageType("grpc.testing.ResponseParameters", [
  { no: 1, name: "size", kind: "scalar", T: ScalarType.INT32 },
]);
const StreamingOutputCallRequest = new MessageType("grpc.testing.StreamingOutputCallRequest", [
  { no: 2, name: "response_parameters", kind: "message", repeat: RepeatType.UNPACKED, T: () => ResponseParameters },
]);
const StreamingOutputCallResponse = new MessageType("grpc.testing.StreamingOutputCallResponse", [
  { no: 1, name: "payload", kind: "message", T: () => Payload },
]);
const TestService = new ServiceType("grpc.testing.TestService", [
  { name: "UnaryCall", options: {}, I: SimpleRequest, O: SimpleResponse },
  { name: "StreamingOutputCall", serverStreaming: true, options: {}, I: StreamingOutputCallRequest, O: StreamingOutputCallResponse },
]);

const [baseUrl, format] = process.argv.slice(2);
const transport = new GrpcWebFetchTransport({ baseUrl, format });
const opts = transport.mergeOptions({ timeout: 10000 });
const [unary, stream] = TestService.methods;
const enc = new TextEncoder(), dec = new TextDecoder();
const out = {};

const u = transport.unary(unary, { payload: { body: enc.encode("hello web") } }, opts);
out.unary = dec.decode((await u.response).payload.body);
out.unaryStatus = (await u.status).code;

const s = transport.serverStreaming(stream, { responseParameters: Array.from({ length: 50 }, (_, i) => ({ size: 100 + i })) }, opts);
out.streamSizes = [];
for await (const m of s.responses) out.streamSizes.push(m.payload.body.length);
out.streamStatus = (await s.status).code;

try {
  await transport.unary(unary, { payload: { body: enc.encode("deny") } }, opts).response;
  out.denied = "no error";
} catch (e) {
  out.denied = e instanceof RpcError ? `${e.code}: ${e.message}` : String(e);
}
console.log(JSON.stringify(out));
