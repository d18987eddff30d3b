#pragma once
// The history a server keeps, as its Config says.

#include <memory>
#include <stdexcept>

#include "chat/history/config.hpp"
#include "chat/hub/history.hpp"
#include "chat/metrics/metrics.hpp"

namespace chat::history {

/// The history's file cannot be used: unwritable, corrupt, or of a schema
/// version this server does not read. what() names the file.
class OpenError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// SQLite at config.db, or memory only when it is empty. Throws OpenError.
/// Destroying it writes out everything appended and records a clean stop if
/// every message broadcast was kept (History::stopped).
std::unique_ptr<hub::History> open(const Config& config, metrics::Metrics& metrics);

}  // namespace chat::history
