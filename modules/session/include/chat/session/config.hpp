#pragma once
// The one configuration struct of a server. Defaults are the contract's.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace chat::session {

/// Where a test may make a connection fail (Config::inject_fault).
enum class FaultPoint {
    reader,       // after a frame was read, before it is acted on
    writer,       // after a batch was written
    session_end,  // after the reader and the writer, before the session's cleanup
};

struct Config {
    std::string address = "0.0.0.0";
    std::uint16_t port = 9000;  // 0: any free port (see Server::local_endpoint)
    unsigned threads = 1;  // I/O threads, each running an io_context of its own (used by the app)
    std::filesystem::path www_root;  // static files; must exist
    // Looked up after www_root where it exists: what the build stages for the
    // page (protobuf.js from package-lock.json).
    std::filesystem::path www_assets;

    std::chrono::milliseconds idle_timeout{30'000};          // rule 10; ping after half of it
    std::chrono::milliseconds handshake_timeout{10'000};     // HTTP headers, WS handshake and close
    std::size_t max_message_bytes = std::size_t{64} * 1024;  // larger frames: 1009
    std::size_t max_content_bytes = 4096;                    // rule 5
    double rate = 20;  // frames/s per connection; 0 switches the limit off (rule 7)
    double burst = 40;
    unsigned flood_limit = 200;     // frames over the limit before 1008
    std::size_t queue_depth = 256;  // outgoing frames per connection (rule 9)
    // Their bytes (rule 9): a history page can be 400 KB, so the count alone
    // bounds nothing. A single larger frame still goes into an empty queue.
    std::size_t queue_bytes = std::size_t{8} << 20;
    // Writers awake at once; the others wait their turn, and meanwhile their
    // frames gather, to leave several per system call (hub::WriteScheduler).
    std::size_t writers_awake = 16;
    std::chrono::milliseconds shutdown_grace{5'000};  // rule 11
    // 0: no limit but the file descriptors. Beyond max_connections chat
    // connections an upgrade gets 503; beyond max_connections_per_address TCP
    // connections from one address, the new one gets 503 and is closed.
    std::size_t max_connections = 0;
    std::size_t max_connections_per_address = 0;
    std::size_t history_on_join = 50;  // messages a newcomer is given (rule 13)
    std::size_t resume_limit = 1000;   // messages a client coming back is given at most
    // Rule 16: above this many users online, joins and leaves go out as one
    // presence frame per interval, and welcomes list at most so many users.
    std::size_t presence_batch_above = 1000;
    std::chrono::milliseconds presence_interval{250};
    std::size_t welcome_list_limit = 1000;
    std::size_t max_rooms_per_user = 100;  // rule 17: rooms besides the lobby
    // The newest messages that the rooms with users besides the lobby hold
    // in memory for joins and resumes, in bytes, all together.
    std::size_t room_cache_bytes = std::size_t{256} << 20;

    /// Tests only: called with the connection's id at each FaultPoint; it may
    /// throw, to prove that a failing connection cannot wedge the server.
    std::function<void(FaultPoint, std::uint64_t connection)> inject_fault;
};

}  // namespace chat::session
