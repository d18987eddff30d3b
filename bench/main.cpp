// chat_bench: a load generator for the chat service, speaking only the wire
// contract (docs/protocol.md). It logs N clients in, has K of them send, and
// measures deliveries per second, loss and end-to-end latency, with the
// server's CPU time per delivery when given the server's pid. --idle instead
// holds N logged-in connections and reports the server's memory per
// connection; --storm holds them through a server restart. --rooms N has
// the clients join N rooms after the logins (timed), and send and count in
// them: loss and order faults per room.
//
// The parts, by role:
//   options        the command line
//   run_state      what the coroutines share: the phase and the counters
//   client         a measured client; ws_frames, its frames on the socket;
//                  wire, its reading of a ChatRequest without decoding it;
//                  histogram, its latencies
//   connect        how every kind of client reaches the server and logs in
//   measure        the measured run and --idle; flood and history_flood add
//                  misbehaving clients to it
//   storm          --storm
//   proc_sampler   the CPU time and memory of the server, of this process and
//                  of the machine
//   report         the text and JSON reports
//   clock          the one clock, and the pause the phases wait with
// This file wires them: one io_context on --threads threads, one mode.

#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "chat/net/asio.hpp"
#include "chat/net/file_limit.hpp"
#include "client.hpp"
#include "measure.hpp"
#include "options.hpp"
#include "proc_sampler.hpp"
#include "report.hpp"
#include "run_state.hpp"
#include "storm.hpp"

namespace chat::bench {
namespace {

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

}  // namespace
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
    Report report;
    report.rss_before = o.server_pids.empty() ? -1 : servers_rss_kib(o.server_pids);

    if (o.storm > 0) {
        run_until_done(io, o.threads, run_storm(run, io, report));
        print_report(run, report);
        return report.storm_back_seconds >= 0 ? 0 : 1;
    }
    std::vector<std::shared_ptr<Client>> clients(static_cast<std::size_t>(o.clients));
    run.ack_all.clients = &clients;
    run_until_done(io, o.threads, run_measured(run, io, clients, report));
    print_report(run, report);
    return report.connected == o.clients && run.rooms.joined.load() == report.joins_asked ? 0 : 1;
}
