#include "options.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <boost/program_options.hpp>

namespace chat::app {

namespace po = boost::program_options;

namespace {

constexpr const char* usage =
    "Usage: chat_app [options]\n"
    "A WebSocket chat server (protobuf frames on /ws, the chat page on /).\n"
    "Every option can also be given as an environment variable: CHAT_ and the\n"
    "option's name in capitals with '_' for '-' (CHAT_PORT=9001). The command\n"
    "line wins over the environment.\n\n";

struct Invalid : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <typename T>
void check(bool ok, const char* option, const T& value, const char* requirement) {
    if (!ok) {
        std::ostringstream text;
        text << "--" << option << " " << requirement << " (got " << value << ")";
        throw Invalid(text.str());
    }
}

/// The host name and the process id: unique among the nodes of one room.
std::string default_node_id() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
        std::snprintf(host, sizeof host, "node");
    }
    return std::string(host) + "-" + std::to_string(getpid());
}

bool valid_node_id(const std::string& id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
               c == '.' || c == ':';
    });
}

std::chrono::milliseconds seconds_option(const po::variables_map& vm, const char* option,
                                         bool zero_allowed) {
    const double seconds = vm[option].as<double>();
    check(std::isfinite(seconds) && (zero_allowed ? seconds >= 0 : seconds > 0) && seconds < 1e6,
          option, seconds, zero_allowed ? "must be seconds >= 0" : "must be seconds > 0");
    return std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000)));
}

template <typename T>
T integer_option(const po::variables_map& vm, const char* option, long long min, long long max) {
    const long long value = vm[option].as<long long>();
    std::ostringstream requirement;
    requirement << "must be between " << min << " and " << max;
    check(value >= min && value <= max, option, value, requirement.str().c_str());
    return static_cast<T>(value);
}

}  // namespace

