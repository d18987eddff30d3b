// IoContexts: one io_context per thread, stopped together, and torn down in
// an order that is safe whatever their handlers hold.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "chat/net/io_contexts.hpp"

namespace asio = boost::asio;
using chat::net::IoContexts;

BOOST_AUTO_TEST_SUITE(io_contexts)

BOOST_AUTO_TEST_CASE(each_context_runs_on_a_thread_of_its_own_and_next_takes_them_in_turn) {
    IoContexts contexts(3);
    std::vector<asio::io_context*> order;
    for (int i = 0; i < 6; ++i) {
        order.push_back(&contexts.next());
    }
    const std::set<asio::io_context*> given(order.begin(), order.begin() + 3);
    BOOST_TEST(given.size() == 3u);
    BOOST_TEST(given.contains(&contexts.main()));
    for (std::size_t i = 3; i < order.size(); ++i) {
        BOOST_TEST(order[i] == order[i - 3]);  // round again, in the same order
    }

    std::mutex mutex;
    std::set<std::thread::id> threads;
    std::thread::id main_thread;
    std::atomic<int> ran{0};
    for (auto* context : given) {
        asio::post(*context, [&, context] {
            const std::lock_guard lock(mutex);
            threads.insert(std::this_thread::get_id());
            if (context == &contexts.main()) {
                main_thread = std::this_thread::get_id();
            }
            if (++ran == 3) {
                contexts.stop();
            }
        });
    }
    contexts.run();  // returns: the last handler stopped them all
    BOOST_TEST(ran.load() == 3);
    BOOST_TEST(threads.size() == 3u);
    BOOST_TEST((main_thread == std::this_thread::get_id()));  // main() runs on the caller's
}

BOOST_AUTO_TEST_CASE(an_exception_in_any_context_stops_them_all_and_is_rethrown) {
    IoContexts contexts(2);
    auto* other = &contexts.next();
    if (other == &contexts.main()) {
        other = &contexts.next();
    }
    // main() has work for a minute: only the failure elsewhere ends run() sooner.
    asio::steady_timer busy(contexts.main(), std::chrono::minutes(1));
    busy.async_wait([](boost::system::error_code) {});
    asio::post(*other, [] { throw std::runtime_error("a handler failed"); });
    const auto started = std::chrono::steady_clock::now();
    BOOST_CHECK_EXCEPTION(contexts.run(), std::runtime_error, [](const std::runtime_error& error) {
        return std::string(error.what()) == "a handler failed";
    });
    BOOST_TEST((std::chrono::steady_clock::now() - started < std::chrono::seconds(30)));
}

BOOST_AUTO_TEST_CASE(a_handler_that_holds_a_socket_of_another_context_is_destroyed_safely) {
    // A connection's handler may wait in one context (the hub's) while its
    // socket belongs to another: whatever the order the contexts go in, the
    // handler must go before any socket service does. A use after free
    // otherwise, which only the asan preset reports (it runs this suite).
    auto contexts = std::make_unique<IoContexts>(2);
    auto* other = &contexts->next();
    if (other == &contexts->main()) {
        other = &contexts->next();
    }
    std::vector<std::weak_ptr<asio::ip::tcp::socket>> sockets;
    for (const auto& [owner, waiter] :
         {std::pair{&contexts->main(), other}, std::pair{other, &contexts->main()}}) {
        auto socket = std::make_shared<asio::ip::tcp::socket>(*owner);
        socket->open(asio::ip::tcp::v4());
        sockets.push_back(socket);
        asio::post(*waiter, [socket] { BOOST_FAIL("never run"); });
    }
    contexts.reset();  // neither ran: the handlers and their sockets go with them
    for (const auto& socket : sockets) {
        BOOST_TEST(socket.expired());
    }
}

BOOST_AUTO_TEST_SUITE_END()
