#pragma once
// --history-flooders: clients that ask for pages of history (docs/protocol.md,
// rule 14) within the rate limit and never read the answers, beside the
// measured clients: the server must bound what it holds for them (rule 9).

#include "chat/net/asio.hpp"
#include "report.hpp"
#include "run_state.hpp"

namespace chat::bench {

/// Starts the history flooders and waits until their large messages are
/// posted and the measured clients have them; then tells the flooders what
/// to ask below, and (with --server-pid) samples the server's memory until
/// the run closes: report.rss_flood_start and the peak in RunState.
awaitable<void> start_history_flood(RunState& run, Report& report);

}  // namespace chat::bench
