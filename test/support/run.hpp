#pragma once
// Drives a test's coroutine on an io_context of its own, with a time limit, so
// that a test waits for events (frames, closes) and never sleeps.

#include <chrono>
#include <exception>
#include <stdexcept>
#include <vector>

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "chat/net/asio.hpp"

namespace chat::test {

using namespace std::chrono_literals;

/// The io_context executor inside `executor` (a test's coroutine's, on the
/// io_context run() made), by its type, as connections' queues take it.
inline asio::io_context::executor_type context_of(const asio::any_io_executor& executor) {
    const auto* context = executor.target<asio::io_context::executor_type>();
    if (context == nullptr) {
        throw std::logic_error("not an io_context's executor");
    }
    return *context;
}

/// Runs `body()` (a callable returning awaitable<void>) to its end; rethrows its
/// exception; throws if it has not finished within `limit`.
template <typename Body>
void run(Body&& body, std::chrono::steady_clock::duration limit = 60s) {
    asio::io_context io;
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(io, body(), [&](std::exception_ptr e) {
        failure = e;
        done = true;
        io.stop();  // what the test left waiting (a hub, a server's client) ends with it
    });
    io.run_for(limit);
    if (failure) {
        std::rethrow_exception(failure);
    }
    if (!done) {
        throw std::runtime_error("test coroutine did not finish in time");
    }
}

/// Lets `duration` pass: for a scenario's own length (an outage that lasts
/// several node timeouts), never to wait for an event.
inline awaitable<void> pause(std::chrono::steady_clock::duration duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor, duration);
    co_await timer.async_wait(asio::use_awaitable);
}

/// Runs the tasks concurrently and waits for all; rethrows the first failure.
inline awaitable<void> all(std::vector<awaitable<void>> tasks) {
    const auto executor = co_await asio::this_coro::executor;
    using Operation = decltype(asio::co_spawn(executor, std::move(tasks.front()), asio::deferred));
    std::vector<Operation> operations;
    operations.reserve(tasks.size());
    for (auto& task : tasks) {
        operations.push_back(asio::co_spawn(executor, std::move(task), asio::deferred));
    }
    auto [order, errors] = co_await asio::experimental::make_parallel_group(std::move(operations))
                               .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (auto& error : errors) {
        if (error) {
            std::rethrow_exception(error);
        }
    }
}

}  // namespace chat::test
