// The kept, serialised user list of welcomes (rule 16).
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>

#include "chat/chat.pb.h"
#include "chat/hub/welcome_list.hpp"

using chat::ChatRequest;
using chat::hub::WelcomeList;

namespace {

/// What a client decodes: a welcome's own fields, then the kept entries.
ChatRequest welcome_with(const WelcomeList& list) {
    ChatRequest welcome;
    welcome.set_type("login");
    welcome.set_user_name("newcomer");
    auto bytes = welcome.SerializeAsString();
    bytes.append(list.entries());
    ChatRequest decoded;
    BOOST_REQUIRE(decoded.ParseFromString(bytes));
    BOOST_TEST(decoded.type() == "login");
    BOOST_TEST(decoded.user_name() == "newcomer");
    return decoded;
}

std::map<std::string, std::string> listed(const WelcomeList& list) {
    const auto welcome = welcome_with(list);
    return {welcome.user_list().begin(), welcome.user_list().end()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(welcome_list)

BOOST_AUTO_TEST_CASE(joins_are_listed_with_their_join_times) {
    WelcomeList list(10);
    BOOST_TEST(list.entries().empty());
    list.join("ann", "t1");
    list.join("bob", "t2");
    const std::map<std::string, std::string> expected{{"ann", "t1"}, {"bob", "t2"}};
    BOOST_TEST(listed(list) == expected);
    BOOST_TEST(list.size() == 2u);
}

BOOST_AUTO_TEST_CASE(past_the_limit_the_oldest_joins_fall_off) {
    WelcomeList list(3);
    for (int i = 0; i < 100; ++i) {
        list.join("user" + std::to_string(i), "t" + std::to_string(i));
    }
    const std::map<std::string, std::string> expected{
        {"user97", "t97"}, {"user98", "t98"}, {"user99", "t99"}};
    BOOST_TEST(listed(list) == expected);
    BOOST_TEST(list.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_leave_removes_its_entry_wherever_it_is) {
    WelcomeList list(4);
    for (const auto* name : {"a", "b", "c", "d"}) {
        list.join(name, std::string("t") + name);
    }
    list.leave("b");  // in the middle
    list.leave("a");  // the oldest
    list.leave("d");  // the latest
    list.leave("nobody");
    const std::map<std::string, std::string> expected{{"c", "tc"}};
    BOOST_TEST(listed(list) == expected);
    list.leave("c");
    BOOST_TEST(list.entries().empty());
    BOOST_TEST(list.size() == 0u);
    list.join("e", "te");
    const std::map<std::string, std::string> again{{"e", "te"}};
    BOOST_TEST(listed(list) == again);
}

BOOST_AUTO_TEST_CASE(a_join_again_replaces_the_old_entry_and_counts_as_the_latest) {
    WelcomeList list(2);
    list.join("ann", "t1");
    list.join("bob", "t2");
    list.join("ann", "t3");  // back: the latest now, so bob falls off first
    list.join("cat", "t4");
    const std::map<std::string, std::string> expected{{"ann", "t3"}, {"cat", "t4"}};
    BOOST_TEST(listed(list) == expected);
    BOOST_TEST(welcome_with(list).user_list_size() == 2);  // one entry per name
}

BOOST_AUTO_TEST_CASE(leaves_after_entries_fell_off_keep_the_bytes_right) {
    WelcomeList list(3);
    for (int i = 0; i < 5; ++i) {
        list.join("u" + std::to_string(i), "t" + std::to_string(i));  // u0, u1 fall off
    }
    list.leave("u3");
    list.join("u5", "t5");  // u2 falls off
    list.leave("u2");       // gone already: nothing
    const std::map<std::string, std::string> expected{{"u4", "t4"}, {"u5", "t5"}};
    BOOST_TEST(listed(list) == expected);
    list.clear();
    BOOST_TEST(list.entries().empty());
}

BOOST_AUTO_TEST_SUITE_END()
