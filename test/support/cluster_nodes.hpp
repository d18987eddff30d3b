#pragma once
// Three chat_app nodes on one redis-server of the test's own (rules 15 and
// 18): the harness of the cluster suites.

#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat_app_process.hpp"
#include "chat_client.hpp"
#include "redis_process.hpp"
#include "run.hpp"

namespace chat::test {

/// A node on a free port, once it has joined the cluster (unless told not
/// to wait), started with `more` arguments.
inline std::unique_ptr<ChatApp> start_node(const RedisServer& redis, const std::string& id,
                                           const std::string& node_timeout = "10",
                                           bool wait_for_room = true,
                                           const std::vector<std::string>& more = {}) {
    std::vector<std::string> args{
        "--address", "127.0.0.1", "--port",    "0", "--threads",      "2",         "--log-dir", "",
        "--redis",   redis.url(), "--node-id", id,  "--node-timeout", node_timeout};
    args.insert(args.end(), more.begin(), more.end());
    auto node = std::make_unique<ChatApp>(std::move(args));
    node->port();
    if (wait_for_room) {
        BOOST_TEST_REQUIRE(node->wait_output("the room can be reached", std::chrono::seconds(20)),
                           node->output());
    }
    return node;
}

/// Nodes a, b and c on one Redis (append-only unless not `persistent`),
/// each started with `more` arguments.
struct Cluster {
    explicit Cluster(const std::string& node_timeout = "10",
                     const std::vector<std::string>& more = {}, bool persistent = true)
        : redis(persistent) {
        for (const auto* id : {"a", "b", "c"}) {
            nodes.push_back(start_node(redis, id, node_timeout, true, more));
        }
    }
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;
    ~Cluster() {
        // What the nodes said, when the test failed: the story of the failure.
        namespace ut = boost::unit_test;
        if (std::uncaught_exceptions() > 0 ||
            !ut::results_collector.results(ut::framework::current_test_case().p_id).passed()) {
            for (auto& node : nodes) {
                BOOST_TEST_MESSAGE("node output:\n" << node->output());
            }
        }
    }
    std::uint16_t port(std::size_t node) { return nodes.at(node)->port(); }
    /// Until the first `count` nodes judge the others' leases, which they do
    /// only after a node timeout connected ("taken for dead" in their log).
    void until_judging(std::size_t count) {
        for (std::size_t node = 0; node < count; ++node) {
            BOOST_TEST_REQUIRE(
                nodes.at(node)->wait_output("taken for dead", std::chrono::seconds(20)));
        }
    }

    RedisServer redis;
    std::vector<std::unique_ptr<ChatApp>> nodes;
};

inline awaitable<ChatClient> connect_to(std::uint16_t port) {
    ChatClient client(co_await asio::this_coro::executor);
    co_await client.connect(port);
    co_return client;
}

inline awaitable<ChatClient> log_in(std::uint16_t port, std::string name) {
    auto client = co_await connect_to(port);
    co_await client.login(name);
    co_return client;
}

/// log_in() right after the node closed its clients with 1012 (rule 15), as
/// a client does: one fault can make a node restart its connections twice
/// in a few milliseconds (the others' announcement of its users gone, then
/// the sequencer's new state), and a client back between the two is closed
/// with 1012 again. Tries up to three times; any other failure is thrown.
inline awaitable<ChatClient> log_in_after_restart(std::uint16_t port, std::string name) {
    for (int attempt = 1;; ++attempt) {
        auto client = co_await connect_to(port);
        try {
            co_await client.login(name);
            co_return client;
        } catch (const std::runtime_error&) {
            if (client.close_code() != 1012 || attempt == 3) {
                throw;
            }
        }
    }
}

}  // namespace chat::test
