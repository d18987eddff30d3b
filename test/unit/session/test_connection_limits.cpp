// ConnectionLimits: places are taken up to the limits and given back by the tickets.
#include <boost/test/unit_test.hpp>

#include <optional>
#include <thread>
#include <vector>

#include "chat/session/connection_limits.hpp"

using boost::asio::ip::make_address;
using chat::session::ConnectionLimits;

BOOST_AUTO_TEST_SUITE(connection_limits)

BOOST_AUTO_TEST_CASE(each_address_gets_its_share_and_gets_it_back) {
    ConnectionLimits limits(0, 2);
    const auto a = make_address("10.0.0.1");
    const auto b = make_address("::1");
    auto first = limits.admit_address(a);
    auto second = limits.admit_address(a);
    BOOST_TEST(first.has_value());
    BOOST_TEST(second.has_value());
    BOOST_TEST(!limits.admit_address(a).has_value());
    BOOST_TEST(limits.admit_address(b).has_value());  // and given back at once
    BOOST_TEST(limits.addresses() == 1u);
    second.reset();
    auto third = limits.admit_address(a);
    BOOST_TEST(third.has_value());
    // A moved ticket gives its place back once, from where it went.
    ConnectionLimits::Ticket moved = std::move(*first);
    first.reset();
    BOOST_TEST(!limits.admit_address(a).has_value());
    moved = {};
    BOOST_TEST(limits.admit_address(a).has_value());
    third.reset();
    BOOST_TEST(limits.addresses() == 0u);  // no entry outlives its last connection
}

BOOST_AUTO_TEST_CASE(chat_connections_stop_at_the_limit_even_when_racing) {
    ConnectionLimits limits(100, 0);
    std::vector<std::vector<ConnectionLimits::Ticket>> taken(4);
    {
        std::vector<std::jthread> threads;
        for (auto& mine : taken) {
            threads.emplace_back([&limits, &mine] {
                for (int i = 0; i < 1000; ++i) {
                    if (auto ticket = limits.admit_chat()) {
                        mine.push_back(std::move(*ticket));
                    }
                }
            });
        }
    }
    std::size_t total = 0;
    for (const auto& mine : taken) {
        total += mine.size();
    }
    BOOST_TEST(total == 100u);
    BOOST_TEST(limits.chat_connections() == 100u);
    taken.clear();
    BOOST_TEST(limits.chat_connections() == 0u);
}

BOOST_AUTO_TEST_CASE(zero_means_no_limit) {
    ConnectionLimits limits(0, 0);
    std::vector<ConnectionLimits::Ticket> tickets;
    for (int i = 0; i < 1000; ++i) {
        auto chat = limits.admit_chat();
        auto address = limits.admit_address(make_address("127.0.0.1"));
        BOOST_TEST_REQUIRE((chat && address));
        tickets.push_back(std::move(*chat));
        tickets.push_back(std::move(*address));
    }
    BOOST_TEST(limits.chat_connections() == 1000u);
    BOOST_TEST(limits.addresses() == 0u);  // not even counted
}

BOOST_AUTO_TEST_SUITE_END()
