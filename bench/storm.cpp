#include "storm.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "clock.hpp"
#include "connect.hpp"
#include "wire.hpp"

namespace chat::bench {

namespace {

namespace beast = boost::beast;
using namespace std::chrono_literals;

// The page's reconnection delay (www/js/backoff.js): the first, doubled on
// each failed attempt up to the longest; half of it random.
constexpr double backoff_first_seconds = 0.5;
constexpr double backoff_max_seconds = 15;

// Room for large frames: a welcome lists everyone online, and the contract
// has clients accept at least 8 MiB (docs/protocol.md).
constexpr std::size_t max_frame_bytes = std::size_t{64} * 1024 * 1024;
constexpr auto login_timeout = 30s;  // from the connect to the welcome

// The waits of control(): the logins may take this long (the storm's own
// bound, --storm, is for the restart and after); the presence traffic is
// over after this long without a notice or a client coming back.
constexpr double login_limit_seconds = 300;
constexpr std::int64_t quiet_ns = 1'000'000'000;

/// The page's delay before its reconnection attempt `attempt` (from 0).
std::chrono::duration<double> page_backoff(int attempt, std::mt19937& random) {
    const double exponential =
        std::min(backoff_max_seconds, backoff_first_seconds * std::pow(2.0, std::min(attempt, 30)));
    return std::chrono::duration<double>(
        exponential / 2 + exponential / 2 * std::uniform_real_distribution<double>(0, 1)(random));
}

/// One client of the storm: logged in, reads every frame, and when the
/// server goes away comes back as the page does, with the same name.
awaitable<void> storm_client(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto& server = o.server_for(index);
    const auto name = user_name("s", {index});
    std::mt19937 random(static_cast<unsigned>(index) * 7919u + static_cast<unsigned>(getpid()));
    bool was_online = false;
    for (int attempt = 0; !run.phase.closing.load();) {
        WebSocket ws(executor);
        ws.read_message_max(max_frame_bytes);
        bool up = co_await open_websocket(ws, server, login_timeout);
        if (up) {
            const auto login = login_request(name);
            auto [wec, n] = co_await ws.async_write(asio::buffer(login), use_nothrow);
            up = !wec;
        }
        beast::flat_buffer buffer;
        bool welcomed = false;
        while (up) {
            auto [ec, n] = co_await ws.async_read(buffer, use_nothrow);
            if (ec) {
                break;
            }
            const auto frame = beast::buffers_to_string(buffer.data());
            buffer.consume(n);
            if (run.storm.under_way.load(std::memory_order_relaxed)) {
                run.storm.frames.fetch_add(1, std::memory_order_relaxed);
                run.storm.bytes.fetch_add(n, std::memory_order_relaxed);
            }
            const auto view = scan(frame);
            if (!view) {
                continue;
            }
            if (!welcomed) {
                if (view->type != "login") {
                    break;  // refused (the old connection still holds the name): try again
                }
                welcomed = true;
                beast::get_lowest_layer(ws).expires_never();
                attempt = 0;
                run.storm.online.fetch_add(1);
                if (was_online) {
                    run.storm.back.fetch_add(1);
                    raise_to(run.storm.last_welcome_ns, now_ns());
                }
                was_online = true;
            } else if (view->type == "presence" || view->type == "login" ||
                       view->type == "logout") {
                if (run.storm.under_way.load(std::memory_order_relaxed)) {
                    raise_to(run.storm.last_notice_ns, now_ns());
                }
            }
        }
        if (welcomed) {
            run.storm.online.fetch_sub(1);
            if (!run.phase.closing.load()) {
                auto expected = std::int64_t{0};
                run.storm.first_close_ns.compare_exchange_strong(expected, now_ns());
                run.storm.under_way = true;
            }
        }
        co_await pause(page_backoff(attempt++, random));
    }
}

/// --storm: logins, the wait for the restart, the way back, the quiet after.
awaitable<void> control(RunState& run, Report& report) {
    const auto& o = run.options;
    const auto start = Clock::now();
    auto progress = start;
    const auto until = [&](auto done, double limit, const char* what) -> awaitable<bool> {
        const auto since = Clock::now();
        while (!done()) {
            if (std::chrono::duration<double>(Clock::now() - since).count() > limit) {
                std::cerr << "storm: gave up waiting for " << what << "\n";
                co_return false;
            }
            co_await pause(20ms);
            if (Clock::now() - progress >= 1s) {
                progress = Clock::now();
                std::cerr << what << ": " << run.storm.online.load() << " online, "
                          << run.storm.back.load() << " back\n";
            }
        }
        co_return true;
    };
    if (co_await until([&] { return run.storm.online.load() >= o.clients; }, login_limit_seconds,
                       "logging in")) {
        report.login_seconds = std::chrono::duration<double>(Clock::now() - start).count();
        std::cerr << "logged in: " << run.storm.online.load() << " in " << report.login_seconds
                  << " s\n";
        co_await until([&] { return run.storm.first_close_ns.load() != 0; }, o.storm,
                       "the server's restart");
        if (co_await until([&] { return run.storm.back.load() >= o.clients; }, o.storm,
                           "the clients to come back")) {
            // Then until the joins stop coming: a second without a notice.
            co_await until(
                [&] {
                    const auto last =
                        std::max(run.storm.last_notice_ns.load(), run.storm.last_welcome_ns.load());
                    return now_ns() - last > quiet_ns;
                },
                o.storm, "the presence traffic to end");
        }
    }
    const auto first = run.storm.first_close_ns.load();
    report.storm_back_seconds =
        first != 0 && run.storm.back.load() >= o.clients
            ? static_cast<double>(run.storm.last_welcome_ns.load() - first) / 1e9
            : -1;
    report.storm_settled_seconds =
        first != 0 && report.storm_back_seconds >= 0
            ? static_cast<double>(
                  std::max(run.storm.last_notice_ns.load(), run.storm.last_welcome_ns.load()) -
                  first) /
                  1e9
            : -1;
    run.phase.closing = true;
}

}  // namespace

awaitable<void> run_storm(RunState& run, asio::io_context& io, Report& report) {
    for (int i = 0; i < run.options.clients; ++i) {
        asio::co_spawn(asio::make_strand(io), storm_client(run, i), asio::detached);
    }
    co_await control(run, report);
}

}  // namespace chat::bench
