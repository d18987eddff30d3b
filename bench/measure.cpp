#include "measure.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <mutex>

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include "clock.hpp"
#include "flood.hpp"
#include "history_flood.hpp"
#include "proc_sampler.hpp"

namespace chat::bench {

namespace {

using namespace std::chrono_literals;

constexpr double idle_hold_seconds = 3;  // without --hold: enough for the server to settle
constexpr auto drain_limit = 5s;         // for the window's messages to arrive after it
constexpr auto close_grace = 500ms;      // for the closing handshakes before the report
constexpr auto join_limit = 60s;         // for every client's join to be answered

/// --rooms: the rooms' names, unique to this process as the user names are
/// ("r<pid>-<k>"), their counters and, with --ack all, their receipt rings:
/// per room at least twice the messages its senders can have in flight,
/// and more (up to 65,536, as the lobby's) while the rings stay within
/// about 4 MiB in all.
void setup_rooms(RunState& run) {
    const auto& o = run.options;
    auto& rooms = run.rooms;
    const auto count = static_cast<std::size_t>(o.rooms);
    rooms.names.reserve(count);
    for (int k = 0; k < o.rooms; ++k) {
        rooms.names.push_back(user_name("r", {k}));
    }
    rooms.rooms.reset(new RunState::Rooms::Room[count]);
    if (o.ack_all) {
        const auto senders_per_room = static_cast<std::size_t>((o.senders + o.rooms - 1) / o.rooms);
        const auto least = std::bit_ceil(
            std::max<std::size_t>(2 * senders_per_room * static_cast<std::size_t>(o.window), 2));
        const auto share = std::min<std::size_t>(
            RunState::AckAll::slots, std::bit_floor(std::max<std::size_t>(1, (1u << 20) / count)));
        rooms.ack_slots = std::max(least, share);
        rooms.receipts.reset(new std::atomic<int>[count * rooms.ack_slots] {});
    }
}

/// One of the --connect-concurrency connectors: logs clients in, one at a
/// time, taking the next index until all are taken.
awaitable<void> connect_clients(RunState& run, asio::io_context& io,
                                std::vector<std::shared_ptr<Client>>& clients) {
    for (int i; (i = run.logins.next_index.fetch_add(1)) < run.options.clients;) {
        auto client = std::make_shared<Client>(run, asio::make_strand(io), i);
        const bool ok =
            co_await asio::co_spawn(client->executor(), client->start(), asio::use_awaitable);
        if (!ok) {
            ++run.logins.failed;
            continue;
        }
        clients[static_cast<std::size_t>(i)] = client;
        asio::co_spawn(client->executor(), client->read_loop(), asio::detached);
        ++run.logins.connected;
    }
}

/// Until every client has logged in or failed; progress once a second.
awaitable<void> wait_for_logins(RunState& run, Report& report) {
    const auto& o = run.options;
    const auto start = Clock::now();
    auto last_progress = start;
    while (run.logins.connected.load() + run.logins.failed.load() < o.clients) {
        co_await pause(50ms);
        if (Clock::now() - last_progress >= 1s) {
            last_progress = Clock::now();
            std::cerr << "logging in: " << run.logins.connected.load() << " of " << o.clients
                      << "\n";
        }
    }
    report.login_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    report.connected = run.logins.connected.load();
    std::cerr << "logged in: " << report.connected << " in " << report.login_seconds << " s\n";
}

/// --rooms: every client logged in joins its room, all at once; until each
/// has its welcome and history, or an error, or join_limit. The phase's
/// time is from the first join sent to the last history received.
awaitable<void> join_rooms(RunState& run, std::vector<std::shared_ptr<Client>>& clients,
                           Report& report) {
    auto& rooms = run.rooms;
    for (auto& client : clients) {
        if (client) {
            asio::co_spawn(client->executor(), client->join_room(), asio::detached);
            ++report.joins_asked;
        }
    }
    const auto start = Clock::now();
    auto last_progress = start;
    while (rooms.joined.load() + rooms.join_failed.load() < report.joins_asked &&
           Clock::now() - start < join_limit) {
        co_await pause(20ms);
        if (Clock::now() - last_progress >= 1s) {
            last_progress = Clock::now();
            std::cerr << "joining: " << rooms.joined.load() << " of " << report.joins_asked << "\n";
        }
    }
    if (rooms.joined.load() > 0) {
        report.join_seconds =
            static_cast<double>(rooms.last_joined_ns.load() - rooms.first_join_ns.load()) / 1e9;
    }
    std::cerr << "joined: " << rooms.joined.load() << " of " << report.joins_asked << " in "
              << run.options.rooms << " rooms in " << report.join_seconds << " s ("
              << rooms.join_failed.load() << " failed)\n";
    {
        std::lock_guard lock(run.mutex);
        if (!run.first_join_refusal.empty()) {
            std::cerr << "a join was refused: " << run.first_join_refusal << "\n";
        }
    }
}

/// The warm-up, then the measured window: the deliveries and the CPU time
/// of the server, of the load generator and of the machine during it;
/// progress once a second.
awaitable<void> measure_window(RunState& run, Report& report) {
    const auto& o = run.options;
    co_await pause(std::chrono::duration<double>(o.warmup));
    const auto server_cpu0 = servers_cpu(o.server_pids);
    const auto bench_cpu0 = self_cpu();
    const auto machine0 = machine_time();
    const auto delivered0 = run.traffic.delivered_total.load();
    const auto window_start = Clock::now();
    run.phase.window_start_ns = now_ns();
    for (int second = 1; Clock::now() - window_start < std::chrono::duration<double>(o.duration);
         ++second) {
        const auto before = run.traffic.delivered_total.load();
        const double left =
            o.duration - std::chrono::duration<double>(Clock::now() - window_start).count();
        co_await pause(std::chrono::duration<double>(std::min(1.0, left)));
        std::cerr << "t=" << second << "s deliveries/s "
                  << (run.traffic.delivered_total.load() - before) << " sent "
                  << run.traffic.sent_total.load() << " errors " << run.traffic.errors.load()
                  << "\n";
    }
    run.phase.window_end_ns = now_ns();
    report.window_seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
    report.delivered_in_window_span = run.traffic.delivered_total.load() - delivered0;
    if (!o.server_pids.empty()) {
        report.server_time = servers_cpu(o.server_pids) - server_cpu0;
    }
    report.bench_time = self_cpu() - bench_cpu0;
    report.machine = machine_time() - machine0;
}

/// Until what was sent in the window has all arrived, or drain_limit.
awaitable<void> drain(RunState& run, Report& report) {
    const auto expected = [&] {
        if (run.options.rooms == 0) {
            return run.traffic.sent_in_window.load() * static_cast<std::uint64_t>(report.connected);
        }
        std::uint64_t sum = 0;  // each room's messages to each of its members
        for (int k = 0; k < run.options.rooms; ++k) {
            const auto& room = run.rooms.room(k);
            sum += room.sent_in_window.load() * static_cast<std::uint64_t>(room.members.load());
        }
        return sum;
    };
    report.expected_deliveries = expected();
    const auto drain_start = Clock::now();
    while (run.traffic.delivered_in_window.load() < report.expected_deliveries &&
           Clock::now() - drain_start < drain_limit) {
        co_await pause(20ms);
        report.expected_deliveries = expected();
    }
}

}  // namespace

awaitable<void> run_measured(RunState& run, asio::io_context& io,
                             std::vector<std::shared_ptr<Client>>& clients, Report& report) {
    const auto& o = run.options;
    if (o.rooms > 0) {
        setup_rooms(run);
    }
    for (int c = 0; c < std::min(o.connect_concurrency, o.clients); ++c) {
        asio::co_spawn(io, connect_clients(run, io, clients), asio::detached);
    }
    co_await wait_for_logins(run, report);
    if (o.rooms > 0) {
        co_await join_rooms(run, clients, report);
    }
    if (o.idle) {
        co_await pause(std::chrono::duration<double>(
            o.hold > 0 ? o.hold : std::min(o.duration, idle_hold_seconds)));
        if (!o.server_pids.empty()) {
            report.rss_after = servers_rss_kib(o.server_pids);
        }
    } else {
        if (o.history_flooders > 0) {
            co_await start_history_flood(run, report);
        }
        for (int i = 0; i < o.senders && i < o.clients; ++i) {
            if (const auto& client = clients[static_cast<std::size_t>(i)]) {
                asio::co_spawn(client->executor(), client->send_loop(), asio::detached);
            }
        }
        for (int i = 0; i < o.flooders; ++i) {
            asio::co_spawn(asio::make_strand(co_await asio::this_coro::executor), flood(run, i),
                           asio::detached);
        }
        co_await measure_window(run, report);
        run.phase.sending = false;
        for (auto& client : clients) {
            if (client) {
                client->stop_sending();
            }
        }
        co_await drain(run, report);
    }
    run.phase.closing = true;
    for (auto& client : clients) {
        if (client) {
            asio::co_spawn(client->executor(), client->close(), asio::detached);
        }
    }
    co_await pause(close_grace);
}

}  // namespace chat::bench
