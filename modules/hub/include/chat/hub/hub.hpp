#pragma once
// The hub: an actor coroutine that alone owns the connections, the users online
// and the order of messages.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
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
    // Rule 17: rooms a user is in besides the lobby, at most. (How many
    // rooms exist at most is the history's to enforce: it knows the rooms
    // without users.)
    std::size_t max_rooms_per_user = 100;
    // The newest messages the rooms besides the lobby hold, in bytes, all
    // together: beyond, the rooms quiet the longest let go of theirs, and a
    // join there reads them from the history again.
    std::size_t cache_bytes = std::size_t{256} << 20;
};

/// Consumes one channel of commands (Register, Unregister, Login, Say,
/// HistoryRequest, Join, Leave, RoomsRequest, and what the sequencer, the
/// history and its own timer send back) on one strand and needs no lock:
/// the users, the names, the rooms and their message counters are touched by
/// run() alone. Each outgoing ChatRequest is serialised once and
/// the same bytes are pushed to every recipient's queue without waiting; a full
/// queue gets that recipient closed (1008) and removed, never a blocked hub.
///
/// A system call costs more than everything else a delivery does, so the hub
/// does not wake a writer per frame: writers it owes a ring take turns in its
/// WriteScheduler, at most `writers_awake` at once, and each leaves with all that
/// was queued for it meanwhile, in one write. The hub runs ahead of its writers
/// until one queue has been given 64 frames (or 4096 commands passed), then
/// waits until every writer it woke has written: outrunning them would fill
/// queues and drop clients that read fine. That
/// wait is bounded by `turn_limit`: no single writer can hold the hub.
///
/// The hub holds the lobby and every room with users (rule 17), each a Room
/// with its users, order, ids, presence and newest messages; the lobby is
/// the room a login joins. A room without users is the history's alone,
/// which opens it again (its last id, its newest messages) when someone joins.
///
/// What happens in a room is an Event (a join, a message, a leave), and the
/// hub changes a room only by applying events, in order. Alone, it makes
/// them itself and applies them at once. In a cluster (rule 15) it asks the
/// Cluster to sequence them and applies what comes back, its own clients'
/// events included: the one order of every node.
///
/// In a big room (rule 16, per room) joins and leaves gather for an interval and go out
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

    /// Lets go of every connection and of the commands still queued, and has
    /// the writers' turns hand nothing on (WriteScheduler::abandon()): at
    /// run()'s end, and, when the executor was stopped before run() returned
    /// (a shutdown's grace period over), once no thread runs it. Sessions
    /// hold their server, which holds this hub; kept, they would never be
    /// freed.
    void abandon();

  private:
    struct Room;
    struct Resume {
        std::uint64_t id;
        std::string epoch;
    };
    /// A member's place in a room.
    struct Seat {
        Room* room = nullptr;
        std::uint32_t index = 0;            // in room->online, once in
        std::uint32_t history_request = 0;  // the page asked for through it, until answered
        bool in = false;                    // false: its join is on its way
        bool join_sent = false;             // the sequencer was asked (not waiting to load)
        // Left before its join came back from a shared sequencer: kept, out
        // of every fan-out, until the join and the leave (or the join's
        // refusal) are back.
        bool leaving = false;
        // Of its join (the lobby's: its login), until it is applied: the last
        // id it saw, and its epoch (rules 13, 17). Apart: most joins carry
        // none (docs/architecture.md, memory per idle connection).
        std::unique_ptr<Resume> resume;
    };
    struct Member {
        std::shared_ptr<Peer> peer;
        std::string name;  // the name it logged in (or asked to) with; empty before
        // Its history request (rule 14) is being read and not yet answered:
        // another gets "busy", so that each connection has one page in the
        // making at a time, whatever it asks for.
        bool history_pending = false;
        // The lobby's first (from its first login), then the rooms it is in
        // or is joining.
        std::vector<Seat> seats;

        bool online() const noexcept { return !seats.empty() && seats.front().in; }
        Seat* seat(const Room& room) noexcept;
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
    /// The lobby, or a room with users (rule 17): its users, order, ids,
    /// presence and newest messages. A room without users is not held: its
    /// messages are the history's, read again when someone joins it.
    struct Room {
        Room(std::string room_name, std::size_t welcome_list_limit, std::size_t ring_capacity)
            : name(std::move(room_name)), welcome_list(welcome_list_limit), ring(ring_capacity) {}
        std::string name;                                 // "" is the lobby
        std::unordered_map<std::string, RoomUser> users;  // of every node, by name
        WelcomeList welcome_list;                         // the latest of them to join, serialised
        std::unordered_map<std::string, PresenceChange> presence;  // for its next presence frame
        std::vector<std::shared_ptr<Peer>> online;  // this node's users in it, for the fan-out
        MessageRing ring;                           // its newest messages
        std::uint64_t last_id = 0;                  // of its last message
        // The ring holds the newest of what the history keeps, as many as
        // it can: a join is answered from it. False once the cache let go
        // of some of it.
        bool ring_whole = true;
        // This node's members with a seat in it (in, or joining): while
        // there are any the node holds it, and in a cluster reads its events.
        std::size_t seated = 0;
        bool opened = false;                // the history was told it has users
        bool loading = false;               // what it holds is being read from the history
        std::vector<PeerId> waiting;        // those whose joins wait for it to load
        bool in_cache = false;              // its ring holds messages: it is in cached_
        std::list<Room*>::iterator cached;  // where, then
    };

    void handle(Register& command);
    void handle(Unregister& command);
    void handle(Login& command);
    void handle(Say& command);
    void handle(HistoryRequest& command);
    void handle(Join& command);
    void handle(Leave& command);
    void handle(RoomsRequest& command);
    void handle(HistoryPage& command);
    void handle(RoomOpened& command);
    void handle(RoomsCounted& command);
    void handle(PresenceDue& command);
    void handle(Stop& command);
    void handle(Sequenced& command);
    void handle(Refused& command);
    void handle(Reachability& command);
    void log_in(Member& member, Login& login);
    void join_room(Member& member, Join& join);
    /// `member_stays`: a client's leave, not the member's end.
    void leave_room(Member& member, const std::string& room, bool member_stays = false);
    /// A command from the hub's own callbacks (its timer, the history's
    /// answers, stop()): into the one channel, so that run() alone changes
    /// the hub. From any thread.
    void enqueue(Command command);
    void post_message(Member& member, const std::string& room, std::string content);
    void request_history(Member& member, const std::string& room, std::uint64_t before);
    /// The room a client's request names, if the member is in it; else
    /// answers "not in room" (or "log in first").
    Room* room_of(Member& member, const std::string& room);
    /// Changes a room: the only way rooms change.
    void apply(Event& event);
    /// Applies what the sequencer placed at once (a local one); a shared one
    /// sends it back later as a Sequenced command.
    void apply(Sequencer::Placed placed);
    /// The event's room, held and opened (apply() finds it).
    void apply_join(Room& target, Event& join);
    void apply_leave(Room& target, const Event& leave);
    void apply_message(Room& target, Event& message);
    /// The newcomer's welcome and the history it is owed, at once (rules 13, 17).
    void welcome(Member& member, Room& room, const Event& join);
    /// Rule 15: a node that lost the room's state (or its users) closes every
    /// connection with 1012, so that its clients log in again.
    void restart_clients(const char* why);
    void adopt(RoomState& state);
    /// Enters users a shared sequencer listed, in the order they joined.
    void enter_users(Room& room, std::vector<RoomState::User>& users);
    /// The count goes on after `last_id`; `newest` (oldest first, ending with
    /// it) are the messages a join or a resume is answered from.
    void restart_ring(Room& room, std::uint64_t last_id, std::vector<Frame>& newest);
    /// Messages a ring holds: enough for a join and for a resume.
    std::size_t ring_capacity() const noexcept {
        return std::max(limits_.history_on_join, limits_.resume_limit);
    }
    Room& room(const std::string& name);
    /// Reads what `room` holds from the history: where it stands when it is
    /// not held yet, its newest messages when the cache let go of them.
    /// Joins wait meanwhile (room.waiting).
    void load(Room& room);
    /// Keeps `message` in the room's ring, within the cache's bound.
    void cache(Room& room, std::uint64_t id, Frame message);
    /// The ring's bytes changed by `delta`: the room is the latest active,
    /// and the rooms quiet the longest let go of theirs while the cache is
    /// over its bound (then this one's oldest).
    void cached(Room& room, std::int64_t delta);
    /// Puts the newest messages read again for `room` before what its ring
    /// holds; false if they do not reach it.
    bool refill(Room& room, std::vector<Frame>& newest);
    /// Lets go of a room that has no users left (never the lobby).
    void close_room(Room& room);
    /// Closes room `name` if no member of this node has a seat in it any
    /// more and it is not loading (in a cluster its other users may be on
    /// other nodes: this node no longer reads it).
    void close_if_unseated(const std::string& name);
    /// Erases `member`'s seat in a room besides the lobby.
    void unseat(Member& member, Seat& seat);
    void enter_room(Room& room, std::string name, std::string joined, PeerId local);
    void take_seat(Room& room, Member& member, Seat& seat);
    /// Takes `member` out of `room`'s fan-out; its seat goes too.
    void leave_seat(Member& member, Room& room);
    /// Rule 16: whether joins and leaves are gathered now.
    bool batching(const Room& room) const noexcept {
        return room.users.size() > limits_.presence_batch_above;
    }
    void note_presence(Room& room, const std::string& name, const std::string& joined);
    /// Sends what gathered as one presence frame.
    void flush_presence(Room& room);
    /// The welcome frame: `welcome`'s own fields and its user list (rule 16).
    Frame welcome_frame(const Room& room, ChatRequest& welcome) const;
    void answer_history(HistoryPage& page);
    void answer_rooms(Member& member);
    /// `room` had `before` users: its place among the busiest changes.
    void recount(const Room& room, std::size_t before);
    /// Hands a broadcast message to the history, in order, waiting for room
    /// only in run() (the store's queue full: the disk lags).
    void keep(Room& room, std::uint64_t id, const Frame& message);
    /// Calls the history after every message still waiting to be handed
    /// over (a read must see them, and a room opened or vacated must be
    /// where they leave it): at once when none waits.
    void after_unkept(std::function<void()> call);
    awaitable<void> flush_unkept();
    void leave(Members::iterator member);
    void begin_stop();

    /// Stamps, serialises once and queues `message` to every user of `room`
    /// on this node but `except`; the bytes sent.
    Frame fan_out(Room& room, ChatRequest& message, PeerId except = 0, std::int64_t stamp = 0);
    /// The same for one connection.
    void send_to(Member& member, ChatRequest& message);
    void reply_error(Member& member, const std::string& reason, const std::string& room = {});
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
    LocalSequencer local_;  // places events at once when no sequencer is shared
    Sequencer& sequencer_;  // local_, or the one shared with other nodes
    asio::experimental::concurrent_channel<void(error_code, Command)> commands_;

    Members members_;                              // every registered connection
    std::unordered_map<std::string, Room> rooms_;  // the lobby, and the rooms with users
    Room& lobby_;
    std::vector<std::string> presence_due_;  // rooms with changes for the next presence frame
    asio::steady_timer presence_timer_;
    std::vector<PeerId> too_slow_;             // full queues met during a fan-out
    std::shared_ptr<WriteScheduler> writers_;  // shared: a writer's turn may outlive the hub
    std::size_t since_idle_ = 0;          // commands handled since the writers were last all done
    std::uint32_t round_ = 1;             // numbers the rounds between two such moments
    bool round_full_ = false;             // a queue got frames_per_round frames in this round
    std::string epoch_;                   // names the history of every room
    std::uint32_t history_requests_ = 0;  // numbers them (Seat::history_request)
    std::list<Room*> cached_;      // the rooms whose rings hold messages, the latest active first
    std::size_t cache_bytes_ = 0;  // their rings' bytes
    // The rooms with users besides the lobby, the most populated first
    // (names: the rooms' own), and the `rooms` answer made from them, until
    // they change.
    struct Busier {
        bool operator()(const std::pair<std::size_t, std::string_view>& a,
                        const std::pair<std::size_t, std::string_view>& b) const noexcept {
            return a.first != b.first ? a.first > b.first : a.second < b.second;
        }
    };
    std::set<std::pair<std::size_t, std::string_view>, Busier> busiest_;
    std::string rooms_answer_;
    // What waits for the history's queue (full: the disk lags), in order:
    // messages offered while it was full, and the calls made after them.
    struct Unkept {
        std::string room;
        std::uint64_t id;
        Frame message;
    };
    std::deque<std::variant<Unkept, std::function<void()>>> unkept_;
    bool stopping_ = false;
    std::atomic<bool> available_{true};
};

}  // namespace chat::hub
