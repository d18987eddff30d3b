#include "chat/session/frame_handler.hpp"

#include <string>

#include "chat/chat.pb.h"
#include "chat/session/validation.hpp"

namespace chat::session {

namespace {
Answer error(std::string_view reason) {
    return Answer{"error", reason};
}
}  // namespace

FrameHandler::FrameHandler(hub::PeerId peer, const Limits& limits) noexcept
    : peer_(peer),
      max_content_bytes_(limits.max_content_bytes),
      limiter_(limits.rate, limits.burst, limits.flood_limit) {}

std::optional<Disconnect> FrameHandler::handle_control(RateLimiter::Clock::time_point now) {
    if (limiter_.admit(now) == RateLimiter::Verdict::disconnect) {
        return Disconnect{proto::CloseCode::policy_violation, metrics::DropReason::flooding};
    }
    return std::nullopt;
}

Action FrameHandler::handle(std::string_view frame, RateLimiter::Clock::time_point now) {
    switch (limiter_.admit(now)) {
        case RateLimiter::Verdict::accept:
            break;
        case RateLimiter::Verdict::reject:
            return error("rate limited: slow down");
        case RateLimiter::Verdict::disconnect:
            return Disconnect{proto::CloseCode::policy_violation, metrics::DropReason::flooding};
    }

    ChatRequest request;
    if (!request.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
        return error("malformed frame: not a ChatRequest");
    }
    const std::string& type = request.type();
    if (type == "heartbeat") {
        return Answer{"heartbeat", {}};
    }
    if (type == "logout") {
        return Disconnect{proto::CloseCode::normal, std::nullopt};
    }
    if (type == "login") {
        if (const auto why = name_error(request.user_name())) {
            return error(*why);
        }
        // With the id and epoch it last saw, a client resumes (rule 13).
        hub::Login login{peer_, std::string(trim_white_space(request.user_name())), request.id(),
                         std::move(*request.mutable_epoch())};
        return Forward{std::move(login)};
    }
    if (type == "message") {
        if (const auto why = content_error(request.content(), max_content_bytes_)) {
            return error(*why);
        }
        hub::Say say{peer_, std::move(*request.mutable_content())};
        return Forward{std::move(say)};
    }
    if (type == "history") {
        if (request.id() == 0) {
            return error("invalid history request: id (the oldest id you have) is missing");
        }
        hub::HistoryRequest older{peer_, request.id()};
        return Forward{older};
    }
    return error("unknown type");
}

}  // namespace chat::session
