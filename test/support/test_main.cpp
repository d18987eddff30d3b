// The one Boost.Test main of every test executable: logging quiet unless
// CHAT_TEST_LOG_LEVEL asks (trace, debug, info, warning, error).

#define BOOST_TEST_MODULE chat
#include <cstdlib>
#include <memory>

#include <google/protobuf/stubs/logging.h>
#include <boost/test/unit_test.hpp>

#include "chat/logging/log.hpp"

namespace {

struct QuietLogging {
    QuietLogging() {
        chat::logging::Config config;
        config.level = chat::logging::Level::error;
        if (const char* level = std::getenv("CHAT_TEST_LOG_LEVEL")) {
            config.level = chat::logging::parse_level(level).value_or(config.level);
        }
        logging = std::make_unique<chat::logging::Logging>(config);
        // Malformed client frames are expected here; protobuf would print each.
        google::protobuf::SetLogHandler(nullptr);
    }
    std::unique_ptr<chat::logging::Logging> logging;
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(QuietLogging);
