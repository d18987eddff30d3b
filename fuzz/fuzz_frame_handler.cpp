// libFuzzer target: bytes in as client frames, through decode, validation
// and rate limiting, to the action and the hub command the session would act
// on. The input is split at 0xFF bytes into up to 64 frames (0xFF never
// starts a valid protobuf field, so seeds stay readable), sent 10 ms apart
// so that both the rate limiter's refusals and its refills are reached.
// Checked: every command the hub would get is one the contract allows.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "chat/session/frame_handler.hpp"
#include "chat/session/validation.hpp"

namespace {

using chat::session::Answer;
using chat::session::Disconnect;
using chat::session::Forward;

void require(bool condition) {
    if (!condition) {
        std::abort();  // libFuzzer saves the input that got here
    }
}

/// Rule 17: "" (the lobby), or a valid room name, already trimmed.
void require_room(const std::string& room, bool lobby_allowed) {
    if (room.empty()) {
        require(lobby_allowed);
        return;
    }
    require(!chat::session::room_error(room).has_value());
    require(chat::session::trim_white_space(room) == room);
}

void check(const chat::session::Action& action, std::size_t max_content_bytes) {
    if (const auto* forward = std::get_if<Forward>(&action)) {
        if (const auto* login = std::get_if<chat::hub::Login>(&forward->command)) {
            // Rule 2: the hub only ever sees a valid name, already trimmed.
            require(login->from == 1);
            require(!chat::session::name_error(login->name).has_value());
            require(chat::session::trim_white_space(login->name) == login->name);
        } else if (const auto* say = std::get_if<chat::hub::Say>(&forward->command)) {
            // Rule 5: valid UTF-8, not blank, within the limit.
            require(say->from == 1);
            require(!chat::session::content_error(say->content, max_content_bytes));
            require_room(say->room, true);
        } else if (const auto* older = std::get_if<chat::hub::HistoryRequest>(&forward->command)) {
            // Rule 14: only with an id to read below.
            require(older->from == 1 && older->before > 0);
            require_room(older->room, true);
        } else if (const auto* join = std::get_if<chat::hub::Join>(&forward->command)) {
            require(join->from == 1);
            require_room(join->room, false);
        } else if (const auto* leave = std::get_if<chat::hub::Leave>(&forward->command)) {
            require(leave->from == 1);
            require_room(leave->room, false);
        }  // else RoomsRequest, or the session's own Register/Unregister: no client bytes in them
    } else if (const auto* answer = std::get_if<Answer>(&action)) {
        require(answer->type == "error" || answer->type == "heartbeat");
    } else {
        const auto& disconnect = std::get<Disconnect>(action);
        require(static_cast<int>(disconnect.code) >= 1000);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t max_content_bytes = 4096;
    chat::session::FrameHandler handler(1, {max_content_bytes, 20, 40, 200});
    auto now = chat::session::RateLimiter::Clock::time_point{} + std::chrono::hours(1);
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::size_t start = 0;
    for (int frames = 0; frames < 64 && start <= input.size(); ++frames) {
        const auto end = input.find('\xff', start);
        const auto frame = input.substr(start, end == std::string_view::npos ? end : end - start);
        check(handler.handle(frame, now), max_content_bytes);
        now += std::chrono::milliseconds(10);
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    return 0;
}
