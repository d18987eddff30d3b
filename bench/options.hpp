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

/// The command line, as parse_options() validated it; --help says the same.
struct Options {
    // Where: client i talks to servers[i % size] (server_for(i)). The pids are
    // the server's processes (nodes and Redis): its CPU and memory, summed.
    std::vector<Endpoint> servers;
    std::vector<int> server_pids;

    // The measured clients, and the first `senders` of them send.
    int clients = 100;
    int senders = 1;
    // Rooms besides the lobby (contract v3): 0, everyone in the lobby only;
    // N, client i also joins room i % N after the logins (room_of), so that
    // the rooms differ in size by one at most and the first N clients, the
    // first senders, are one in each room; senders then send in their room.
    int rooms = 0;
    int connect_concurrency = 200;  // logins in progress at once
    int size = 100;                 // content bytes (more if its sender and time do not fit)
    double rate = 0;                // messages/s per sender; 0: as fast as the window allows
    int window = 16;                // own messages in flight per sender when rate is 0
    bool ack_all = false;  // a message leaves the window once every client has it, not at its echo
    bool aligned = false;  // with a rate: every sender sends at the same instants

    // Time, in seconds: sending before the window, and the window measured.
    double warmup = 2;
    double duration = 10;

    // Extra clients that misbehave beside the measured ones: some send as
    // fast as they can, some ask for history pages and never read.
    int flooders = 0;
    int history_flooders = 0;

    // Other tests instead of sending: hold idle clients for `hold` s (0:
    // --duration, at most 3 s: enough to settle) and report the server's
    // memory; or hold them through a server restart, each wait given up
    // after `storm` s (bench/run storm).
    bool idle = false;
    double hold = 0;
    double storm = 0;

    int threads = 1;    // threads running the one io_context
    bool json = false;  // the report as JSON (bench/run and bench/summarize.py read it)

    /// The room client `index` joins (-1: none, the lobby only).
    int room_of(int index) const { return rooms > 0 ? index % rooms : -1; }

    /// The server client `index` talks to: the --url list in turn. With
    /// rooms, in turn within each room (its k-th member on node room + k),
    /// so that every room spans the nodes even when the number of rooms is
    /// a multiple of the number of nodes.
    const Endpoint& server_for(int index) const {
        const auto turn = rooms > 0 ? index % rooms + index / rooms : index;
        return servers[static_cast<std::size_t>(turn) % servers.size()];
    }
};

/// The options of the command line; nullopt once --help has been printed.
/// A bad option is reported on stderr and ends the process with exit code 2.
std::optional<Options> parse_options(int argc, char** argv);

}  // namespace chat::bench
