#pragma once
// --storm: a reconnect storm. The clients log in and stay; the server is
// restarted (bench/run storm does it) and they come back as the page does,
// with its backoff and jitter. The report says how long they took to be
// back and how long the presence traffic went on after.

#include <boost/asio/io_context.hpp>

#include "chat/net/asio.hpp"
#include "report.hpp"
#include "run_state.hpp"

namespace chat::bench {

/// Starts --clients storm clients on `io`, then waits for the logins, the
/// restart, the clients' return and the end of the presence traffic (each
/// wait bounded by --storm seconds, the logins by 300 s); fills the storm's
/// figures of `report` and closes the run.
awaitable<void> run_storm(RunState& run, asio::io_context& io, Report& report);

}  // namespace chat::bench
