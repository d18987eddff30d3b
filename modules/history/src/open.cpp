#include "chat/history/open.hpp"

#include "chat/history/memory_history.hpp"
#include "chat/history/sqlite_history.hpp"

namespace chat::history {

std::unique_ptr<hub::History> open(const Config& config, metrics::Metrics& metrics) {
    if (config.db.empty()) {
        return std::make_unique<MemoryHistory>(config, &metrics);
    }
    return std::make_unique<SqliteHistory>(config, metrics);
}

}  // namespace chat::history
