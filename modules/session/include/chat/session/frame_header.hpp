#pragma once
// The header a server puts before each message it sends (RFC 6455, 5.2).

#include <array>
#include <cstddef>
#include <cstdint>

namespace chat::session {

/// A final, unmasked binary frame's header: 2, 4 or 10 bytes.
struct FrameHeader {
    std::array<std::uint8_t, 10> bytes{};
    std::size_t size = 0;

    FrameHeader() noexcept = default;  // none yet: a place to assign one to
    explicit FrameHeader(std::uint64_t payload_size) noexcept {
        bytes[0] = 0x82;  // FIN, opcode 2 (binary)
        if (payload_size < 126) {
            bytes[1] = static_cast<std::uint8_t>(payload_size);
            size = 2;
        } else if (payload_size <= 0xFFFF) {
            bytes[1] = 126;
            put_big_endian(payload_size, 2);
            size = 4;
        } else {
            bytes[1] = 127;
            put_big_endian(payload_size, 8);
            size = 10;
        }
    }

  private:
    void put_big_endian(std::uint64_t value, std::size_t length) noexcept {
        for (std::size_t i = 0; i < length; ++i) {
            bytes[1 + length - i] = static_cast<std::uint8_t>(value >> (8 * i));
        }
    }
};

}  // namespace chat::session
