// ChatRequest frames, encoded and decoded by protobuf.js from the schema the
// server serves at /chat.proto: one schema for server and browser.

export function createCodec(protobuf, schemaText) {
  const type = protobuf.parse(schemaText).root.lookupType("chat.ChatRequest");
  return {
    encode(fields) {
      const problem = type.verify(fields);
      if (problem) {
        throw new TypeError(`not a ChatRequest: ${problem}`);
      }
      return type.encode(type.create(fields)).finish();
    },
    // Throws on bytes that are not a ChatRequest. int64/uint64 become numbers:
    // timestamps and ids stay far below 2^53.
    decode(bytes) {
      const message = type.decode(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
      return type.toObject(message, { longs: Number, defaults: true });
    },
  };
}

export async function loadCodec(protobuf, schemaUrl) {
  const response = await fetch(schemaUrl, { cache: "no-cache" });
  if (!response.ok) {
    throw new Error(`the schema at ${schemaUrl} answered ${response.status}`);
  }
  return createCodec(protobuf, await response.text());
}
