// The write-batching layer: corked writes leave together, the rest go through.
#include <boost/test/unit_test.hpp>

#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "chat/session/corked_stream.hpp"
#include "run.hpp"

using namespace chat;

namespace {

/// A next layer that records each write it is asked to do.
class RecordingStream {
  public:
    using executor_type = asio::any_io_executor;
    explicit RecordingStream(executor_type executor) : executor_(std::move(executor)) {}
    executor_type get_executor() { return executor_; }

    template <typename ConstBufferSequence, typename Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        std::string data(asio::buffer_size(buffers), '\0');
        asio::buffer_copy(asio::buffer(data), buffers);
        writes.push_back(data);
        if (++in_flight_ > 1) {
            overlapped = true;  // two writes on the socket at once: frames would interleave
        }
        return asio::async_initiate<Token, void(error_code, std::size_t)>(
            [this, size = data.size()](auto handler) {
                asio::post(executor_, [this, size, h = std::move(handler)]() mutable {
                    --in_flight_;
                    std::move(h)(error_code{}, size);
                });
            },
            token);
    }
    template <typename ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
        ec = {};
        std::string data(asio::buffer_size(buffers), '\0');
        asio::buffer_copy(asio::buffer(data), buffers);
        writes.push_back(data);
        return data.size();
    }
    template <typename MutableBufferSequence, typename Token>
    auto async_read_some(const MutableBufferSequence&, Token&& token) {
        return asio::post(executor_, asio::append(std::forward<Token>(token),
                                                  error_code(asio::error::eof), std::size_t{0}));
    }

    std::vector<std::string> writes;
    bool overlapped = false;

  private:
    executor_type executor_;
    int in_flight_ = 0;
};

using Corked = session::CorkedStream<RecordingStream>;

}  // namespace

BOOST_AUTO_TEST_SUITE(corked_stream)

BOOST_AUTO_TEST_CASE(uncorked_writes_go_straight_through) {
    test::run([]() -> awaitable<void> {
        Corked stream(co_await asio::this_coro::executor);
        co_await asio::async_write(stream, asio::buffer(std::string_view("one")),
                                   asio::use_awaitable);
        co_await asio::async_write(stream, asio::buffer(std::string_view("two")),
                                   asio::use_awaitable);
        BOOST_TEST(stream.next_layer().writes == (std::vector<std::string>{"one", "two"}));
    });
}

BOOST_AUTO_TEST_CASE(a_batch_leaves_in_one_write_at_the_flush) {
    test::run([]() -> awaitable<void> {
        Corked stream(co_await asio::this_coro::executor);
        const std::string first = "a";
        stream.cork(asio::buffer(first));
        // The batch's first frame, written asynchronously, as Beast does.
        const auto n = co_await asio::async_write(stream, asio::buffer(first), asio::use_awaitable);
        BOOST_TEST(n == 1u);  // accepted whole
        // The others, written synchronously.
        for (const auto* part : {"bb", "ccc"}) {
            BOOST_TEST(stream.write_some(asio::buffer(std::string_view(part))) ==
                       std::string_view(part).size());
        }
        BOOST_TEST(stream.next_layer().writes.empty());
        co_await stream.async_flush(asio::use_awaitable);
        BOOST_TEST(stream.next_layer().writes == (std::vector<std::string>{"abbccc"}));
        // Uncorked again.
        co_await asio::async_write(stream, asio::buffer(std::string_view("d")),
                                   asio::use_awaitable);
        BOOST_TEST(stream.next_layer().writes.back() == "d");
    });
}

BOOST_AUTO_TEST_CASE(a_control_frame_is_never_held_in_a_batch) {
    // Beast's close frame can come while the writer has corked but not yet
    // written its first frame: it must leave now, or a teardown right after
    // it would cut it off.
    test::run([]() -> awaitable<void> {
        Corked stream(co_await asio::this_coro::executor);
        const std::string first = "frame";
        stream.cork(asio::buffer(first));
        co_await asio::async_write(stream, asio::buffer(std::string_view("close")),
                                   asio::use_awaitable);
        BOOST_TEST(stream.next_layer().writes == (std::vector<std::string>{"close"}));
        co_await asio::async_write(stream, asio::buffer(first), asio::use_awaitable);
        co_await stream.async_flush(asio::use_awaitable);
        BOOST_TEST(stream.next_layer().writes == (std::vector<std::string>{"close", "frame"}));
    });
}

BOOST_AUTO_TEST_CASE(writes_during_a_flush_leave_after_it_and_complete_then) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        Corked stream(executor);
        const std::string first = "first";
        stream.cork(asio::buffer(first));
        co_await asio::async_write(stream, asio::buffer(first), asio::use_awaitable);
        bool flushed = false;
        stream.async_flush([&](error_code ec) {
            BOOST_TEST(!ec);
            flushed = true;
        });
        // A write (a pong, say) while the flush is on the wire: after it, not
        // interleaved, and complete only once it has left.
        co_await asio::async_write(stream, asio::buffer(std::string_view("pong")),
                                   asio::use_awaitable);
        BOOST_TEST(flushed);
        BOOST_TEST(stream.next_layer().writes == (std::vector<std::string>{"first", "pong"}));
        BOOST_TEST(!stream.next_layer().overlapped);
    });
}

BOOST_AUTO_TEST_SUITE_END()
