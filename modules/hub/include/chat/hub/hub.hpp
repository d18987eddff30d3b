#pragma once
// The hub: an actor coroutine that alone owns the connections, the users online
// and the order of messages.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>

#include "chat/hub/commands.hpp"
#include "chat/hub/frame_clock.hpp"
#include "chat/hub/history.hpp"
#include "chat/hub/peer.hpp"
#include "chat/hub/sequencer.hpp"
#include "chat/hub/welcome_list.hpp"
#include "chat/hub/write_scheduler.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/net/asio.hpp"

namespace chat {
class ChatRequest;
}

namespace chat::hub {

/// The hub's bounds.
struct HubLimits {
    std::size_t writers_awake = 16;  // writers woken at once (WriteScheduler)
    /// A writer holds its turn for microseconds (a non-blocking write). One
    /// that holds it for this long is stuck: the hub takes the turn back and
    /// drops that connection rather than wait for it.
    std::chrono::milliseconds turn_limit{3'000};
    std::size_t capacity = 4096;       // commands waiting in the hub's channel
    std::size_t history_on_join = 50;  // messages a newcomer is given (rule 13)
    std::size_t resume_limit = 1000;   // messages a resuming client is given at most
    // Rule 16, big rooms: above this many users online, joins and leaves
    // gather for `presence_interval` and go out as one presence frame, and a
    // welcome lists at most `welcome_list_limit` users.
    std::size_t presence_batch_above = 1000;
    std::chrono::milliseconds presence_interval{250};
    std::size_t welcome_list_limit = 1000;
};

/// Consumes one channel of commands (Register, Unregister, Login, Say,
/// HistoryRequest, and what the sequencer, the history and its own timer send
/// back) on its own strand and needs no lock: the users, the names and the
/// message counter are touched by run() alone. Each outgoing ChatRequest is serialised once and
/// the same bytes are pushed to every recipient's queue without waiting; a full
/// queue gets that recipient closed (1008) and removed, never a blocked hub.
///
/// A system call costs more than everything else a delivery does, so the hub
/// does not wake a writer per frame: writers it owes a ring take turns in its
/// WriteScheduler, at most `writers_awake` at once, and each leaves with all that
/// was queued for it meanwhile, in one write. The hub runs at most 64 commands
/// ahead of its writers, then waits until every writer it woke has written:
/// outrunning them would fill queues and drop clients that read fine. That
/// wait is bounded by `turn_limit`: no single writer can hold the hub.
///
/// What happens in the room is an Event (a join, a message, a leave), and the
/// hub changes the room only by applying events, in order. Alone, it makes
/// them itself and applies them at once. In a cluster (rule 15) it asks the
/// Cluster to sequence them and applies what comes back, its own clients'
/// events included: the one order of every node.
///
/// In a big room (rule 16) joins and leaves gather for an interval and go out
/// as one presence frame, and a welcome lists only the latest to join.
class Hub {
  public:
    /// `executor` must be a strand (or a single-threaded context): run() and
    /// stop()'s work happen on it.
    /// `history` keeps the messages; it must outlive the hub's executor's use.
    /// `sequencer`, when given, is shared with other nodes (a cluster, rule
    /// 15; `clock` must then be a sequenced FrameClock) and must outlive
    /// run(); without one the hub numbers its messages itself.
    Hub(asio::any_io_executor executor, metrics::Metrics& metrics, FrameClock& clock,
        History& history, const HubLimits& limits = {}, Sequencer* sequencer = nullptr);

    const asio::any_io_executor& executor() const noexcept { return executor_; }
    /// Where the writers of its peers take turns (a Peer is made with it).
    const std::shared_ptr<WriteScheduler>& writers() const noexcept { return writers_; }

    /// From any thread: whether logins are taken (false while a cluster's
    /// sequencer cannot be reached).
    bool available() const noexcept { return available_.load(std::memory_order_relaxed); }

    /// The actor; co_spawn it on executor(). Returns after stop(), once every
    /// connection has unregistered.
    awaitable<void> run();

    /// From any strand. Waits while the hub is congested (back-pressure on the
    /// reader that sends); false once the hub has stopped taking commands.
    awaitable<bool> send(Command command);

    /// From any thread: every connection, present or registering later, is
    /// closed with 1001; run() returns when the last one has unregistered.
    void stop();

    /// Only once no thread runs the executor, when it was stopped before run()
    /// returned (a shutdown's grace period over): lets go of every connection
    /// and of the commands still queued. Sessions hold their server, which
    /// holds this hub; kept, they would never be freed.
    void abandon();

  private:
    struct Member {
        std::shared_ptr<Peer> peer;
        std::string name;     // the name it logged in (or asked to) with; empty before
        bool online = false;  // logged in: in online_, at online_index
        // Its history request (rule 14) is being read and not yet answered:
        // another gets "busy", so that each connection has one page in the
        // making at a time, whatever it asks for.
        bool history_pending = false;
        std::size_t online_index = 0;
        // Of its login, until it is applied: the last id it saw, and its
        // epoch (rule 13). Apart: most logins carry none, and no member
        // needs it after its join (docs/architecture.md, memory per idle
        // connection).
        struct Resume {
            std::uint64_t id;
            std::string epoch;
        };
        std::unique_ptr<Resume> resume;
    };
    using Members = std::unordered_map<PeerId, Member>;
    struct RoomUser {
        std::string joined;  // RFC 3339 join time
        PeerId local = 0;    // its connection, when it is on this node
    };
    /// A join or leave waiting for the next presence frame (rule 16).
    struct PresenceChange {
        std::string joined;       // empty: left
        bool was_online = false;  // online when the interval began
    };

