#pragma once
// The load generator's clock. A message carries its send time as now_ns()
// in its content; the receiver subtracts it from its own now_ns() (one
// process, one steady clock), and the measured window is two such instants.

#include <chrono>
#include <cstdint>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "chat/net/asio.hpp"

namespace chat::bench {

using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

/// Waits `seconds` on the calling coroutine's executor: the phases' polling step.
inline awaitable<void> pause(std::chrono::duration<double> seconds) {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::chrono::duration_cast<Clock::duration>(seconds));
    co_await timer.async_wait(use_nothrow);
}

}  // namespace chat::bench
