// Writers take turns: at most N awake, the others woken in order as places free up.
#include <boost/test/unit_test.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "chat/hub/peer.hpp"
#include "chat/hub/wake_queue.hpp"
#include "run.hpp"

using namespace chat;
using hub::WakeQueue;

namespace {

/// A connection whose writer waits for frames and notes when it got them.
class Writer final : public hub::Peer {
  public:
    Writer(hub::PeerId id, const asio::any_io_executor& executor) : Peer(id, executor, 64) {}
    void close(proto::CloseCode code) override { frames().close(code); }
    std::vector<hub::Frame> batch;
    bool woken = false;
};

/// A writer already waiting for frames.
awaitable<std::shared_ptr<Writer>> waiting_writer(hub::PeerId id) {
    const auto executor = co_await asio::this_coro::executor;
    auto writer = std::make_shared<Writer>(id, executor);
    asio::co_spawn(
        executor,
        [writer]() -> awaitable<void> {
            co_await writer->frames().next_batch(writer->batch);
            writer->frames().end_turn();  // written at once
            writer->woken = true;
        },
        asio::detached);
    co_await asio::post(executor, asio::use_awaitable);  // it waits now
    co_return writer;
}

/// Queues a frame without waking, as the hub does, and puts the writer in line.
void deliver(WakeQueue& queue, const std::shared_ptr<Writer>& writer) {
    bool wake_needed = false;
    writer->frames().try_push_deferred(std::make_shared<const std::string>("x"), wake_needed);
    if (wake_needed) {
        queue.request(writer);
    }
}

awaitable<void> let_handlers_run() {
    for (int i = 0; i < 4; ++i) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wake_queue)

BOOST_AUTO_TEST_CASE(an_idle_server_wakes_a_writer_at_once) {
    test::run([]() -> awaitable<void> {
        const auto queue = std::make_shared<WakeQueue>(2);
        const auto writer = co_await waiting_writer(1);
        deliver(*queue, writer);
        co_await let_handlers_run();
        BOOST_TEST(writer->woken);
        BOOST_TEST(queue->awake() == 0u);  // its turn ended when it took the frame
        BOOST_TEST(queue->waiting() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(at_most_the_limit_are_awake_and_the_rest_follow_in_order) {
    test::run([]() -> awaitable<void> {
        const auto queue = std::make_shared<WakeQueue>(2);
        std::vector<std::shared_ptr<Writer>> writers;
        for (hub::PeerId id = 1; id <= 5; ++id) {
            writers.push_back(co_await waiting_writer(id));
        }
        // Woken, but not yet run: the first two hold the places.
        for (const auto& writer : writers) {
            deliver(*queue, writer);
        }
        BOOST_TEST(queue->awake() == 2u);
        BOOST_TEST(queue->waiting() == 3u);
        // Each writer that takes its frames passes its place to the next in line.
        co_await let_handlers_run();
        for (const auto& writer : writers) {
            BOOST_TEST(writer->woken);
        }
        BOOST_TEST(queue->awake() == 0u);
        BOOST_TEST(queue->waiting() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(the_places_are_handed_on_first_come_first_woken) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto queue = std::make_shared<WakeQueue>(1);
        const auto first = co_await waiting_writer(1);
        const auto second = co_await waiting_writer(2);
        const auto third = co_await waiting_writer(3);
        // The one place, held by a turn no writer takes: the line waits.
        deliver(*queue, first);
        deliver(*queue, third);
        deliver(*queue, second);
        BOOST_TEST(queue->waiting() == 2u);
        co_await asio::post(executor, asio::use_awaitable);  // `first` takes its frame
        BOOST_TEST(first->woken);
        BOOST_TEST(!second->woken);
        co_await asio::post(executor,
                            asio::use_awaitable);  // then `third`, in line before `second`
        BOOST_TEST(third->woken);
        BOOST_TEST(!second->woken);
        co_await let_handlers_run();
        BOOST_TEST(second->woken);
    });
}

BOOST_AUTO_TEST_CASE(writers_gone_or_busy_are_skipped) {
    test::run([]() -> awaitable<void> {
        const auto executor = co_await asio::this_coro::executor;
        const auto queue = std::make_shared<WakeQueue>(1);
        const auto holder = co_await waiting_writer(1);
        auto gone = std::make_shared<Writer>(2, executor);  // no writer coroutine
        const auto busy = co_await waiting_writer(3);
        const auto last = co_await waiting_writer(4);
        deliver(*queue, holder);  // holds the place until it runs
        queue->request(gone);
        deliver(*queue, busy);
        deliver(*queue, last);
        gone.reset();           // the connection ended while in line
        busy->frames().wake();  // woken another way (a frame of its own): not waiting
        co_await let_handlers_run();
        BOOST_TEST(holder->woken);
        BOOST_TEST(busy->woken);
        BOOST_TEST(last->woken);
        BOOST_TEST(queue->awake() == 0u);
        BOOST_TEST(queue->waiting() == 0u);
    });
}

BOOST_AUTO_TEST_SUITE_END()
