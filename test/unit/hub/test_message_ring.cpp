// The hub's ring of the newest messages, and the history frame built from
// stored bytes.
#include <boost/test/unit_test.hpp>

#include "chat/chat.pb.h"
#include "chat/hub/history.hpp"
#include "message_frames.hpp"

using namespace chat;
using hub::Frame;
using test::ids;
using test::Ids;
using test::message;

BOOST_AUTO_TEST_SUITE(message_ring)

BOOST_AUTO_TEST_CASE(newest_and_after_within_the_limit) {
    hub::MessageRing ring(5);
    for (std::uint64_t id = 1; id <= 8; ++id) {
        ring.push(id, message(id));
    }
    BOOST_TEST(ring.size() == 5u);  // 4..8
    BOOST_TEST((ids(ring.newest(2)) == Ids{7, 8}));
    BOOST_TEST((ids(ring.newest(9)) == Ids{4, 5, 6, 7, 8}));
    BOOST_TEST((ids(ring.after(6, 5)) == Ids{7, 8}));
    BOOST_TEST(ring.after(8, 5).empty());
    BOOST_TEST((ids(ring.after(4, 2)) == Ids{7, 8}));           // more missing than the limit
    BOOST_TEST((ids(ring.after(1, 5)) == Ids{4, 5, 6, 7, 8}));  // some no longer kept
}

BOOST_AUTO_TEST_CASE(a_history_frame_from_stored_bytes_decodes_to_the_same_messages) {
    const std::vector<Frame> stored{message(7), message(8), message(9)};
    const auto frame = hub::history_frame(stored, 4242);
    ChatRequest decoded;
    BOOST_TEST_REQUIRE(decoded.ParseFromString(*frame));
    BOOST_TEST(decoded.type() == "history");
    BOOST_TEST(decoded.timestamp() == 4242);
    BOOST_TEST_REQUIRE(decoded.history_size() == 3);
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(decoded.history(i).SerializeAsString() == *stored[static_cast<std::size_t>(i)]);
    }
    // The same bytes as protobuf's own encoding of that message.
    ChatRequest built;
    built.set_type("history");
    built.set_timestamp(4242);
    for (const auto& bytes : stored) {
        BOOST_TEST_REQUIRE(built.add_history()->ParseFromString(*bytes));
    }
    BOOST_TEST(built.SerializeAsString() == *frame);
    const auto empty = hub::history_frame({}, 1);
    BOOST_TEST_REQUIRE(decoded.ParseFromString(*empty));
    BOOST_TEST(decoded.history_size() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
