#pragma once
// What a connection's reader does with one binary frame from its client:
// rate-limit, decode, check against the contract, and decide. No socket here,
// so it is unit-tested and fuzzed as it is.

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_queue.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/session/rate_limiter.hpp"

namespace chat::session {

/// Hand this command to the hub.
struct Forward {
    hub::Command command;
};

/// Answer this client only, with a frame of `type` ("error" or "heartbeat"),
/// about `room` (an error answering a request that named a valid room).
struct Answer {
    std::string_view type;
    std::string_view content;
    std::string room = {};
};

/// End the connection with a close frame of `code`.
struct Disconnect {
    proto::CloseCode code;
    std::optional<metrics::DropReason> reason;  // set when the server drops an unwanted client
};

using Action = std::variant<Forward, Answer, Disconnect>;

class FrameHandler {
  public:
    struct Limits {
        std::size_t max_content_bytes = 4096;
        double rate = 20;
        double burst = 40;
        unsigned flood_limit = 200;
    };

    FrameHandler(hub::PeerId peer, const Limits& limits) noexcept;

    /// The action for one binary frame. An Answer's views stay valid as long as
    /// this handler (they point to constant text).
    Action handle(std::string_view frame, RateLimiter::Clock::time_point now);

    /// A ping or pong the client sent: it takes a token like any frame (rule
    /// 7), gets no error frame when over the limit, and counts toward the
    /// flood limit; the Disconnect when that is reached.
    std::optional<Disconnect> handle_control(RateLimiter::Clock::time_point now);

  private:
    hub::PeerId peer_;
    std::size_t max_content_bytes_;
    RateLimiter limiter_;
};

}  // namespace chat::session
