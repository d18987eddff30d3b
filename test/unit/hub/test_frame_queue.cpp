// The bounded queue between the hub and a session's writer, and frame stamps.
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "chat/hub/frame_clock.hpp"
#include "chat/hub/frame_queue.hpp"
#include "run.hpp"

using namespace chat;
using hub::Frame;
using hub::FrameQueue;
using proto::CloseCode;
using Push = FrameQueue::Push;

namespace {
Frame frame(std::string text) {
    return std::make_shared<const std::string>(std::move(text));
}

/// The writer has written `batch` and is back for more, finding nothing yet.
void written(FrameQueue& queue, std::vector<Frame>& batch) {
    BOOST_TEST(!queue.try_take(batch).has_value());
}
}  // namespace

BOOST_AUTO_TEST_SUITE(frame_queue)

BOOST_AUTO_TEST_CASE(pushes_beyond_the_depth_fail_until_the_writer_has_written) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 3);
        const auto f = frame("x");
        BOOST_TEST((queue.try_push(f) == Push::ok));
        BOOST_TEST((queue.try_push(f) == Push::ok));
        BOOST_TEST((queue.try_push(f) == Push::ok));
        BOOST_TEST((queue.try_push(f) == Push::full));

        std::vector<Frame> batch;
        auto next = co_await queue.take(batch);
        BOOST_TEST(batch.size() == 3u);
        BOOST_TEST(!next.last);
        // Handed to the writer but not written yet: still counted.
        BOOST_TEST((queue.try_push(f) == Push::full));
        BOOST_TEST((queue.try_push(f) == Push::full));
        queue.close(CloseCode::going_away);
        next = co_await queue.take(batch);  // the writer is done with the three
        BOOST_TEST(batch.empty());
        BOOST_TEST(next.last);
        BOOST_TEST((next.close_code == CloseCode::going_away));
    });
}

BOOST_AUTO_TEST_CASE(pushes_beyond_the_byte_bound_fail_until_the_writer_has_written) {
    test::run([]() -> awaitable<void> {
        hub::FrameClock clock;
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256, 10);
        BOOST_TEST((queue.try_push(frame("12345")) == Push::ok));
        BOOST_TEST((queue.try_push(frame("1234")) == Push::ok));
        BOOST_TEST((queue.try_push(frame("xy")) == Push::full));  // 11 bytes
        BOOST_TEST((queue.try_push(frame("x")) == Push::ok));     // 10: the bound itself
        BOOST_TEST(queue.bytes() == 10u);

        std::vector<Frame> batch;
        co_await queue.take(batch);
        BOOST_TEST(batch.size() == 3u);
        // Handed to the writer but not written yet: their bytes still count.
        BOOST_TEST(queue.bytes() == 10u);
        BOOST_TEST((queue.try_push(frame("x")) == Push::full));
        bool built = false;
        BOOST_TEST((queue.try_push_stamped(clock, [&](std::int64_t) {
            built = true;
            return frame("y");
        }) == Push::full));
        BOOST_TEST(built);  // only its size tells
        bool ring_owed = false;
        BOOST_TEST((queue.try_push_held(frame("z"), ring_owed) == Push::full));
        BOOST_TEST(!ring_owed);

        written(queue, batch);  // they no longer count
        BOOST_TEST(queue.bytes() == 0u);
        BOOST_TEST((queue.try_push(frame("0123456789")) == Push::ok));
        queue.close(std::nullopt);
        BOOST_TEST(queue.bytes() == 0u);  // dropped with the frames
    });
}

BOOST_AUTO_TEST_CASE(a_frame_larger_than_the_byte_bound_goes_into_an_empty_queue_only) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256, 10);
        const auto large = frame(std::string(25, 'L'));
        BOOST_TEST((queue.try_push(frame("x")) == Push::ok));
        BOOST_TEST((queue.try_push(large) == Push::full));  // not empty
        std::vector<Frame> batch;
        co_await queue.take(batch);
        BOOST_TEST((queue.try_push(large) == Push::full));  // "x" is still being written
        written(queue, batch);
        BOOST_TEST((queue.try_push(large) == Push::ok));  // empty: it goes out
        BOOST_TEST(queue.bytes() == 25u);
        BOOST_TEST((queue.try_push(frame("y")) == Push::full));  // and fills the queue
        co_await queue.take(batch);
        BOOST_TEST_REQUIRE(batch.size() == 1u);
        BOOST_TEST(batch.front()->size() == 25u);
        BOOST_TEST((queue.try_push(frame("y")) == Push::full));  // until it is written
        written(queue, batch);
        BOOST_TEST((queue.try_push(frame("y")) == Push::ok));
    });
}

