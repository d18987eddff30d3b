#include "chat/session/validation.hpp"

namespace chat::session {

namespace {

/// Decodes the code point at `pos` and advances past it; nullopt if ill-formed.
std::optional<char32_t> decode(std::string_view text, std::size_t& pos) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(pos);
    if (lead < 0x80) {
        ++pos;
        return lead;
    }
    std::size_t length = 0;
    char32_t value = 0;
    char32_t min = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2, value = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, value = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, value = lead & 0x07, min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (pos + length > text.size()) {
        return std::nullopt;
    }
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(pos + i) & 0xC0) != 0x80) {
            return std::nullopt;
        }
        value = (value << 6) | (byte(pos + i) & 0x3F);
    }
    if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
        return std::nullopt;
    }
    pos += length;
    return value;
}

/// Unicode's White_Space property.
bool is_white_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/// Unicode general category Cc.
bool is_control(char32_t c) {
    return c <= 0x1F || (c >= 0x7F && c <= 0x9F);
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
    for (std::size_t pos = 0; pos < text.size();) {
        if (!decode(text, pos)) {
            return false;
        }
    }
    return true;
}

std::string_view trim_white_space(std::string_view text) {
    std::size_t begin = 0;
    while (begin < text.size()) {
        std::size_t next = begin;
        const auto c = decode(text, next);
        if (!c || !is_white_space(*c)) {
            break;
        }
        begin = next;
    }
    std::size_t end = text.size();
    while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
            --start;
        }
        std::size_t pos = start;
        const auto c = decode(text, pos);
        if (!c || pos != end || !is_white_space(*c)) {
            break;
        }
        end = start;
    }
    return text.substr(begin, end - begin);
}

namespace {

/// What a name of each kind (a user's, a room's) is refused with.
struct NameReasons {
    std::string_view invalid_utf8;
    std::string_view control;
    std::string_view empty;
    std::string_view too_long;
};

/// Why `name` is not a name of at most `max_code_points` after trimming.
std::optional<std::string_view> name_fault(std::string_view name, std::size_t max_code_points,
                                           const NameReasons& reasons) {
    if (!is_valid_utf8(name)) {
        return reasons.invalid_utf8;
    }
    const auto trimmed = trim_white_space(name);
    std::size_t code_points = 0;
    for (std::size_t pos = 0; pos < trimmed.size(); ++code_points) {
        if (is_control(*decode(trimmed, pos))) {
            return reasons.control;
        }
    }
    if (code_points == 0) {
        return reasons.empty;
    }
    if (code_points > max_code_points) {
        return reasons.too_long;
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string_view> name_error(std::string_view name) {
    return name_fault(
        name, max_name_code_points,
        {"invalid name: not valid UTF-8", "invalid name: control characters are not allowed",
         "invalid name: empty", "invalid name: longer than 32 characters"});
}

std::optional<std::string_view> room_error(std::string_view room) {
    if (const auto fault =
            name_fault(room, max_room_code_points,
                       {"bad room: not valid UTF-8", "bad room: control characters are not allowed",
                        "bad room: the name is empty", "bad room: longer than 64 characters"})) {
        return fault;
    }
    if (trim_white_space(room).starts_with('@')) {
        return "bad room: names beginning with @ are reserved";
    }
    return std::nullopt;
}

std::optional<std::string_view> content_error(std::string_view content, std::size_t max_bytes) {
    if (content.size() > max_bytes) {
        return "invalid message: too long";
    }
    if (!is_valid_utf8(content)) {
        return "invalid message: not valid UTF-8";
    }
    if (trim_white_space(content).empty()) {
        return "invalid message: empty";
    }
    return std::nullopt;
}

}  // namespace chat::session
