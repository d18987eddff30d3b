// chat_bench: a load generator for the chat service, speaking only the wire
// contract (docs/protocol.md). It logs N clients in, has K of them send, and
// measures deliveries per second, loss and end-to-end latency, with the
// server's CPU time per delivery when given the server's pid. --idle instead
// holds N logged-in connections and reports the server's memory per connection.

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "chat/chat.pb.h"
#include "chat/net/asio.hpp"
#include "chat/net/file_limit.hpp"
#include "client.hpp"
#include "clock.hpp"
#include "histogram.hpp"
#include "options.hpp"
#include "proc_sampler.hpp"
#include "report.hpp"
#include "run_state.hpp"
#include "wire.hpp"

namespace chat::bench {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using namespace std::chrono_literals;

/// One abusive client: logs in, then sends messages as fast as the socket takes
/// them, ignoring the rate limit and the server's errors, until the server
/// closes it; then does it again under a new name, for as long as the others
/// send. Its frames are not counted as deliveries.
struct Flooder {
    websocket::stream<beast::tcp_stream> ws;
    bool closed = false;
    explicit Flooder(asio::any_io_executor executor) : ws(std::move(executor)) {}
};

awaitable<void> drain_flooder(RunState& run, std::shared_ptr<Flooder> flooder) {
    beast::flat_buffer buffer;
    for (;;) {
        auto [ec, n] = co_await flooder->ws.async_read(buffer, use_nothrow);
        buffer.consume(buffer.size());
        if (ec) {
            run.flooder_closed(ec == websocket::error::closed ? flooder->ws.reason().code : 1006);
            flooder->closed = true;
            co_return;
        }
    }
}

awaitable<void> flood(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    ChatRequest message;
    message.set_type("message");
    message.set_content(std::string(static_cast<std::size_t>(o.size), 'f'));
    const auto bytes = message.SerializeAsString();
    for (int round = 0; run.phase.sending.load(std::memory_order_relaxed); ++round) {
        auto flooder = std::make_shared<Flooder>(executor);
        auto& tcp_layer = beast::get_lowest_layer(flooder->ws);
        tcp::resolver resolver(executor);
        const auto& server = o.server_for(index);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        tcp_layer.expires_after(10s);
        if (rec || std::get<0>(co_await tcp_layer.async_connect(endpoints, use_nothrow)) ||
            std::get<0>(
                co_await flooder->ws.async_handshake(server.host, server.path, use_nothrow))) {
            co_await pause(std::chrono::duration<double>(0.1));
            continue;
        }
        tcp_layer.expires_never();
        flooder->ws.binary(true);
        ChatRequest login;
        login.set_type("login");
        login.set_user_name("flood" + std::to_string(getpid()) + "-" + std::to_string(index) + "-" +
                            std::to_string(round));
        const auto login_bytes = login.SerializeAsString();
        if (std::get<0>(co_await flooder->ws.async_write(asio::buffer(login_bytes), use_nothrow))) {
            continue;
        }
        run.flood.logins.fetch_add(1, std::memory_order_relaxed);
        asio::co_spawn(executor, drain_flooder(run, flooder), asio::detached);
        while (!flooder->closed && run.phase.sending.load(std::memory_order_relaxed)) {
            if (std::get<0>(co_await flooder->ws.async_write(asio::buffer(bytes), use_nothrow))) {
                break;
            }
            run.flood.frames_sent.fetch_add(1, std::memory_order_relaxed);
        }
        if (!flooder->closed) {
            tcp_layer.expires_after(5s);
            co_await flooder->ws.async_close(websocket::close_code::normal, use_nothrow);
        }
    }
}

/// One client of --history-flooders, the attack of the issue on rule 14:
/// logs in, posts 4 messages of 4,000 bytes (once), then, when control()
/// has seen everyone's, asks for the page below them in bursts of 35 every
/// 2 s (17.5 frames/s: within the contract's 20/s with a burst of 40) and
/// reads nothing after its welcome. Once the server has dropped it (its
/// writes fail when the server gives up on the close), it logs in again
/// under a new name, for as long as the others send.
awaitable<void> history_flood(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto& server = o.server_for(index);
    ChatRequest request;
    request.set_type("message");
    request.set_content(std::string(4000, 'h'));
    const auto post = request.SerializeAsString();
    bool posted = false;
    for (int round = 0; run.phase.sending.load(std::memory_order_relaxed); ++round) {
        websocket::stream<beast::tcp_stream> ws(executor);
        auto& tcp_layer = beast::get_lowest_layer(ws);
        tcp_layer.expires_after(10s);
        tcp::resolver resolver(executor);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        bool up = !rec && !std::get<0>(co_await tcp_layer.async_connect(endpoints, use_nothrow)) &&
                  !std::get<0>(co_await ws.async_handshake(server.host, server.path, use_nothrow));
        if (up) {
            ws.binary(true);
            request.Clear();
            request.set_type("login");
            request.set_user_name("history" + std::to_string(getpid()) + "-" +
                                  std::to_string(index) + "-" + std::to_string(round));
            const auto login = request.SerializeAsString();
            beast::flat_buffer welcome;  // the only frame it reads
            up = !std::get<0>(co_await ws.async_write(asio::buffer(login), use_nothrow)) &&
                 !std::get<0>(co_await ws.async_read(welcome, use_nothrow));
        }
        if (!up) {
            co_await pause(std::chrono::duration<double>(0.1));
            continue;
        }
        tcp_layer.expires_never();
        run.history.logins.fetch_add(1, std::memory_order_relaxed);
        for (int i = 0; i < 4 && !posted; ++i) {
            if (std::get<0>(co_await ws.async_write(asio::buffer(post), use_nothrow))) {
                break;
            }
            run.history.posted.fetch_add(1);
        }
        posted = true;
        while (run.history.ask_below.load() == 0 &&
               run.phase.sending.load(std::memory_order_relaxed)) {
            co_await pause(std::chrono::duration<double>(0.05));
        }
        request.Clear();
        request.set_type("history");
        request.set_id(run.history.ask_below.load());
        const auto ask = request.SerializeAsString();
        bool broken = false;
        while (!broken && run.phase.sending.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 35 && !broken; ++i) {
                broken =
                    std::get<0>(co_await ws.async_write(asio::buffer(ask), use_nothrow)).failed();
                run.history.requests.fetch_add(broken ? 0 : 1, std::memory_order_relaxed);
            }
            co_await pause(std::chrono::duration<double>(2));
        }
    }
}

