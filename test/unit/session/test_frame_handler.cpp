// What the reader does with one frame: rules 1-7 as far as a session decides them.
#include <boost/test/unit_test.hpp>

#include "chat/chat.pb.h"
#include "chat/session/frame_handler.hpp"

using namespace chat;
using namespace chat::session;

namespace {

const auto now = RateLimiter::Clock::time_point{} + std::chrono::hours(1);

std::string frame(std::string_view type, std::string_view name = {},
                  std::string_view content = {}) {
    ChatRequest request;
    request.set_type(std::string(type));
    request.set_user_name(std::string(name));
    request.set_content(std::string(content));
    return request.SerializeAsString();
}

FrameHandler handler(FrameHandler::Limits limits = {}) {
    return FrameHandler(7, limits);
}

std::string error_of(const Action& action) {
    const auto* answer = std::get_if<Answer>(&action);
    BOOST_TEST_REQUIRE(answer != nullptr);
    BOOST_TEST_REQUIRE(answer->type == "error");
    return std::string(answer->content);
}

/// The command forwarded to the hub, which must be a `Request`.
template <typename Request>
const Request& forwarded(const Action& action) {
    const auto* forward = std::get_if<Forward>(&action);
    BOOST_TEST_REQUIRE(forward != nullptr);
    const auto* request = std::get_if<Request>(&forward->command);
    BOOST_TEST_REQUIRE(request != nullptr);
    return *request;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(frame_handler)

BOOST_AUTO_TEST_CASE(garbage_and_empty_frames_get_errors) {
    auto h = handler();
    BOOST_TEST(error_of(h.handle("\xFF\xFF\xFF\xFF", now)).find("malformed") != std::string::npos);
    BOOST_TEST(error_of(h.handle("", now)).find("unknown type") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_types_get_errors_and_types_are_case_sensitive) {
    auto h = handler();
    for (const auto* type : {"error", "Login", "MESSAGE", "hello", "login "}) {
        BOOST_TEST(error_of(h.handle(frame(type, "ann", "hi"), now)).find("unknown type") !=
                   std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(heartbeat_is_answered_and_logout_closes_normally) {
    auto h = handler();
    const auto heartbeat = h.handle(frame("heartbeat"), now);
    BOOST_TEST_REQUIRE(std::holds_alternative<Answer>(heartbeat));
    BOOST_TEST(std::get<Answer>(heartbeat).type == "heartbeat");
    const auto logout = h.handle(frame("logout"), now);
    BOOST_TEST_REQUIRE(std::holds_alternative<Disconnect>(logout));
    BOOST_TEST((std::get<Disconnect>(logout).code == proto::CloseCode::normal));
    BOOST_TEST(!std::get<Disconnect>(logout).reason.has_value());
}

BOOST_AUTO_TEST_CASE(login_forwards_the_trimmed_name) {
    auto h = handler();
    const auto action = h.handle(frame("login", "  Ann \t"), now);
    const auto& login = forwarded<hub::Login>(action);
    BOOST_TEST(login.from == 7u);
    BOOST_TEST(login.name == "Ann");
    BOOST_TEST(error_of(h.handle(frame("login", "   "), now)).find("invalid name") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(message_forwards_the_content_exactly_as_sent) {
    auto h = handler();
    const auto action = h.handle(frame("message", {}, "  hi <b>there</b> \n"), now);
    const auto& message = forwarded<hub::Say>(action);
    BOOST_TEST(message.content == "  hi <b>there</b> \n");
    BOOST_TEST(error_of(h.handle(frame("message", {}, " \n "), now)).find("empty") !=
               std::string::npos);
    BOOST_TEST(
        error_of(h.handle(frame("message", {}, std::string(4097, 'x')), now)).find("too long") !=
        std::string::npos);
    forwarded<hub::Say>(h.handle(frame("message", {}, std::string(4096, 'x')), now));
}

BOOST_AUTO_TEST_CASE(the_content_limit_is_configurable) {
    auto h = handler({.max_content_bytes = 10});
    forwarded<hub::Say>(h.handle(frame("message", {}, std::string(10, 'x')), now));
    error_of(h.handle(frame("message", {}, std::string(11, 'x')), now));
}

BOOST_AUTO_TEST_CASE(rate_limit_then_flood_close) {
    auto h = handler({.rate = 20, .burst = 5, .flood_limit = 3});
    for (int i = 0; i < 5; ++i) {
        std::get<Answer>(h.handle(frame("heartbeat"), now));
    }
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(error_of(h.handle(frame("heartbeat"), now)).find("rate limited") !=
                   std::string::npos);
    }
    const auto last = h.handle(frame("heartbeat"), now);
    BOOST_TEST_REQUIRE(std::holds_alternative<Disconnect>(last));
    BOOST_TEST((std::get<Disconnect>(last).code == proto::CloseCode::policy_violation));
    BOOST_TEST((std::get<Disconnect>(last).reason == metrics::DropReason::flooding));
}

BOOST_AUTO_TEST_CASE(pings_share_the_bucket_and_count_toward_the_flood_close) {
    auto h = handler({.rate = 20, .burst = 5, .flood_limit = 3});
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(!h.handle_control(now));  // tokens taken
    }
    std::get<Answer>(h.handle(frame("heartbeat"), now));
    std::get<Answer>(h.handle(frame("heartbeat"), now));  // the burst is spent
    error_of(h.handle(frame("heartbeat"), now));          // one over the limit
    BOOST_TEST(!h.handle_control(now));                   // two, silently
    BOOST_TEST(!h.handle_control(now));                   // three
    const auto flood = h.handle_control(now);
    BOOST_TEST_REQUIRE(flood.has_value());
    BOOST_TEST((flood->code == proto::CloseCode::policy_violation));
    BOOST_TEST((flood->reason == metrics::DropReason::flooding));
}

BOOST_AUTO_TEST_SUITE_END()