BOOST_AUTO_TEST_CASE(a_welcome_and_its_history_may_overshoot_the_byte_bound_unless_it_is_reached) {
    // Frames pushed together (rule 13: nothing between the welcome and its
    // history) are refused in bytes only when the queue is full already.
    test::run([]() -> awaitable<void> {
        const std::array welcome{frame("login"), frame(std::string(20, 'h'))};
        bool ring_owed = false;
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256, 10);
        BOOST_TEST((queue.try_push(frame("hb")) == Push::ok));  // a heartbeat's answer
        BOOST_TEST((queue.try_push_held(welcome, ring_owed) == Push::ok));
        BOOST_TEST(queue.bytes() == 27u);
        BOOST_TEST((queue.try_push_held(welcome, ring_owed) == Push::full));
        BOOST_TEST((queue.try_push(frame("m")) == Push::full));

        FrameQueue full(test::context_of(co_await asio::this_coro::executor), 256, 10);
        BOOST_TEST((full.try_push(frame("0123456789")) == Push::ok));
        BOOST_TEST((full.try_push_held(welcome, ring_owed) == Push::full));
        BOOST_TEST(full.size() == 1u);  // none of them went in
    });
}

BOOST_AUTO_TEST_CASE(the_writer_gets_everything_queued_at_once_in_order) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256);
        for (int i = 0; i < 10; ++i) {
            queue.try_push(frame(std::to_string(i)));
        }
        std::vector<Frame> batch;
        co_await queue.take(batch);
        BOOST_TEST_REQUIRE(batch.size() == 10u);
        for (int i = 0; i < 10; ++i) {
            BOOST_TEST(*batch[i] == std::to_string(i));
        }
    });
}

BOOST_AUTO_TEST_CASE(a_waiting_writer_wakes_on_a_push_from_another_thread) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256);
        std::jthread producer([&] {
            for (int i = 0; i < 1000; ++i) {
                while (queue.try_push(frame(std::to_string(i))) == Push::full) {
                    std::this_thread::yield();
                }
            }
            queue.close(CloseCode::normal);
        });
        std::vector<Frame> batch;
        int expected = 0;
        for (;;) {
            const auto next = co_await queue.take(batch);
            for (const auto& f : batch) {
                BOOST_TEST_REQUIRE(*f == std::to_string(expected++));
            }
            if (next.last) {
                BOOST_TEST((next.close_code == CloseCode::normal));
                break;
            }
        }
        BOOST_TEST(expected == 1000);
    });
}

BOOST_AUTO_TEST_CASE(closing_with_a_code_keeps_what_was_queued) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 8);
        queue.try_push(frame("a"));
        queue.close(CloseCode::policy_violation);
        queue.close(CloseCode::normal);  // the first close decides
        BOOST_TEST((queue.try_push(frame("b")) == Push::closed));
        std::vector<Frame> batch;
        const auto next = co_await queue.take(batch);
        BOOST_TEST(batch.size() == 1u);
        BOOST_TEST(next.last);
        BOOST_TEST((next.close_code == CloseCode::policy_violation));
    });
}

BOOST_AUTO_TEST_CASE(closing_without_a_code_drops_what_was_queued) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 8);
        queue.try_push(frame("a"));
        queue.close(std::nullopt);
        std::vector<Frame> batch;
        const auto next = co_await queue.take(batch);
        BOOST_TEST(batch.empty());
        BOOST_TEST(next.last);
        BOOST_TEST(!next.close_code.has_value());
    });
}

BOOST_AUTO_TEST_CASE(stamped_frames_are_built_under_the_lock_with_the_clock) {
    test::run([]() -> awaitable<void> {
        hub::FrameClock clock;
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 1);
        std::int64_t seen = 0;
        BOOST_TEST((queue.try_push_stamped(clock, [&](std::int64_t stamp) {
            seen = stamp;
            return frame("x");
        }) == Push::ok));
        BOOST_TEST(seen > 0);
        bool built = false;
        BOOST_TEST((queue.try_push_stamped(clock, [&](std::int64_t) {
            built = true;
            return frame("y");
        }) == Push::full));
        BOOST_TEST(!built);
    });
}

/// A writer waiting on `queue` (on the test's thread), and a way to wait for it to wake.
struct WaitingWriter {
    static awaitable<WaitingWriter> start(FrameQueue& queue) {
        const auto executor = co_await asio::this_coro::executor;
        WaitingWriter writer;
        asio::co_spawn(
            executor,
            [&queue, batch = writer.batch, woken = writer.woken]() -> awaitable<void> {
                co_await queue.take(*batch);
                *woken = true;
            },
            asio::detached);
        co_await asio::post(executor, asio::use_awaitable);  // it now waits
        co_return writer;
    }
    /// The frames it was woken with.
    awaitable<std::size_t> woken_with() const {
        while (!*woken) {
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        }
        co_return batch->size();
    }
    std::shared_ptr<std::vector<Frame>> batch = std::make_shared<std::vector<Frame>>();
    std::shared_ptr<bool> woken = std::make_shared<bool>(false);
};

