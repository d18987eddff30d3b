#pragma once
// Messages as the hub keeps them (serialised frames), made and read back.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "chat/chat.pb.h"
#include "chat/hub/frame_queue.hpp"

namespace chat::test {

/// Message `id` from ann, "m<id>", serialised as the hub keeps it.
inline hub::Frame message(std::uint64_t id) {
    ChatRequest request;
    request.set_type("message");
    request.set_user_name("ann");
    request.set_content("m" + std::to_string(id));
    request.set_id(id);
    request.set_timestamp(1'000 + static_cast<std::int64_t>(id));
    return std::make_shared<const std::string>(request.SerializeAsString());
}

/// `field` of each serialised message, in order.
template <typename Field>
auto each(const std::vector<hub::Frame>& frames, Field field) {
    std::vector<std::decay_t<decltype(field(ChatRequest{}))>> out;
    for (const auto& frame : frames) {
        ChatRequest request;
        BOOST_TEST_REQUIRE(request.ParseFromString(*frame));
        out.push_back(field(request));
    }
    return out;
}

using Ids = std::vector<std::uint64_t>;

/// The ids of serialised messages, in order.
inline Ids ids(const std::vector<hub::Frame>& frames) {
    return each(frames, [](const ChatRequest& request) { return request.id(); });
}

}  // namespace chat::test
