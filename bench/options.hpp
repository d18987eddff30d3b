#pragma once
// chat_bench's command line: what to run against which server, validated
// once, read by every part of the run.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace chat::bench {

/// A server's chat endpoint (one node of a cluster).
struct Endpoint {
    std::string host = "127.0.0.1";
    std::string port = "9000";
    std::string path = "/ws";
};

struct Options {
    std::vector<Endpoint> servers;  // client i goes to servers[i % size]: server_for(i)
    int clients = 100;
    int senders = 1;       // clients 0 .. senders-1 send
    double rate = 0;       // per sender, messages/s; 0: as fast as the window allows
    int window = 16;       // own messages in flight per sender when rate is 0
    bool ack_all = false;  // a message is acknowledged once every client has it, not its echo
    bool aligned = false;  // with a rate: every sender sends at the same instants
    int size = 100;        // content bytes (at least: the content starts with its sender and time)
    double warmup = 2;     // s between the senders' start and the measured window
    double duration = 10;  // s: the measured window
    int threads = 1;       // threads running the one io_context
    int connect_concurrency = 200;  // logins in progress at once
    int flooders = 0;  // extra clients sending as fast as they can, reconnecting when closed
    int history_flooders = 0;      // extra clients asking for history pages, never reading
    bool json = false;             // the report as JSON (bench/run, bench/summarize.py read it)
    bool idle = false;             // hold the clients and report the server's memory, send nothing
    double hold = 0;               // s the idle clients stay logged in (0: 3 s, enough to settle)
    double storm = 0;              // s: hold the clients through a server restart (bench/run storm)
    std::vector<int> server_pids;  // CPU and memory are summed over them

    /// The server client `index` talks to: the --url list in turn.
    const Endpoint& server_for(int index) const {
        return servers[static_cast<std::size_t>(index) % servers.size()];
    }
};

/// The options of the command line; nullopt once --help has been printed.
/// A bad option is reported on stderr and ends the process with exit code 2.
std::optional<Options> parse_options(int argc, char** argv);

}  // namespace chat::bench
