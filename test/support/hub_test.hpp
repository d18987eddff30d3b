#pragma once
// The hub without sockets: a hub on the test's io_context, its peers and its
// history, and the steps a test takes with them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "chat/history/memory_history.hpp"
#include "chat/hub/frame_clock.hpp"
#include "chat/hub/history.hpp"
#include "chat/hub/hub.hpp"
#include "chat/metrics/metrics.hpp"
#include "chat/net/asio.hpp"
#include "run.hpp"
#include "test_peer.hpp"

namespace chat::test {

/// History in memory whose reads (rule 14) the test can hold back, as a
/// store still busy reading would, and then release.
class HeldHistory final : public hub::History {
  public:
    explicit HeldHistory(std::size_t keep, std::size_t max_rooms = 100'000)
        : kept_({.db = {}, .keep = keep, .max_rooms = max_rooms}) {}

    Start start(std::size_t newest) override { return kept_.start(newest); }
    void open_room(const std::string& room, std::size_t newest, RoomReply reply) override {
        if (hold) {
            held_.push_back({room, 0, newest, std::move(reply)});
            return;
        }
        kept_.open_room(room, newest, std::move(reply));
    }
    void vacate(const std::string& room) override { kept_.vacate(room); }
    bool try_append(const std::string& room, std::uint64_t id, const hub::Frame& message) override {
        return kept_.try_append(room, id, message);
    }
    void read_before(const std::string& room, std::uint64_t before, std::size_t limit,
                     Reply reply) override {
        ++reads;
        if (hold) {
            held_.push_back({room, before, limit, std::move(reply)});
            return;
        }
        kept_.read_before(room, before, limit, std::move(reply));
    }
    void stopped(bool all_handed_over) override { kept_.stopped(all_handed_over); }

    /// Answers the reads (and room openings) held back, in order.
    void release() {
        for (auto& read : std::exchange(held_, {})) {
            if (auto* page = std::get_if<Reply>(&read.reply)) {
                kept_.read_before(read.room, read.before, read.limit, std::move(*page));
            } else {
                kept_.open_room(read.room, read.limit, std::get<RoomReply>(std::move(read.reply)));
            }
        }
    }
    std::size_t held() const noexcept { return held_.size(); }

    bool hold = false;      // reads wait for release()
    std::size_t reads = 0;  // reads asked of the store

  private:
    struct Read {
        std::string room;
        std::uint64_t before;
        std::size_t limit;
        std::variant<Reply, RoomReply> reply;
    };
    history::MemoryHistory kept_;
    std::vector<Read> held_;
};

/// A hub on the test's io_context (one thread: a strand by itself). With a
/// sequencer, it is a cluster node's hub and the test plays the cluster.
struct HubTest {
    explicit HubTest(asio::any_io_executor executor, hub::HubLimits limits = {.capacity = 1024},
                     hub::Sequencer* cluster = nullptr);

    awaitable<std::shared_ptr<TestPeer>> connect(std::size_t depth = 256);
    awaitable<void> login(TestPeer& peer, std::string name);
    awaitable<void> say(TestPeer& peer, std::string content, std::string room = {});
    /// Asks to enter `room` (rule 17), resuming after `id` in `epoch` if given.
    awaitable<void> join(TestPeer& peer, std::string room, std::uint64_t id = 0,
                         std::string epoch = {});
    awaitable<void> leave_room(TestPeer& peer, std::string room);
    /// A login that resumes from `id` in `epoch` (rule 13).
    awaitable<void> resume(TestPeer& peer, std::string name, std::uint64_t id, std::string epoch);
    awaitable<void> ask_before(TestPeer& peer, std::uint64_t id, std::string room = {});
    /// What a cluster sends the hub.
    awaitable<void> from_cluster(hub::Command command);
    awaitable<void> leave(TestPeer& peer);
    /// Connects and logs in; the welcome is consumed.
    awaitable<std::shared_ptr<TestPeer>> user(std::string name, std::size_t depth = 256);

    asio::any_io_executor executor_;
    metrics::Metrics metrics;
    hub::FrameClock clock;
    HeldHistory history;
    hub::Hub hub;
    bool finished = false;
    hub::PeerId last_id_ = 0;
};

/// Runs `test(HubTest&)` (returning awaitable<void>) against a hub of its
/// own, then stops the hub.
template <typename Test>
void hub_test(Test test, hub::HubLimits limits = {.capacity = 1024}) {
    run(
        [&]() -> awaitable<void> {
            HubTest h(co_await asio::this_coro::executor, limits);
            co_await test(h);
            h.hub.stop();
        },
        std::chrono::seconds(20));
}

/// A point in the hub's order: once a newcomer has the answer to a message
/// sent before its login (an error), the hub has handled every command sent
/// before.
awaitable<void> handled(HubTest& h);

/// A writer that is woken in its turn, takes its frames and does not come back.
awaitable<void> take_and_keep_the_turn(std::shared_ptr<TestPeer> peer,
                                       std::shared_ptr<std::vector<hub::Frame>> batch);

}  // namespace chat::test
