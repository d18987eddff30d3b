#pragma once
// Each connection is a file descriptor.

namespace chat::net {

/// Raises the soft limit on open files (often 1024) to the hard one, as Go's
/// runtime does for its servers. Best effort: a failure leaves it as it was.
void raise_file_limit() noexcept;

}  // namespace chat::net
