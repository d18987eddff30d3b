#pragma once
// chat_app's command line and CHAT_* environment variables.

#include <optional>
#include <string>
#include <vector>

#include "chat/cluster/redis_cluster.hpp"
#include "chat/history/config.hpp"
#include "chat/logging/log.hpp"
#include "chat/session/config.hpp"

namespace chat::app {

struct Options {
    session::Config server;
    logging::Config log;
    history::Config history;
    std::optional<cluster::Config> cluster;  // --redis: a node of a shared room
    std::vector<std::string> warnings;       // to log once logging is set up
};

/// The outcome of parsing: options to run with, or an exit code with what to print.
struct Parsed {
    std::optional<Options> options;
    int exit_code = 0;
    std::string output;  // --help text, or the error
};

/// Command line first, then CHAT_<OPTION> environment variables (CHAT_PORT for
/// --port, CHAT_IDLE_TIMEOUT for --idle-timeout, ...), then the defaults.
/// `bundled_www` is the default of --www. Bad values give exit code 2.
Parsed parse_options(int argc, const char* const* argv, const std::string& bundled_www);

}  // namespace chat::app