    void handle(Register& command);
    void handle(Unregister& command);
    void handle(Login& command);
    void handle(Say& command);
    void handle(HistoryRequest& command);
    void handle(HistoryPage& command);
    void handle(PresenceDue& command);
    void handle(Stop& command);
    void handle(Sequenced& command);
    void handle(Refused& command);
    void handle(Reachability& command);
    void log_in(Member& member, Login& login);
    /// A command from the hub's own callbacks (its timer, the history's
    /// answers, stop()): into the one channel, so that run() alone changes
    /// the hub. From any thread.
    void enqueue(Command command);
    void post_message(Member& member, std::string content);
    void request_history(Member& member, std::uint64_t before);
    /// Changes the room: the only way it changes.
    void apply(Event& event);
    /// Applies what the sequencer placed at once (a local one); a shared one
    /// sends it back later as a Sequenced command.
    void apply(Sequencer::Placed placed);
    void apply_join(Event& join);
    void apply_leave(const Event& leave);
    void apply_message(Event& message);
    /// Rule 15: a node that lost the room's state (or its users) closes every
    /// connection with 1012, so that its clients log in again.
    void restart_clients(const char* why);
    void adopt(RoomState& state);
    /// The count goes on after `last_id`; `newest` (oldest first, ending with
    /// it) are the messages a join or a resume is answered from.
    void restart_ring(std::uint64_t last_id, std::vector<Frame>& newest);
    /// Messages the ring holds: enough for a join and for a resume.
    std::size_t ring_capacity() const noexcept {
        return std::max(limits_.history_on_join, limits_.resume_limit);
    }
    void enter_room(std::string name, std::string joined, PeerId local);
    /// Rule 16: whether joins and leaves are gathered now.
    bool batching() const noexcept { return room_.size() > limits_.presence_batch_above; }
    void note_presence(const std::string& name, const std::string& joined);
    /// Sends what gathered as one presence frame.
    void flush_presence();
    /// The welcome frame: `welcome`'s own fields and its user list (rule 16).
    Frame welcome_frame(ChatRequest& welcome) const;
    void set_online(Member& member);
    void answer_history(PeerId peer, const std::optional<std::vector<Frame>>& messages);
    /// Hands a broadcast message to the history, in order, waiting for room
    /// only in run() (the store's queue full: the disk lags).
    void keep(std::uint64_t id, const Frame& message);
    awaitable<void> flush_unkept();
    void leave(Members::iterator member);
    void begin_stop();

    /// Stamps, serialises once and queues `message` to every user online but
    /// `except`; the bytes sent.
    Frame fan_out(ChatRequest& message, PeerId except = 0, std::int64_t stamp = 0);
    /// The same for one connection.
    void send_to(Member& member, ChatRequest& message);
    void reply_error(Member& member, const std::string& reason);
    void deliver(const std::shared_ptr<Peer>& peer, std::span<const Frame> frames);
    /// Closes and removes connections whose queue was full; their leave notices
    /// may find more.
    void drop_slow_peers();
    /// Waits until the writers woken have all written, at most turn_limit
    /// at a time; a writer that holds its turn longer is dropped.
    awaitable<void> wait_for_writers();

    asio::any_io_executor executor_;
    metrics::Metrics& metrics_;
    FrameClock& clock_;
    History& history_;
    const HubLimits limits_;
    LocalSequencer local_;  // numbers the messages when no sequencer is shared
    Sequencer& sequencer_;  // local_, or the one shared with other nodes
    asio::experimental::concurrent_channel<void(error_code, Command)> commands_;

    Members members_;                                 // every registered connection
    std::unordered_map<std::string, RoomUser> room_;  // users online, of every node, by name
    WelcomeList welcome_list_;                        // the latest of them to join, serialised
    std::unordered_map<std::string, PresenceChange> presence_;  // for the next presence frame
    asio::steady_timer presence_timer_;
    std::vector<std::shared_ptr<Peer>> online_;  // this node's users online, for the fan-out
    std::vector<PeerId> too_slow_;               // full queues met during a fan-out
    std::shared_ptr<WriteScheduler> writers_;    // shared: a writer's turn may outlive the hub
    std::size_t since_idle_ = 0;  // commands handled since the writers were last all done
    std::uint64_t last_message_id_ = 0;
    std::string epoch_;
    MessageRing ring_;  // the newest messages, for joins and resumes
    // Offered to the history while its queue was full, with their ids.
    std::deque<std::pair<std::uint64_t, Frame>> unkept_;
    bool stopping_ = false;
    std::atomic<bool> available_{true};
};

}  // namespace chat::hub