BOOST_AUTO_TEST_CASE(a_deferred_push_owes_one_wake_and_a_half_full_queue_wakes_at_once) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 8);
        const auto writer = co_await WaitingWriter::start(queue);
        bool ring_owed = false;
        BOOST_TEST((queue.try_push_held(frame("a"), ring_owed) == Push::ok));
        BOOST_TEST(ring_owed);  // the caller owes the wake
        BOOST_TEST((queue.try_push_held(frame("b"), ring_owed) == Push::ok));
        BOOST_TEST(!ring_owed);  // owed once
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        BOOST_TEST(!*writer.woken);  // deferred indeed
        BOOST_TEST((queue.try_push_held(frame("c"), ring_owed) == Push::ok));
        BOOST_TEST((queue.try_push_held(frame("d"), ring_owed) == Push::ok));  // 8 / 2
        BOOST_TEST(co_await writer.woken_with() == 4u);
        queue.ring();  // the owed wake, now harmless
    });
}

BOOST_AUTO_TEST_CASE(half_the_bytes_wake_the_writer_at_once) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256, 100);
        const auto writer = co_await WaitingWriter::start(queue);
        bool ring_owed = false;
        BOOST_TEST((queue.try_push_held(frame(std::string(30, 'a')), ring_owed) == Push::ok));
        BOOST_TEST(ring_owed);
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        BOOST_TEST(!*writer.woken);  // deferred
        BOOST_TEST((queue.try_push_held(frame(std::string(20, 'b')), ring_owed) == Push::ok));
        BOOST_TEST(co_await writer.woken_with() == 2u);  // 50 of 100 bytes: at once
        queue.ring();                                    // the owed wake, now harmless
    });
}

BOOST_AUTO_TEST_CASE(the_owed_wake_wakes_the_writer) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256);
        const auto writer = co_await WaitingWriter::start(queue);
        bool ring_owed = false;
        queue.try_push_held(frame("a"), ring_owed);
        BOOST_TEST_REQUIRE(ring_owed);
        queue.ring();
        BOOST_TEST(co_await writer.woken_with() == 1u);
    });
}

BOOST_AUTO_TEST_CASE(a_writer_back_with_a_turn_owed_waits_for_it_and_loses_nothing) {
    test::run([]() -> awaitable<void> {
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 256);
        bool ring_owed = false;
        for (int i = 0; i < 40; ++i) {  // a writer still writing: more than it keeps when idle
            queue.try_push_held(frame(std::to_string(i)), ring_owed);
            BOOST_TEST(ring_owed == (i == 0));
        }
        const auto writer = co_await WaitingWriter::start(queue);
        BOOST_TEST(!*writer.woken);  // back, it waits for its turn
        queue.ring();                // the turn
        BOOST_TEST_REQUIRE(co_await writer.woken_with() == 40u);
        BOOST_TEST(*writer.batch->front() == "0");
        BOOST_TEST(*writer.batch->back() == "39");
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(frame_clock)

BOOST_AUTO_TEST_CASE(local_frames_take_the_stamp_of_a_running_fan_out) {
    hub::FrameClock clock;
    const auto before = clock.stamp_local();
    std::int64_t during = 0;
    std::int64_t fan_out_stamp = 0;
    {
        const hub::FanOut fan_out(clock);
        fan_out_stamp = fan_out.stamp();
        during = clock.stamp_local();
    }
    BOOST_TEST(fan_out_stamp >= before);
    BOOST_TEST(during == fan_out_stamp);
    BOOST_TEST(clock.stamp_local() >= fan_out_stamp);
}

BOOST_AUTO_TEST_CASE(one_queue_fed_by_the_hub_and_its_session_sees_no_stamp_go_back) {
    // What the clock is for: the hub stamps a broadcast and pushes it a moment
    // later, while the session pushes frames of its own into the same queue.
    // In queue order the stamps must never decrease (with the wall clock alone
    // a session frame stamped after a tick could precede a broadcast stamped
    // before it).
    constexpr int frames_each = 100'000;
    test::run([]() -> awaitable<void> {
        hub::FrameClock clock;
        FrameQueue queue(test::context_of(co_await asio::this_coro::executor), 2 * frames_each + 1);
        std::atomic<int> refused{0};  // Boost.Test's macros are for the main thread
        {
            std::jthread hub_thread([&] {
                for (int i = 0; i < frames_each; ++i) {
                    const hub::FanOut fan_out(clock);
                    if (queue.try_push(frame(std::to_string(fan_out.stamp()))) != Push::ok) {
                        ++refused;
                    }
                }
            });
            std::jthread session_thread([&] {
                for (int i = 0; i < frames_each; ++i) {
                    const auto pushed = queue.try_push_stamped(
                        clock, [](std::int64_t stamp) { return frame(std::to_string(stamp)); });
                    if (pushed != Push::ok) {
                        ++refused;
                    }
                }
            });
        }
        BOOST_TEST(refused.load() == 0);
        std::vector<Frame> batch;
        co_await queue.take(batch);
        BOOST_TEST_REQUIRE(batch.size() == std::size_t{2 * frames_each});
        std::int64_t last = 0;
        int went_back = 0;
        for (const auto& f : batch) {
            const std::int64_t stamp = std::stoll(*f);
            went_back += stamp < last ? 1 : 0;
            last = std::max<std::int64_t>(last, stamp);
        }
        BOOST_TEST(went_back == 0);
    });
}

BOOST_AUTO_TEST_SUITE_END()