/// The history flooders' first phase: their large messages are posted and
/// the clients have them; then they are told what to ask below, and the
/// server's memory is watched from there on.
awaitable<void> start_history_flood(RunState& run, Report& report) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto base = run.history.highest_id_seen.load();
    for (int i = 0; i < o.history_flooders; ++i) {
        asio::co_spawn(asio::make_strand(executor), history_flood(run, i), asio::detached);
    }
    const auto posts = 4 * o.history_flooders;
    const auto since = Clock::now();
    while ((run.history.posted.load() < posts ||
            run.history.highest_id_seen.load() <
                base + static_cast<std::uint64_t>(run.history.posted.load())) &&
           Clock::now() - since < 30s) {
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
    asio::co_spawn(
        executor,
        [](RunState& watched) -> awaitable<void> {
            while (!watched.phase.closing.load()) {
                raise_to(watched.history.server_rss_peak_kib,
                         servers_rss_kib(watched.options.server_pids));
                co_await pause(100ms);
            }
        }(run),
        asio::detached);
}

/// Runs the phases: logins, (idle hold | warm-up, measurement, drain), closes.
awaitable<void> control(RunState& run, std::vector<std::shared_ptr<Client>>& clients,
                        Report& report) {
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

    if (o.idle) {
        co_await pause(
            std::chrono::duration<double>(o.hold > 0 ? o.hold : std::min(o.duration, 3.0)));
        if (!o.server_pids.empty()) {
            report.rss_after = servers_rss_kib(o.server_pids);
        }
    } else {
        if (o.history_flooders > 0) {
            co_await start_history_flood(run, report);
        }
        for (int i = 0; i < o.senders && i < o.clients; ++i) {
            if (clients[static_cast<std::size_t>(i)]) {
                auto& client = clients[static_cast<std::size_t>(i)];
                asio::co_spawn(client->executor(), client->send_loop(), asio::detached);
            }
        }
        for (int i = 0; i < o.flooders; ++i) {
            asio::co_spawn(asio::make_strand(co_await asio::this_coro::executor), flood(run, i),
                           asio::detached);
        }
        co_await pause(std::chrono::duration<double>(o.warmup));
        const auto server_cpu0 = servers_cpu(o.server_pids);
        const auto bench_cpu0 = self_cpu();
        const auto machine0 = machine_time();
        const auto delivered0 = run.traffic.delivered_total.load();
        const auto window_start = Clock::now();
        run.phase.window_start_ns = now_ns();
        for (int second = 1;
             Clock::now() - window_start < std::chrono::duration<double>(o.duration); ++second) {
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
        run.phase.sending = false;
        for (auto& client : clients) {
            if (client) {
                client->stop_sending();
            }
        }
        // Drain: what was sent in the window should all arrive.
        report.expected_deliveries =
            run.traffic.sent_in_window.load() * static_cast<std::uint64_t>(report.connected);
        const auto drain_start = Clock::now();
        while (run.traffic.delivered_in_window.load() < report.expected_deliveries &&
               Clock::now() - drain_start < 5s) {
            co_await pause(20ms);
            report.expected_deliveries =
                run.traffic.sent_in_window.load() * static_cast<std::uint64_t>(report.connected);
        }
    }
    run.phase.closing = true;
    for (auto& client : clients) {
        if (client) {
            asio::co_spawn(client->executor(), client->close(), asio::detached);
        }
    }
    co_await pause(std::chrono::duration<double>(0.5));
}

/// The page's reconnection delay (www/js/backoff.js): 500 ms doubling up to
/// 15 s, half of it random.
std::chrono::duration<double> page_backoff(int attempt, std::mt19937& random) {
    const double exponential = std::min(15.0, 0.5 * std::pow(2.0, std::min(attempt, 30)));
    return std::chrono::duration<double>(
        exponential / 2 + exponential / 2 * std::uniform_real_distribution<double>(0, 1)(random));
}

/// One client of the storm: logged in, reads every frame, and when the
/// server goes away comes back as the page does, with the same name.
awaitable<void> storm_client(RunState& run, int index) {
    const auto& o = run.options;
    const auto executor = co_await asio::this_coro::executor;
    const auto& server = o.server_for(index);
    const auto name = "s" + std::to_string(getpid()) + "-" + std::to_string(index);
    std::mt19937 random(static_cast<unsigned>(index) * 7919u + static_cast<unsigned>(getpid()));
    bool was_online = false;
    for (int attempt = 0; !run.phase.closing.load();) {
        websocket::stream<beast::tcp_stream> ws(executor);
        ws.read_message_max(std::size_t{64} * 1024 * 1024);
        auto& tcp_layer = beast::get_lowest_layer(ws);
        tcp_layer.expires_after(30s);
        tcp::resolver resolver(executor);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(server.host, server.port, use_nothrow);
        bool up = !rec;
        if (up) {
            auto [cec, endpoint] = co_await tcp_layer.async_connect(endpoints, use_nothrow);
            up = !cec;
        }
        if (up) {
            auto [hec] = co_await ws.async_handshake(server.host, server.path, use_nothrow);
            up = !hec;
        }
        if (up) {
            ws.binary(true);
            ChatRequest login;
            login.set_type("login");
            login.set_user_name(name);
            const auto bytes = login.SerializeAsString();
            auto [wec, n] = co_await ws.async_write(asio::buffer(bytes), use_nothrow);
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
                tcp_layer.expires_never();
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
awaitable<void> storm_control(RunState& run, Report& report) {
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
    if (co_await until([&] { return run.storm.online.load() >= o.clients; }, 300, "logging in")) {
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
                    return now_ns() - last > 1'000'000'000;
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

/// Runs `io` on `threads` threads until `control` has ended (and the clients
/// with it); rethrows what `control` threw.
void run_until_done(asio::io_context& io, int threads, awaitable<void> control) {
    asio::co_spawn(io, std::move(control), [&io](const std::exception_ptr& e) {
        if (e) {
            std::rethrow_exception(e);
        }
        io.stop();
    });
    std::vector<std::jthread> workers;
    for (int i = 1; i < threads; ++i) {
        workers.emplace_back([&io] { io.run(); });
    }
    io.run();
}

}  // namespace chat::bench

int main(int argc, char** argv) {
    using namespace chat::bench;
    using namespace chat;
    const auto options = parse_options(argc, argv);
    if (!options) {
        return 0;
    }
    chat::net::raise_file_limit();
    RunState run;
    run.options = *options;
    const auto& o = run.options;

    asio::io_context io(o.threads);
    std::vector<std::shared_ptr<Client>> clients(static_cast<std::size_t>(o.clients));
    run.ack_all.clients = &clients;
    Report report;
    report.rss_before = o.server_pids.empty() ? -1 : servers_rss_kib(o.server_pids);

    if (o.storm > 0) {
        for (int i = 0; i < o.clients; ++i) {
            asio::co_spawn(asio::make_strand(io), storm_client(run, i), asio::detached);
        }
        run_until_done(io, o.threads, storm_control(run, report));
        print_report(run, report);
        return report.storm_back_seconds >= 0 ? 0 : 1;
    }

    std::atomic<int> next{0};
    const auto connector = [&]() -> awaitable<void> {
        for (int i; (i = next.fetch_add(1)) < o.clients;) {
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
    };
    for (int c = 0; c < std::min(o.connect_concurrency, o.clients); ++c) {
        asio::co_spawn(io, connector(), asio::detached);
    }
    run_until_done(io, o.threads, control(run, clients, report));
    print_report(run, report);
    return report.connected == o.clients ? 0 : 1;
}