Parsed parse_options(int argc, const char* const* argv, const std::string& bundled_www) {
    const session::Config defaults;
    const history::Config history_defaults;
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

    po::options_description description("Options");
    // clang-format off
    description.add_options()
        ("help,h", "print this help and exit")
        ("address", po::value<std::string>()->default_value(defaults.address),
            "address to listen on")
        ("port", po::value<long long>()->default_value(defaults.port),
            "TCP port to listen on (0: any free port, logged at start)")
        ("threads", po::value<long long>()->default_value(cores),
            "I/O threads, each with an event loop of its own; a connection stays on one "
            "(default: the number of cores)")
        ("www", po::value<std::string>()->default_value(bundled_www),
            "folder of the static files served over HTTP (home.html is /)")
        ("log-dir", po::value<std::string>()->default_value("logs"),
            "folder of the log file sys.log (rotated at 10 MiB, 5 old files kept); "
            "empty: log to the console only")
        ("log-level", po::value<std::string>()->default_value("info"),
            "trace, debug, info, warning or error")
        ("idle-timeout", po::value<double>()->default_value(30),
            "seconds of silence before a connection is closed; pinged at half of it")
        ("max-message-bytes", po::value<long long>()->default_value(
            static_cast<long long>(defaults.max_message_bytes)),
            "largest WebSocket message accepted; larger ones close with 1009")
        ("max-content-bytes", po::value<long long>()->default_value(
            static_cast<long long>(defaults.max_content_bytes)),
            "largest chat message content, in bytes")
        ("rate", po::value<double>()->default_value(defaults.rate),
            "frames per second allowed per connection (0: no limit)")
        ("burst", po::value<double>()->default_value(defaults.burst),
            "frames a connection may send at once above the rate")
        ("flood-limit", po::value<long long>()->default_value(defaults.flood_limit),
            "frames over the rate limit before the connection is closed with 1008")
        ("queue-depth", po::value<long long>()->default_value(
            static_cast<long long>(defaults.queue_depth)),
            "outgoing frames queued per connection before it is dropped as too slow")
        ("queue-bytes", po::value<long long>()->default_value(
            static_cast<long long>(defaults.queue_bytes)),
            "bytes of outgoing frames queued per connection before it is dropped as too slow "
            "(a single larger frame still goes out); keep it above the history frame a resume "
            "brings, up to --resume-limit messages of --max-content-bytes")
        ("writers-awake", po::value<long long>()->default_value(
            static_cast<long long>(defaults.writers_awake)),
            "connections writing at once; the others wait their turn while their "
            "frames gather, to leave several per system call")
        ("shutdown-grace", po::value<double>()->default_value(5),
            "seconds to wait for connections to close on SIGINT/SIGTERM")
        ("max-connections", po::value<long long>()->default_value(0),
            "chat connections at most; further upgrades get 503 (0: as many as "
            "file descriptors allow)")
        ("max-connections-per-address", po::value<long long>()->default_value(0),
            "TCP connections at most from one client address; further ones get 503 "
            "(0: no limit)")
        ("history-db", po::value<std::string>()->default_value(history_defaults.db.string()),
            "SQLite file that keeps the messages across restarts (its folder is created); "
            "empty: keep them in memory only")
        ("history-keep", po::value<long long>()->default_value(
            static_cast<long long>(history_defaults.keep)),
            "newest messages kept in each room; older ones are deleted")
        ("max-rooms", po::value<long long>()->default_value(
            static_cast<long long>(history_defaults.max_rooms)),
            "rooms that exist at most besides the lobby (with users or kept messages); a join "
            "that would make one more first forgets the room without users quiet the longest")
        ("max-rooms-per-user", po::value<long long>()->default_value(
            static_cast<long long>(defaults.max_rooms_per_user)),
            "rooms a user is in at most besides the lobby")
        ("room-cache-bytes", po::value<long long>()->default_value(
            static_cast<long long>(defaults.room_cache_bytes)),
            "bytes of newest messages that the rooms with users besides the lobby keep in "
            "memory, all together, for joins and resumes; beyond, the rooms quiet the longest "
            "let go of theirs and read them from the history at their next join")
        ("history-on-join", po::value<long long>()->default_value(
            static_cast<long long>(defaults.history_on_join)),
            "newest messages a newcomer is sent after its welcome (0: none)")
        ("resume-limit", po::value<long long>()->default_value(
            static_cast<long long>(defaults.resume_limit)),
            "messages at most sent to a client that comes back after a drop")
        ("presence-batch-above", po::value<long long>()->default_value(
            static_cast<long long>(defaults.presence_batch_above)),
            "users online above which joins and leaves are sent as one presence frame per "
            "--presence-interval, and welcomes list at most --welcome-list-limit users")
        ("presence-interval", po::value<double>()->default_value(0.25),
            "seconds that joins and leaves gather for in a big room")
        ("welcome-list-limit", po::value<long long>()->default_value(
            static_cast<long long>(defaults.welcome_list_limit)),
            "users a welcome lists at most in a big room (the newcomer and the latest to join)")
        ("redis", po::value<std::string>()->default_value(""),
            "cluster mode: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (user and password "
            "percent-encoded; pass a password in CHAT_REDIS, not on the command line); the "
            "nodes sharing one Redis are one room, and its history is kept there (not in "
            "--history-db)")
        ("node-id", po::value<std::string>()->default_value(""),
            "this node's name in the cluster's logs and metrics: letters, digits, '-', '_', "
            "'.', ':' (default: host name and process id); one process at a time: a process "
            "started under the id of one that died announces that one's users gone")
        ("node-timeout", po::value<double>()->default_value(10),
            "seconds within which the other nodes announce the users of a node that died; a "
            "Redis call slower than a quarter of it (at most 3 s) counts as Redis unreachable")
        ("redis-in-flight", po::value<long long>()->default_value(4096),
            "messages sent to Redis and not yet answered, at most (and 8 MiB of them); beyond, "
            "a message is refused as \"unavailable: the room is overloaded\"");
    // clang-format on

    Parsed parsed;
    try {
        po::variables_map vm;
        po::store(po::parse_command_line(argc, argv, description), vm);
        // A password in --redis on the command line is visible to every user
        // of the machine (ps); CHAT_REDIS is not.
        const bool redis_on_command_line = vm.count("redis") != 0 && !vm["redis"].defaulted();
        po::store(po::parse_environment(description,
                                        [&](const std::string& variable) -> std::string {
                                            if (variable.rfind("CHAT_", 0) != 0) {
                                                return {};
                                            }
                                            std::string name = variable.substr(5);
                                            for (auto& c : name) {
                                                c = c == '_' ? '-'
                                                             : static_cast<char>(std::tolower(
                                                                   static_cast<unsigned char>(c)));
                                            }
                                            const bool known =
                                                name != "help" &&
                                                description.find_nothrow(name, false) != nullptr;
                                            return known ? name : std::string();
                                        }),
                  vm);
        po::notify(vm);

        if (vm.count("help") != 0) {
            std::ostringstream text;
            text << usage << description;
            parsed.output = text.str();
            return parsed;
        }

        Options options;
        auto& server = options.server;
        server.address = vm["address"].as<std::string>();
        server.port = integer_option<std::uint16_t>(vm, "port", 0, 65535);
        server.threads = integer_option<unsigned>(vm, "threads", 1, 1024);
        server.www_root = vm["www"].as<std::string>();
        check(!server.www_root.empty(), "www", "\"\"", "must name a folder");
        server.idle_timeout = seconds_option(vm, "idle-timeout", false);
        server.max_message_bytes =
            integer_option<std::size_t>(vm, "max-message-bytes", 64, 64LL * 1024 * 1024);
        server.max_content_bytes = integer_option<std::size_t>(
            vm, "max-content-bytes", 1, static_cast<long long>(server.max_message_bytes));
        server.rate = vm["rate"].as<double>();
        check(std::isfinite(server.rate) && server.rate >= 0, "rate", server.rate,
              "must be >= 0 (0: no limit)");
        server.burst = vm["burst"].as<double>();
        check(std::isfinite(server.burst) && server.burst >= 1, "burst", server.burst,
              "must be >= 1");
        server.flood_limit = integer_option<unsigned>(vm, "flood-limit", 0, 1'000'000'000);
        server.queue_depth = integer_option<std::size_t>(vm, "queue-depth", 1, 1'000'000);
        server.queue_bytes = integer_option<std::size_t>(vm, "queue-bytes", 1024, 1LL << 40);
        server.shutdown_grace = seconds_option(vm, "shutdown-grace", true);
        server.max_connections = integer_option<std::size_t>(vm, "max-connections", 0, 100'000'000);
        server.max_connections_per_address =
            integer_option<std::size_t>(vm, "max-connections-per-address", 0, 100'000'000);
        server.writers_awake = integer_option<std::size_t>(vm, "writers-awake", 1, 1'000'000);
        server.history_on_join = integer_option<std::size_t>(vm, "history-on-join", 0, 100'000);
        server.resume_limit = integer_option<std::size_t>(vm, "resume-limit", 1, 100'000);
        server.presence_batch_above =
            integer_option<std::size_t>(vm, "presence-batch-above", 0, 100'000'000);
        server.presence_interval = seconds_option(vm, "presence-interval", false);
        check(server.presence_interval.count() >= 1 && server.presence_interval.count() <= 60'000,
              "presence-interval", vm["presence-interval"].as<double>(),
              "must be between 0.001 and 60 seconds");
        server.welcome_list_limit =
            integer_option<std::size_t>(vm, "welcome-list-limit", 1, 100'000'000);
        options.history.db = vm["history-db"].as<std::string>();
        options.history.keep = integer_option<std::size_t>(vm, "history-keep", 1, 1'000'000'000);
        options.history.max_rooms = integer_option<std::size_t>(vm, "max-rooms", 0, 1'000'000'000);
        server.max_rooms_per_user =
            integer_option<std::size_t>(vm, "max-rooms-per-user", 0, 1'000'000);
        server.room_cache_bytes = integer_option<std::size_t>(vm, "room-cache-bytes", 0, 1LL << 40);

        if (const auto url = vm["redis"].as<std::string>(); !url.empty()) {
            cluster::Config cluster;
            try {
                cluster.redis = cluster::parse_redis_url(url);
            } catch (const std::invalid_argument& error) {
                throw Invalid(std::string("--redis ") + error.what());
            }
            cluster.node_id = vm["node-id"].as<std::string>();
            if (cluster.node_id.empty()) {
                cluster.node_id = default_node_id();
            }
            check(valid_node_id(cluster.node_id), "node-id", cluster.node_id,
                  "must be 1 to 64 letters, digits, '-', '_', '.' or ':'");
            if (redis_on_command_line && !cluster.redis.password.empty()) {
                options.warnings.emplace_back(
                    "--redis carries a password on the command line, where any user of this "
                    "machine can read it (ps); set CHAT_REDIS instead");
            }
            cluster.node_timeout = seconds_option(vm, "node-timeout", false);
            // A Redis call may take a quarter of it (cluster::Timing): below
            // a second, an ordinary pause would read as an outage.
            check(cluster.node_timeout >= std::chrono::seconds(1), "node-timeout",
                  vm["node-timeout"].as<double>(), "must be at least 1 second");
            cluster.messages_in_flight =
                integer_option<std::size_t>(vm, "redis-in-flight", 1, 1'000'000);
            cluster.keep = options.history.keep;
            cluster.max_rooms = options.history.max_rooms;
            cluster.newest = std::max(server.history_on_join, server.resume_limit);
            options.cluster = std::move(cluster);
        }

        options.log.dir = vm["log-dir"].as<std::string>();
        const auto level = vm["log-level"].as<std::string>();
        const auto parsed_level = logging::parse_level(level);
        check(parsed_level.has_value(), "log-level", level,
              "must be trace, debug, info, warning or error");
        options.log.level = *parsed_level;
        parsed.options = std::move(options);
    } catch (const std::exception& error) {  // po::error and Invalid
        parsed.exit_code = 2;
        parsed.output =
            std::string("chat_app: ") + error.what() + "\nTry 'chat_app --help' for the options.\n";
    }
    return parsed;
}

}  // namespace chat::app
