#pragma once
// --flooders: abusive clients beside the measured ones, to see what the
// rate limit (docs/protocol.md, rule 7) spares the others.

#include "chat/net/asio.hpp"
#include "run_state.hpp"

namespace chat::bench {

/// One flooder: logs in, then sends messages as fast as the socket takes
/// them, ignoring the rate limit and the server's errors, until the server
/// closes it; then does it again under a new name, for as long as the
/// measured clients send. Its frames are not counted as deliveries; its
/// logins, frames and close codes are.
awaitable<void> flood(RunState& run, int index);

}  // namespace chat::bench
