#pragma once
// The protobuf schema of the wire contract, as text (proto/chat.proto).

#include <string_view>

namespace chat::proto {
/// The text of proto/chat.proto this binary was built from; served at /chat.proto.
extern const std::string_view schema_text;
}  // namespace chat::proto
