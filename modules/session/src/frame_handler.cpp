#include "chat/session/frame_handler.hpp"

#include <string>

#include "chat/chat.pb.h"
#include "chat/session/validation.hpp"

namespace chat::session {

namespace {
Answer error(std::string_view reason, std::string room = {}) {
    return Answer{"error", reason, std::move(room)};
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
    if (type == "rooms") {
        return Forward{hub::RoomsRequest{peer_}};
    }
    if (type != "message" && type != "history" && type != "join" && type != "leave") {
        return error("unknown type");
    }
    // The room the request names, trimmed ("" is the lobby), or why it
    // cannot be one.
    std::string room;
    if (!request.room().empty()) {
        if (const auto why = room_error(request.room())) {
            return error(*why);
        }
        room = trim_white_space(request.room());
    }
    if (type == "message") {
        if (const auto why = content_error(request.content(), max_content_bytes_)) {
            return error(*why, std::move(room));
        }
        return Forward{hub::Say{peer_, std::move(*request.mutable_content()), std::move(room)}};
    }
    if (type == "history") {
        if (request.id() == 0) {
            return error("invalid history request: id (the oldest id you have) is missing",
                         std::move(room));
        }
        return Forward{hub::HistoryRequest{peer_, request.id(), std::move(room)}};
    }
    // A join or a leave.
    if (room.empty()) {
        return error("bad room: name the room (the lobby is joined by logging in)");
    }
    if (type == "leave") {
        return Forward{hub::Leave{peer_, std::move(room)}};
    }
    // With the id and epoch it last saw there, a client resumes (rule 17).
    return Forward{
        hub::Join{peer_, std::move(room), request.id(), std::move(*request.mutable_epoch())}};
}

}  // namespace chat::session
