#pragma once
// Reads the fields of a ChatRequest straight off the wire, without building
// the message: a load generator must not spend its time decoding the full user
// list every newcomer receives.

#include <cstdint>
#include <optional>
#include <string_view>

namespace chat::bench {

struct FrameView {
    std::string_view user_name;  // field 1
    std::string_view type;       // field 2
    std::string_view content;    // field 3
    std::int64_t timestamp = 0;  // field 5
    std::uint64_t id = 0;        // field 6
    std::string_view room;       // field 9: "" is the lobby (contract v3, rule 17)
};

/// nullopt if `bytes` is not a well-formed ChatRequest encoding.
inline std::optional<FrameView> scan(std::string_view bytes) {
    FrameView view;
    std::size_t pos = 0;
    const auto varint = [&]() -> std::optional<std::uint64_t> {
        std::uint64_t value = 0;
        for (int shift = 0; shift < 64 && pos < bytes.size(); shift += 7) {
            const auto byte = static_cast<unsigned char>(bytes[pos++]);
            value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                return value;
            }
        }
        return std::nullopt;
    };
    while (pos < bytes.size()) {
        const auto tag = varint();
        if (!tag) {
            return std::nullopt;
        }
        const auto field = *tag >> 3;
        switch (*tag & 7) {
            case 0: {
                const auto value = varint();
                if (!value) {
                    return std::nullopt;
                }
                if (field == 5)
                    view.timestamp = static_cast<std::int64_t>(*value);
                if (field == 6)
                    view.id = *value;
                break;
            }
            case 2: {
                const auto length = varint();
                if (!length || *length > bytes.size() - pos) {
                    return std::nullopt;
                }
                const auto text = bytes.substr(pos, *length);
                pos += *length;
                if (field == 1)
                    view.user_name = text;
                if (field == 2)
                    view.type = text;
                if (field == 3)
                    view.content = text;
                if (field == 9)
                    view.room = text;
                break;
            }
            default:
                return std::nullopt;
        }
    }
    return view;
}

}  // namespace chat::bench
