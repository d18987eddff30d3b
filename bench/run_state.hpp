#pragma once
// What one run shares between its coroutines and threads: the options, the
// phase every client checks, and the counters the report reads, grouped by
// who writes them. Atomics, since clients on every I/O thread write them;
// the per-frame ones with relaxed order (they are only summed at the end).
// The rare ones (close codes, the latency histograms) sit under one mutex.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"

namespace chat::bench {

class Client;

/// Raises `value` to `candidate` if that is higher (a running maximum).
template <typename T>
void raise_to(std::atomic<T>& value, T candidate) {
    auto current = value.load();
    while (current < candidate && !value.compare_exchange_weak(current, candidate)) {
    }
}

struct RunState {
    Options options;

    /// Where the run is. The window is in now_ns(): a message counts when
    /// it was sent inside it (start 0: not begun).
    struct Phase {
        std::atomic<bool> sending{true};   // false once the window is over: senders stop
        std::atomic<bool> closing{false};  // our own closes follow: not counted as drops
        std::atomic<std::int64_t> window_start_ns{0};
        std::atomic<std::int64_t> window_end_ns{std::numeric_limits<std::int64_t>::max()};

        [[nodiscard]] bool in_window(std::int64_t ns) const {
            return ns >= window_start_ns.load(std::memory_order_relaxed) &&
                   ns < window_end_ns.load(std::memory_order_relaxed) &&
                   window_start_ns.load(std::memory_order_relaxed) != 0;
        }
    } phase;

    /// The measured clients' logins, --connect-concurrency at a time: the
    /// phases wait for every client to end one way or the other.
    struct Logins {
        std::atomic<int> next_index{0};  // the next client a connector logs in
        std::atomic<int> connected{0};
        std::atomic<int> failed{0};
    } logins;

    /// The measured clients' messages, counted per frame.
    struct Traffic {
        std::atomic<std::uint64_t> sent_total{0};
        std::atomic<std::uint64_t> sent_in_window{0};
        std::atomic<std::uint64_t> delivered_total{0};      // messages of ours received
        std::atomic<std::uint64_t> delivered_in_window{0};  // of those, sent in the window
        std::atomic<std::uint64_t> errors{0};               // "error" frames received
        std::atomic<std::uint64_t> gaps{0};  // a message id not the previous one's + 1
    } traffic;

    /// --ack all: how many clients have each message (by id, in a ring),
    /// and the clients, to tell a sender when all have one of its messages.
    struct AckAll {
        static constexpr std::size_t slots = 1 << 16;  // ids in flight at once, at most
        std::unique_ptr<std::atomic<int>[]> receipts { new std::atomic<int>[slots] {} };
        const std::vector<std::shared_ptr<Client>>* clients = nullptr;
    } ack_all;

    /// --rooms: each room's name and counters, the join phase, and what the
    /// members saw that the contract forbids (rule 17). A client is in one
    /// room (Options::room_of); a room's counters are written by its members.
    struct Rooms {
        struct Room {
            std::atomic<int> members{0};  // clients that joined it: welcome and history received
            std::atomic<std::uint64_t> sent_in_window{0};       // by its senders
            std::atomic<std::uint64_t> delivered_in_window{0};  // of those, to its members
            std::atomic<std::uint32_t> faults{0};  // the faults below, seen by its members
        };
        std::vector<std::string> names;  // the room names, from Options::room_of's numbers
        std::unique_ptr<Room[]> rooms;
        // --ack all: how many members have each message of a room, a ring of
        // ack_slots (a power of two) per room, keyed by the room's own ids.
        std::size_t ack_slots = 0;
        std::unique_ptr<std::atomic<int>[]> receipts;

        // The join phase: from the first join sent to the last history received.
        std::atomic<int> joined{0};
        std::atomic<int> join_failed{
            0};  // an error instead of the welcome, or the connection ended
        std::atomic<std::int64_t> first_join_ns{0};
        std::atomic<std::int64_t> last_joined_ns{0};

        // Faults (each also counted in its room's `faults`, but gaps):
        std::atomic<std::uint64_t> order_faults{0};  // a message id not above the room's last, or
                                                     // one sender's messages out of their order
        std::atomic<std::uint64_t> gaps{0};          // an id above the last + 1 (shows as loss too)
        std::atomic<std::uint64_t> wrong_room{0};    // a frame of a room the client is not in, or a
                                                     // message of ours in the lobby (room runs)
        std::atomic<std::uint64_t> join_order{0};    // something between a welcome and its history,
                                                     // or a second history of the room

        Room& room(int index) { return rooms[static_cast<std::size_t>(index)]; }
        const Room& room(int index) const { return rooms[static_cast<std::size_t>(index)]; }
        std::atomic<int>& receipt(int index, std::uint64_t id) {
            return receipts[static_cast<std::size_t>(index) * ack_slots + (id & (ack_slots - 1))];
        }
        void fault(int index, std::atomic<std::uint64_t>& kind) {
            kind.fetch_add(1, std::memory_order_relaxed);
            if (index >= 0) {
                room(index).faults.fetch_add(1, std::memory_order_relaxed);
            }
        }
    } rooms;

    /// --flooders: their logins and the frames they got onto the wire.
    struct Flood {
        std::atomic<std::uint64_t> logins{0};
        std::atomic<std::uint64_t> frames_sent{0};
    } flood;

    /// --history-flooders: their large messages posted, the id they ask
    /// below once the history holds them (0: not yet), what they did, and
    /// the server's memory while they ask.
    struct HistoryFlood {
        std::atomic<int> posted{0};
        std::atomic<std::uint64_t> ask_below{0};
        std::atomic<std::uint64_t> logins{0};
        std::atomic<std::uint64_t> requests{0};
        std::atomic<std::uint64_t> highest_id_seen{0};  // by any measured client
        std::atomic<long> server_rss_peak_kib{-1};      // sampled every 100 ms
    } history;

    /// --storm: the clients online, those back after the restart, and when
    /// the storm began (the first close), the last came back and the last
    /// presence notice arrived; what the clients received meanwhile.
    struct Storm {
        std::atomic<int> online{0};
        std::atomic<int> back{0};
        std::atomic<bool> under_way{false};
        std::atomic<std::int64_t> first_close_ns{0};
        std::atomic<std::int64_t> last_welcome_ns{0};
        std::atomic<std::int64_t> last_notice_ns{0};
        std::atomic<std::uint64_t> frames{0};
        std::atomic<std::uint64_t> bytes{0};
    } storm;

    /// Close codes the server sent (per code: how many), one latency
    /// histogram per I/O thread, merged for the report, and the first error
    /// that answered a join (--rooms), to say why joins failed.
    std::mutex mutex;  // guards the four below, touched rarely
    std::map<int, int> close_codes;
    std::string first_join_refusal;
    std::map<int, int> flood_close_codes;
    std::vector<std::unique_ptr<Histogram>> histograms;

    Histogram& thread_histogram() {
        thread_local Histogram* mine = nullptr;
        thread_local const RunState* owner = nullptr;
        if (owner != this) {
            std::lock_guard lock(mutex);
            histograms.push_back(std::make_unique<Histogram>());
            mine = histograms.back().get();
            owner = this;
        }
        return *mine;
    }
    void closed(int code) {
        std::lock_guard lock(mutex);
        ++close_codes[code];
    }
    void join_refused(std::string_view reason) {
        std::lock_guard lock(mutex);
        if (first_join_refusal.empty()) {
            first_join_refusal = reason;
        }
    }
    void flooder_closed(int code) {
        std::lock_guard lock(mutex);
        ++flood_close_codes[code];
    }
};

}  // namespace chat::bench
