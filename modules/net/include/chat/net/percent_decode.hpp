#pragma once
// URL percent-decoding ("%40" as "@"), for request paths and for the user
// and password of a redis:// URL.

#include <optional>
#include <string>
#include <string_view>

namespace chat::net {

/// `text` with each "%XX" (two hexadecimal digits) replaced by its byte;
/// nullopt when a '%' is not followed by two hexadecimal digits.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace chat::net
