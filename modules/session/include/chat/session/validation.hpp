#pragma once
// The contract's rules on names and message contents (rules 2 and 5), as pure
// functions on bytes.

#include <cstddef>
#include <optional>
#include <string_view>

namespace chat::session {

inline constexpr std::size_t max_name_code_points = 32;
inline constexpr std::size_t max_room_code_points = 64;

/// Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text);

/// `text` (valid UTF-8) without Unicode White_Space at either end.
std::string_view trim_white_space(std::string_view text);

/// Why `name` (as the client sent it) cannot be a user name, or nullopt if it can;
/// then the name to store is trim_white_space(name).
std::optional<std::string_view> name_error(std::string_view name);

/// Why `room` (as the client sent it, not empty) cannot name a room (rule
/// 17), or nullopt if it can; then the room is trim_white_space(room). The
/// reason contains "bad room".
std::optional<std::string_view> room_error(std::string_view room);

/// Why `content` cannot be broadcast, or nullopt if it can (as sent).
std::optional<std::string_view> content_error(std::string_view content, std::size_t max_bytes);

}  // namespace chat::session
