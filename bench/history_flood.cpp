#include "history_flood.hpp"

#include <chrono>
#include <iostream>
#include <string>

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "chat/chat.pb.h"
#include "clock.hpp"
#include "connect.hpp"
#include "proc_sampler.hpp"

namespace chat::bench {

namespace {

namespace beast = boost::beast;
using namespace std::chrono_literals;

// What each flooder posts, once: with 30 of them (bench/run history-flood),
// 120 messages of 4,000 bytes, so that a page of history (at most 100
// messages, rule 14) is about 400 KB.
constexpr int posts_per_flooder = 4;
constexpr std::size_t post_bytes = 4000;
// Its requests: bursts of 35 every 2 s, 17.5 frames/s, within the
// contract's rate limit of 20/s with a burst of 40 (rule 7).
constexpr int requests_per_burst = 35;
constexpr auto burst_interval = 2s;

constexpr auto connect_timeout = 10s;
constexpr auto retry_after = 100ms;          // a failed login: the next one, soon
constexpr auto posts_timeout = 30s;          // for the posts to reach the measured clients
constexpr auto memory_sample_every = 100ms;  // the server's RSS, for its peak

/// One flooder: logs in, posts its large messages (in its first session
/// only), waits for start_history_flood() to say what to ask below, then
/// asks in bursts and reads nothing after its welcome. Once the server has
/// dropped it (its writes fail when the server gives up on the close), it
/// logs in again under a new name, for as long as the measured clients send.
awaitable<void> history_flood(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    ChatRequest request;
    request.set_type("message");
    request.set_content(std::string(post_bytes, 'h'));
    const auto post = request.SerializeAsString();
    bool posted = false;
    for (int round = 0; run.phase.sending.load(std::memory_order_relaxed); ++round) {
        WebSocket ws(executor);
        bool up = co_await open_websocket(ws, o.server_for(index), connect_timeout);
        if (up) {
            const auto login = login_request(user_name("history", {index, round}));
            beast::flat_buffer welcome;  // the only frame it reads
            up = !std::get<0>(co_await ws.async_write(asio::buffer(login), use_nothrow)) &&
                 !std::get<0>(co_await ws.async_read(welcome, use_nothrow));
        }
        if (!up) {
            co_await pause(retry_after);
            continue;
        }
        beast::get_lowest_layer(ws).expires_never();
        run.history.logins.fetch_add(1, std::memory_order_relaxed);
        for (int i = 0; i < posts_per_flooder && !posted; ++i) {
            if (std::get<0>(co_await ws.async_write(asio::buffer(post), use_nothrow))) {
                break;
            }
            run.history.posted.fetch_add(1);
        }
        posted = true;
        while (run.history.ask_below.load() == 0 &&
               run.phase.sending.load(std::memory_order_relaxed)) {
            co_await pause(50ms);
        }
        request.Clear();
        request.set_type("history");
        request.set_id(run.history.ask_below.load());
        const auto ask = request.SerializeAsString();
        bool broken = false;
        while (!broken && run.phase.sending.load(std::memory_order_relaxed)) {
            for (int i = 0; i < requests_per_burst && !broken; ++i) {
                broken =
                    std::get<0>(co_await ws.async_write(asio::buffer(ask), use_nothrow)).failed();
                run.history.requests.fetch_add(broken ? 0 : 1, std::memory_order_relaxed);
            }
            co_await pause(burst_interval);
        }
    }
}

/// Raises the peak of the server's RSS until the run closes.
awaitable<void> watch_memory(RunState& run) {
    while (!run.phase.closing.load()) {
        raise_to(run.history.server_rss_peak_kib, servers_rss_kib(run.options.server_pids));
        co_await pause(memory_sample_every);
    }
}

}  // namespace

awaitable<void> start_history_flood(RunState& run, Report& report) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto base = run.history.highest_id_seen.load();
    for (int i = 0; i < o.history_flooders; ++i) {
        asio::co_spawn(asio::make_strand(executor), history_flood(run, i), asio::detached);
    }
    const auto posts = posts_per_flooder * o.history_flooders;
    const auto since = Clock::now();
    while ((run.history.posted.load() < posts ||
            run.history.highest_id_seen.load() <
                base + static_cast<std::uint64_t>(run.history.posted.load())) &&
           Clock::now() - since < posts_timeout) {
        co_await pause(50ms);
    }
    std::cerr << "history flooders: " << run.history.posted.load() << " of " << posts
              << " large messages posted; asking below id "
              << run.history.highest_id_seen.load() + 1 << "\n";
    run.history.ask_below = run.history.highest_id_seen.load() + 1;
    if (o.server_pids.empty()) {
        co_return;  // no memory to watch
    }
    report.rss_flood_start = servers_rss_kib(o.server_pids);
    run.history.server_rss_peak_kib = report.rss_flood_start;
    asio::co_spawn(executor, watch_memory(run), asio::detached);
}

}  // namespace chat::bench
