#include "test_peer.hpp"

#include <stdexcept>
#include <utility>

#include <boost/test/unit_test.hpp>

namespace chat::test {

void TestPeer::close(proto::CloseCode code) {
    if (!closed_with) {
        closed_with = code;
    }
    frames().close(code);
}

awaitable<ChatRequest> TestPeer::next() {
    while (received_.empty()) {
        const auto batch = co_await frames().take(batch_);
        end_turn();  // as a writer whose write left at once
        for (const auto& frame : batch_) {
            ChatRequest request;
            BOOST_TEST_REQUIRE(request.ParseFromString(*frame));
            BOOST_TEST_REQUIRE(request.timestamp() >= last_timestamp_);
            last_timestamp_ = request.timestamp();
            received_.push_back(std::move(request));
        }
        if (received_.empty() && batch.last) {
            throw std::runtime_error("peer closed while a frame was expected");
        }
    }
    auto front = std::move(received_.front());
    received_.pop_front();
    co_return front;
}

awaitable<ChatRequest> TestPeer::expect(std::string_view type) {
    auto frame = co_await next();
    BOOST_TEST_REQUIRE(frame.type() == type, "got " << frame.type() << ": " << frame.content());
    co_return frame;
}

}  // namespace chat::test
