#pragma once
// When the hub's writers write: they take turns, so that readers and the hub
// are never queued behind a thousand of them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "chat/net/asio.hpp"

namespace chat::hub {

class Peer;

/// Asio runs handlers first in, first out. Woken all at once after a broadcast,
/// a thousand writers would put a thousand handlers ahead of every reader and
/// of the hub, so the next message would reach the hub only after all of them
/// had written, one frame each: input and output in lock step, one system call
/// per delivery. So the hub queues its frames held (FrameQueue::try_push_held),
/// and the writers owed a ring take turns: at most `awake_limit` are awake, the
/// others wait in line, and meanwhile the hub keeps queueing frames for them,
/// so each leaves with everything queued since its last turn, in one system
/// call. An idle server rings a writer at once; a busy one batches as much as
/// its own speed requires, with no timer.
///
/// A turn rings the writer's queue; the writer holds it until its write has
/// left, or until its socket is full (Peer::end_turn()), and its place goes to
/// the next in line. The hub runs at most so many frames a queue ahead of
/// its writers, then waits until every turn has ended (until_idle()). A turn that
/// is never given back (a writer stuck by a bug) would hold its place for
/// good: until_idle() takes such places back and names their writers.
///
/// owe(), start_turns() and until_idle() are the hub's (its strand); turns
/// end on the writers' threads. Shared: a writer may end its turn after the
/// hub has gone.
class WriteScheduler : public std::enable_shared_from_this<WriteScheduler> {
  public:
    using Clock = std::chrono::steady_clock;

    /// `hub` is the hub's strand, where until_idle() waits.
    WriteScheduler(const asio::any_io_executor& hub, std::size_t awake_limit);

    /// `peer`'s queue holds frames for a ring (its try_push_held() said so):
    /// it gets a turn after this round of commands.
    void owe(std::shared_ptr<Peer> peer) { owed_.push_back(std::move(peer)); }
    /// The turns owed this round: rung now if a place is free, else in line.
    void start_turns();
    /// Forgets the turns owed and not started (the hub stops).
    void drop_owed() { owed_.clear(); }
    /// Forgets the line and the turns given out (the hub lets go of its
    /// connections: Hub::abandon()): a turn that ends from now on hands its
    /// place to nobody and posts nothing. Destroying a context's pending
    /// handlers destroys writers that hold turns; each would otherwise ring
    /// the next in line, a post into another context that may be gone.
    void abandon();

    /// Until every turn has ended, or `limit` has passed: then the turns held
    /// longer than `limit` are taken back and their writers returned (still
    /// alive), for the hub to drop.
    awaitable<std::vector<std::shared_ptr<Peer>>> until_idle(Clock::duration limit);

    /// Some turn has not ended yet.
    bool busy() const;
    /// Writers awake now (for tests and metrics).
    std::size_t awake() const;
    /// Writers in line.
    std::size_t waiting() const;

  private:
    friend class Peer;

    /// A place: one writer awake, holding the turn given with it.
    struct Place {
        std::uint64_t turn = 0;  // the turn held in it; 0: free
        std::weak_ptr<Peer> peer;
        Clock::time_point since;
    };
    /// A turn's id is a serial number above the index of its place: the
    /// place is found without a search, and a turn taken back cannot end
    /// another's (its place may hold a newer turn by then).
    static constexpr unsigned place_bits = 20;
    static constexpr std::uint64_t place_mask = (std::uint64_t{1} << place_bits) - 1;
    static constexpr std::uint64_t serial_mask = ~std::uint64_t{0} >> place_bits;
    /// The most places there can be: awake_limit is cut to it.
    static constexpr std::size_t max_places = std::size_t{1} << place_bits;

    /// Turn `id` ended (Peer::end_turn()): its place goes to the next in line,
    /// unless it was taken back already.
    void give_back(std::uint64_t id);
    /// A place is free: the first in line whose writer waits gets it.
    void hand_out();
    /// The place is free and nobody waits for it.
    void release_place(std::unique_lock<std::mutex>& lock);
    /// `peer` is given a turn and a place to hold it in (under the lock).
    std::uint64_t hold(const std::shared_ptr<Peer>& peer);
    /// Turn `id` leaves its place; false if it held none (it was taken back).
    /// Under the lock.
    bool leave(std::uint64_t id);
    std::vector<std::shared_ptr<Peer>> revoke_overdue(Clock::duration limit);

    std::vector<std::shared_ptr<Peer>> owed_;  // the hub's strand only

    mutable std::mutex mutex_;
    std::deque<std::weak_ptr<Peer>> line_;  // weak: a connection that ended is skipped
    // The turns given out. At most awake_limit, so these never grow past it:
    // a turn allocates nothing once they exist (a map of turns allocated a
    // node for each).
    std::vector<Place> places_;
    std::vector<std::size_t> free_places_;  // indexes in places_ that hold no turn
    std::uint64_t last_turn_ = 0;
    std::size_t awake_ = 0;
    bool abandoned_ = false;
    const std::size_t awake_limit_;

    // until_idle()'s wait, on the hub's strand: cancelled (posted there) when
    // the last turn ends, as Asio's own chat examples signal with a timer.
    asio::steady_timer idle_;
};

}  // namespace chat::hub
