#pragma once
// The measured run, chat_bench's default, and --idle: the clients log in;
// then either the senders send through a warm-up and a measured window, or
// (--idle) everyone holds still while the server's memory is read.

#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "chat/net/asio.hpp"
#include "client.hpp"
#include "report.hpp"
#include "run_state.hpp"

namespace chat::bench {

/// Logs --clients in on `io` (--connect-concurrency at a time) into
/// `clients` (a slot stays empty for a client that failed), then runs the
/// phases: the idle hold, or the warm-up, the measured window and the
/// drain, with the flooders if asked for; closes the clients at the end.
/// Fills `report`.
awaitable<void> run_measured(RunState& run, asio::io_context& io,
                             std::vector<std::shared_ptr<Client>>& clients, Report& report);

}  // namespace chat::bench
