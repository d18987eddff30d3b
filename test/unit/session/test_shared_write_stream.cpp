// The layer every byte leaves through: batches now, Beast's frames after them, never interleaved.
#include <boost/test/unit_test.hpp>

#include <limits>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "chat/session/frame_header.hpp"
#include "chat/session/shared_write_stream.hpp"
#include "run.hpp"

using namespace chat;

namespace {

/// A next layer that records what it is given. Its synchronous write takes
/// `room` bytes at most, as a non-blocking socket with that much space would.
class RecordingStream {
  public:
    using executor_type = asio::any_io_executor;
    explicit RecordingStream(executor_type executor) : executor_(std::move(executor)) {}
    executor_type get_executor() { return executor_; }

    template <typename ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
        ec = broken;
        if (ec) {
            return 0;
        }
        const auto n = std::min(room, asio::buffer_size(buffers));
        if (n == 0) {
            ec = asio::error::would_block;
            return 0;
        }
        std::string data(n, '\0');
        asio::buffer_copy(asio::buffer(data), buffers);
        wire += data;
        ++calls;
        room -= n;
        return n;
    }

    template <typename ConstBufferSequence, typename Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        std::string data(asio::buffer_size(buffers), '\0');
        asio::buffer_copy(asio::buffer(data), buffers);
        if (++in_flight_ > 1) {
            overlapped = true;  // two writes on the socket at once: frames would interleave
        }
        ++calls;
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this, data](auto handler) {
                asio::post(executor_, [this, data, h = std::move(handler)]() mutable {
                    --in_flight_;
                    if (broken) {
                        std::move(h)(broken, 0);
                        return;
                    }
                    wire += data;
                    std::move(h)(error_code{}, data.size());
                });
            },
            token);
    }
    template <typename MutableBufferSequence, typename Token>
    auto async_read_some(const MutableBufferSequence&, Token&& token) {
        return asio::post(executor_, asio::append(std::forward<Token>(token),
                                                  error_code(asio::error::eof), std::size_t{0}));
    }

    std::string wire;  // what has left, in order
    std::size_t room = std::numeric_limits<std::size_t>::max();
    int calls = 0;
    bool overlapped = false;
    error_code broken;

  private:
    executor_type executor_;
    int in_flight_ = 0;
};

using Stream = session::SharedWriteStream<RecordingStream>;

std::vector<asio::const_buffer> batch(const std::vector<std::string>& frames) {
    std::vector<asio::const_buffer> buffers;
    for (const auto& frame : frames) {
        buffers.push_back(asio::buffer(frame));
    }
    return buffers;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_write_stream)

BOOST_AUTO_TEST_CASE(a_batch_leaves_at_once_in_one_write_when_the_socket_has_room) {
    test::run([]() -> awaitable<void> {
        Stream stream(co_await asio::this_coro::executor);
        const std::vector<std::string> frames{"one", "two", "three"};
        BOOST_TEST(stream.write_now(batch(frames)));
        BOOST_TEST(stream.next_layer().wire == "onetwothree");
        BOOST_TEST(stream.next_layer().calls == 1);
    });
}

BOOST_AUTO_TEST_CASE(what_the_socket_does_not_take_leaves_after_and_then_the_wait_ends) {
    test::run([]() -> awaitable<void> {
        Stream stream(co_await asio::this_coro::executor);
        stream.next_layer().room = 4;
        const std::vector<std::string> frames{"one", "two", "three"};
        BOOST_TEST(!stream.write_now(batch(frames)));
        BOOST_TEST(stream.next_layer().wire == "onet");
        auto [ec] = co_await stream.async_wait_written(use_nothrow);
        BOOST_TEST(!ec);
        BOOST_TEST(stream.next_layer().wire == "onetwothree");
    });
}

BOOST_AUTO_TEST_CASE(beasts_writes_wait_for_a_batch_on_the_wire_and_complete_once_they_left) {
    test::run([]() -> awaitable<void> {
        Stream stream(co_await asio::this_coro::executor);
        stream.next_layer().room = 2;
        const std::vector<std::string> frames{"batch", "more"};
        BOOST_TEST(!stream.write_now(batch(frames)));
        // A pong while the rest of the batch is on the wire: after it, not in it.
        const auto n = co_await asio::async_write(stream, asio::buffer(std::string_view("PONG")),
                                                  asio::use_awaitable);
        BOOST_TEST(n == 4u);
        BOOST_TEST(stream.next_layer().wire == "batchmorePONG");
        BOOST_TEST(!stream.next_layer().overlapped);
    });
}

BOOST_AUTO_TEST_CASE(a_batch_while_beast_writes_is_queued_behind_it) {
    test::run([]() -> awaitable<void> {
        Stream stream(co_await asio::this_coro::executor);
        bool closed = false;
        asio::async_write(stream, asio::buffer(std::string_view("CLOSE")),
                          [&](error_code ec, std::size_t) { closed = !ec; });
        const std::vector<std::string> frames{"a", "b"};
        BOOST_TEST(!stream.write_now(batch(frames)));  // Beast's frame is on the wire
        auto [ec] = co_await stream.async_wait_written(use_nothrow);
        BOOST_TEST(!ec);
        BOOST_TEST(closed);
        BOOST_TEST(stream.next_layer().wire == "CLOSEab");
        BOOST_TEST(!stream.next_layer().overlapped);
    });
}

BOOST_AUTO_TEST_CASE(an_error_breaks_the_stream_for_every_writer) {
    test::run([]() -> awaitable<void> {
        Stream stream(co_await asio::this_coro::executor);
        stream.next_layer().room = 1;
        const std::vector<std::string> frames{"abc"};
        BOOST_TEST(!stream.write_now(batch(frames)));
        stream.next_layer().broken = asio::error::connection_reset;
        auto [ec] = co_await stream.async_wait_written(use_nothrow);
        BOOST_TEST((ec == asio::error::connection_reset));
        BOOST_TEST(!stream.write_now(batch(frames)));
        auto [again] = co_await stream.async_wait_written(use_nothrow);
        BOOST_TEST((again == asio::error::connection_reset));
        auto [beast_ec, n] =
            co_await asio::async_write(stream, asio::buffer(std::string_view("x")), use_nothrow);
        BOOST_TEST((beast_ec == asio::error::connection_reset));
        BOOST_TEST(stream.next_layer().wire == "a");
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(frame_header)

BOOST_AUTO_TEST_CASE(lengths_take_one_three_or_nine_bytes_big_endian) {
    const auto bytes = [](std::uint64_t size) {
        const session::FrameHeader header(size);
        return std::vector<int>(header.bytes.begin(), header.bytes.begin() + header.size);
    };
    BOOST_TEST(bytes(0) == (std::vector<int>{0x82, 0}));
    BOOST_TEST(bytes(125) == (std::vector<int>{0x82, 125}));
    BOOST_TEST(bytes(126) == (std::vector<int>{0x82, 126, 0, 126}));
    BOOST_TEST(bytes(65535) == (std::vector<int>{0x82, 126, 0xFF, 0xFF}));
    BOOST_TEST(bytes(65536) == (std::vector<int>{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}));
    BOOST_TEST(bytes(0x0102030405060708) == (std::vector<int>{0x82, 127, 1, 2, 3, 4, 5, 6, 7, 8}));
}

BOOST_AUTO_TEST_SUITE_END()
