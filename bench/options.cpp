#include "options.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include <boost/program_options.hpp>

namespace chat::bench {

namespace po = boost::program_options;

namespace {
/// ws://host[:port][/path]; the port defaults to 80 and the path to /.
Endpoint parse_url(const std::string& url) {
    const std::string scheme = "ws://";
    if (url.rfind(scheme, 0) != 0) {
        throw std::runtime_error("--url must start with ws:// (got " + url + ")");
    }
    const auto rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    Endpoint server;
    server.path = slash == std::string::npos ? "/" : rest.substr(slash);
    const auto colon = authority.rfind(':');
    server.host = authority.substr(0, colon);
    server.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
    return server;
}
}  // namespace

std::optional<Options> parse_options(int argc, char** argv) {
    Options o;
    std::vector<std::string> urls;
    po::options_description description(
        "Usage: chat_bench [options]\n"
        "Load generator for the chat service. Logs --clients in, has --senders of\n"
        "them send, and reports deliveries/s, loss and latency (and, with\n"
        "--server-pid, the server's CPU per delivery). --idle and --storm run other\n"
        "tests instead (below). Progress once a second on stderr. Exit status: 0 when\n"
        "every client logged in (--storm: came back after the restart; --rooms: and\n"
        "joined its room), 1 when not, 2 for a bad option.\n\n"
        "Options");
    // clang-format off
    description.add_options()
        ("help,h", "print this help and exit")
        ("url", po::value(&urls)->composing(),
            "a server's chat endpoint (default ws://127.0.0.1:9000/ws); repeat it for the "
            "nodes of a cluster: clients are spread over them in turn")
        ("clients", po::value(&o.clients)->default_value(o.clients), "clients to log in")
        ("senders", po::value(&o.senders)->default_value(o.senders),
            "how many of the clients send (the first ones)")
        ("rooms", po::value(&o.rooms)->default_value(o.rooms),
            "rooms besides the lobby: once every client has logged in, client i joins room "
            "i % N (all at once; the time until every welcome and its history has arrived is "
            "reported), and senders send in their room: --senders N is one per room. Each "
            "receiver checks its room's ids, and that no frame of another room (or of ours in "
            "the lobby) reaches it; loss is counted per room. 0: the lobby only")
        ("rate", po::value(&o.rate)->default_value(o.rate),
            "messages/s per sender; 0: as fast as the server takes them, --window in flight")
        ("ack", po::value<std::string>()->default_value("echo")->notifier([&o](const std::string& ack) {
            if (ack != "echo" && ack != "all") {
                throw std::runtime_error("--ack must be echo or all");
            }
            o.ack_all = ack == "all";
        }),
            "when a sender's message leaves its window: at its own echo, or once every client "
            "has received it (all)")
        ("aligned", po::bool_switch(&o.aligned),
            "with --rate: every sender sends at the same instants (bursts of senders x clients "
            "deliveries); by default each starts at a random point of its first interval")
        ("window", po::value(&o.window)->default_value(o.window),
            "own messages in flight per sender when --rate is 0; one leaves the window at its "
            "echo (or, with --ack all, once every client has it)")
        ("size", po::value(&o.size)->default_value(o.size),
            "content bytes per message (more if the sender's index and send time, which the "
            "content starts with, do not fit)")
        ("warmup", po::value(&o.warmup)->default_value(o.warmup),
            "seconds of sending before the measured window")
        ("duration", po::value(&o.duration)->default_value(o.duration),
            "seconds measured")
        ("threads", po::value(&o.threads)->default_value(o.threads), "I/O threads")
        ("flooders", po::value(&o.flooders)->default_value(o.flooders),
            "extra clients that send as fast as they can, ignoring the rate limit, and log "
            "in again when the server closes them (their close codes are reported)")
        ("history-flooders", po::value(&o.history_flooders)->default_value(o.history_flooders),
            "extra clients that post 4 messages of 4,000 bytes (so that a page of history is "
            "about 400 KB), then ask for the page below them 35 times every 2 s (within the "
            "contract's rate limit) and never read; dropped, they log in again. With "
            "--server-pid, the server's peak RSS is reported")
        ("connect-concurrency", po::value(&o.connect_concurrency)->default_value(o.connect_concurrency),
            "logins in progress at once")
        ("storm", po::value(&o.storm)->default_value(0),
            "reconnect storm, instead of sending: log the clients in, then wait for the server "
            "to restart (bench/run restarts it), for every client to come back (with the page's "
            "backoff and jitter) and for the presence traffic to end, giving up on each wait "
            "after this many seconds; reports how long the clients took to come back and the "
            "traffic to end, and the frames and bytes each client received meanwhile")
        ("hold", po::value(&o.hold)->default_value(0),
            "with --idle: seconds to stay logged in before the report (0: --duration, at most "
            "3); several chat_bench processes can then hold their clients at once")
        ("idle", po::bool_switch(&o.idle),
            "hold the clients logged in, sending nothing; with --server-pid, report the "
            "server's RSS per connection")
        ("server-pid", po::value(&o.server_pids)->composing(),
            "the server's pid: CPU and memory figures; repeat it for every process of a "
            "cluster (nodes and Redis): the figures are their sums")
        ("json", po::bool_switch(&o.json), "print the report as JSON");
    // clang-format on
    try {
        po::variables_map vm;
        po::store(po::parse_command_line(argc, argv, description), vm);
        po::notify(vm);
        if (vm.count("help") != 0) {
            std::cout << description << "\n";
            return std::nullopt;
        }
        if (urls.empty()) {
            urls.emplace_back("ws://127.0.0.1:9000/ws");
        }
        for (const auto& url : urls) {
            o.servers.push_back(parse_url(url));
        }
        if (std::find(o.server_pids.begin(), o.server_pids.end(), 0) != o.server_pids.end()) {
            throw std::runtime_error("--server-pid must name a process");
        }
        if (o.clients < 1 || o.senders < 0 || o.senders > o.clients || o.size < 1 || o.window < 1 ||
            o.threads < 1 || o.connect_concurrency < 1 || o.rate < 0 || o.warmup < 0 ||
            o.flooders < 0 || o.history_flooders < 0 || o.hold < 0 || o.storm < 0 ||
            o.duration <= 0 || o.rooms < 0 || o.rooms > o.clients) {
            throw std::runtime_error(
                "bad value: need clients >= 1, 0 <= senders <= clients, 0 <= rooms <= clients, "
                "size, window, threads, connect-concurrency >= 1, rate, warmup, flooders, "
                "history-flooders, hold, storm >= 0, duration > 0");
        }
        if (o.idle && o.storm > 0) {
            throw std::runtime_error("--idle and --storm are different tests: give one");
        }
        if (o.rooms > 0 && o.storm > 0) {
            throw std::runtime_error("--storm holds lobby clients only: no --rooms with it");
        }
        return o;
    } catch (const std::exception& error) {
        std::cerr << "chat_bench: " << error.what() << "\nTry 'chat_bench --help'.\n";
        std::exit(2);
    }
}

}  // namespace chat::bench
