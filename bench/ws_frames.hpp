#pragma once
// WebSocket frames (RFC 6455, 5.2) read and written straight on the socket,
// below Beast. A measured client reads and writes every message through
// these: one read system call brings many frames and one write carries a
// batch of them, where a Beast operation per message would cost the load
// generator an asynchronous operation each and make it, not the server,
// the bottleneck. Beast still does the handshake and the closing handshake.
//
// next() and append() run once per frame: they are defined here, to be
// inlined into the client's loops, and allocate nothing once the buffers
// have grown.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "chat/net/asio.hpp"

namespace chat::bench {

/// The opcodes a client meets (RFC 6455, 5.2).
namespace opcode {
constexpr int binary = 0x2;  // every chat message (docs/protocol.md)
constexpr int close = 0x8;   // its payload starts with a 2-byte close code
constexpr int ping = 0x9;    // the server's keep-alive: answered with a pong
constexpr int pong = 0xA;
}  // namespace opcode

/// Close codes a client records for itself (RFC 6455, 7.4.1).
constexpr int close_code_absent = 1005;    // a close frame without a code
constexpr int close_code_abnormal = 1006;  // the connection ended without a close frame

struct Frame {
    bool fin;  // the last frame of its message
    int opcode;
    std::string_view payload;  // unmasked: the server does not mask
};

/// The frames a server sent, parsed where they were read.
class FrameReader {
  public:
    /// The next whole frame among the bytes read, if one is there. The
    /// previous frame's bytes are released first: a payload stays valid
    /// until the next call to next() or room().
    std::optional<Frame> next() {
        begin_ += std::exchange(consumed_, 0);
        const auto size = end_ - begin_;
        if (size < 2) {
            return std::nullopt;
        }
        const char* const data = in_.data() + begin_;
        const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(data[i]); };
        std::size_t header = 2;
        std::uint64_t length = byte(1) & 0x7F;
        if (length == 126) {
            header = 4;
            if (size < header)
                return std::nullopt;
            length = (std::uint64_t{byte(2)} << 8) | byte(3);
        } else if (length == 127) {
            header = 10;
            if (size < header)
                return std::nullopt;
            length = 0;
            for (std::size_t i = 2; i < 10; ++i) {
                length = (length << 8) | byte(i);
            }
        }
        if (size < header + length) {
            return std::nullopt;
        }
        consumed_ = header + static_cast<std::size_t>(length);
        return Frame{(byte(0) & 0x80) != 0, byte(0) & 0x0F,
                     std::string_view(data + header, static_cast<std::size_t>(length))};
    }

    /// Room to read into, after the unparsed bytes (moved to the front).
    /// Not zero-filled again for each read: that cost more than the read.
    asio::mutable_buffer room();

    /// `n` bytes were read into room().
    void filled(std::size_t n) { end_ += n; }

  private:
    std::vector<char> in_;      // bytes read, not yet parsed, up to end_; then room
    std::size_t begin_ = 0;     // where the unparsed bytes of in_ start
    std::size_t end_ = 0;       // where they end
    std::size_t consumed_ = 0;  // bytes the frame next() returned used, from begin_
};

/// The frames a client sends: gathered, then written in one go.
class FrameWriter {
  public:
    /// Appends a frame as a client must send it: masked (RFC 6455, 5.3),
    /// each with a fresh key.
    void append(int opcode, std::string_view payload) {
        out_.push_back(static_cast<char>(0x80 | opcode));
        const auto size = payload.size();
        if (size < 126) {
            out_.push_back(static_cast<char>(0x80 | size));
        } else if (size <= 0xFFFF) {
            out_.push_back(static_cast<char>(0x80 | 126));
            out_.push_back(static_cast<char>(size >> 8));
            out_.push_back(static_cast<char>(size & 0xFF));
        } else {
            out_.push_back(static_cast<char>(0x80 | 127));
            for (int shift = 56; shift >= 0; shift -= 8) {
                out_.push_back(
                    static_cast<char>((static_cast<std::uint64_t>(size) >> shift) & 0xFF));
            }
        }
        mask_state_ ^= mask_state_ << 13;  // xorshift32: a fresh key per frame
        mask_state_ ^= mask_state_ >> 17;
        mask_state_ ^= mask_state_ << 5;
        const std::array<char, 4> key{
            static_cast<char>(mask_state_), static_cast<char>(mask_state_ >> 8),
            static_cast<char>(mask_state_ >> 16), static_cast<char>(mask_state_ >> 24)};
        out_.append(key.data(), key.size());
        const auto start = out_.size();
        out_.append(payload);
        for (std::size_t i = 0; i < size; ++i) {
            out_[start + i] = static_cast<char>(out_[start + i] ^ key[i % 4]);
        }
    }

    /// Writes what was appended, and what is appended meanwhile; false if
    /// the connection broke.
    awaitable<bool> flush(asio::ip::tcp::socket& socket);

    /// A write is under way: nothing else may go onto the socket now
    /// (Beast's close frame included).
    bool flushing() const { return flushing_; }

  private:
    std::string out_;   // frames to write
    std::string wire_;  // frames being written
    bool flushing_ = false;
    std::uint32_t mask_state_ = 0x9E3779B9u;
};

}  // namespace chat::bench
