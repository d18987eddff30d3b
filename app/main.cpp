// chat_app: parses the options, sets up logging, and runs a chat server on
// --threads I/O threads until SIGINT or SIGTERM has shut it down gracefully.

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <google/protobuf/stubs/logging.h>
#include <boost/asio/signal_set.hpp>

#include "chat/cluster/redis_cluster.hpp"
#include "chat/history/open.hpp"
#include "chat/logging/log.hpp"
#include "chat/net/file_limit.hpp"
#include "chat/net/io_contexts.hpp"
#include "chat/session/server.hpp"
#include "options.hpp"

namespace {

namespace fs = std::filesystem;

/// The www folder shipped with the binary: beside it (installed, container),
/// or the source tree's when it runs from the build folder.
std::string bundled_www(const char* argv0) {
    std::error_code ec;
    const auto exe = fs::canonical("/proc/self/exe", ec);
    const auto dir = ec ? fs::absolute(argv0).parent_path() : exe.parent_path();
    for (const auto& candidate : {dir / "www", dir / "../share/chat/www"}) {
        if (fs::is_regular_file(candidate / "home.html", ec)) {
            return fs::weakly_canonical(candidate).string();
        }
    }
    return CHAT_SOURCE_WWW_DIR;
}

/// protobuf reports malformed client input (invalid UTF-8 in a string field) on
/// stderr by default; it is the client's fault, so it belongs at debug level.
void protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                  const std::string& message) {
    if (level >= google::protobuf::LOGLEVEL_FATAL) {
        CHAT_LOG(error) << "protobuf " << file << ":" << line << ": " << message;
    } else {
        CHAT_LOG(debug) << "protobuf: " << message;
    }
}

}  // namespace

int main(int argc, char* argv[]) {
    const auto parsed = chat::app::parse_options(argc, argv, bundled_www(argv[0]));
    if (!parsed.options) {
        (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.output;
        return parsed.exit_code;
    }
    auto options = *parsed.options;
    options.server.www_assets = CHAT_WWW_ASSETS_DIR;  // protobuf.js, staged by the build

    try {
        const chat::logging::Logging logging(options.log);
        for (const auto& warning : options.warnings) {
            CHAT_LOG(warning) << warning;
        }
        chat::net::raise_file_limit();
        google::protobuf::SetLogHandler(protobuf_log);

        chat::net::IoContexts contexts(options.server.threads);
        chat::metrics::Metrics metrics;
        // Destroyed after the server and before the contexts: it writes out every
        // message and records the clean stop that keeps the epoch (rule 12).
        // In a cluster, Redis keeps the history instead (rule 15).
        std::unique_ptr<chat::hub::History> history;
        std::unique_ptr<chat::cluster::RedisCluster> cluster;
        if (options.cluster) {
            metrics.node_id = options.cluster->node_id;
            cluster = std::make_unique<chat::cluster::RedisCluster>(contexts.main().get_executor(),
                                                                    *options.cluster, metrics);
        } else {
            history = chat::history::open(options.history, metrics);
        }
        chat::session::Server server(contexts, options.server, metrics,
                                     cluster ? cluster->history() : *history, cluster.get());

        // The first SIGINT/SIGTERM shuts down gracefully; a second one during
        // the grace period ends the process at once, as Ctrl-C twice should.
        boost::asio::signal_set signals(contexts.main(), SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code& ec, int signal) {
            if (ec) {
                return;
            }
            CHAT_LOG(info) << "signal " << signal << ": shutting down";
            server.stop();
            signals.async_wait([](const boost::system::error_code& again, int second) {
                if (!again) {
                    // Both log sinks flush each record: nothing is lost.
                    CHAT_LOG(warning) << "signal " << second << " again: exiting now";
                    std::_Exit(128 + second);
                }
            });
        });
        server.start();
        CHAT_LOG(info) << "chat_app running on " << options.server.threads << " threads";

        // An exception that escapes a handler (a loop that failed, such as
        // the cluster's) stops every thread: the process then exits 1 rather
        // than serve on with a part dead.
        bool failed = false;
        try {
            contexts.run();
        } catch (const std::exception& error) {
            CHAT_LOG(error) << "fatal: " << error.what() << "; stopping (exit 1)";
            failed = true;
        }
        if (failed || server.failed()) {
            CHAT_LOG(error) << "chat_app stopped after a failure";
            return 1;
        }
        CHAT_LOG(info) << "chat_app stopped";
        return 0;
    } catch (const chat::history::OpenError& error) {
        // Bad input, as a bad option is: never a silently empty history.
        std::cerr << "chat_app: " << error.what() << "\n";
        return 2;
    } catch (const std::exception& error) {
        std::cerr << "chat_app: " << error.what() << "\n";
        return 1;
    }
}
