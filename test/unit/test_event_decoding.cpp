// What the Lua scripts leave in Redis, decoded without a Redis: replies are
// parsed from RESP text by hiredis's reader, as a connection would.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include <hiredis/hiredis.h>

#include "event_decoding.hpp"

using namespace chat;
using namespace chat::cluster;

namespace {

/// "*2\r\n..." parsed into a reply.
std::shared_ptr<redisReply> parse(const std::string& resp) {
    std::unique_ptr<redisReader, void (*)(redisReader*)> reader(redisReaderCreate(),
                                                                redisReaderFree);
    BOOST_TEST_REQUIRE(redisReaderFeed(reader.get(), resp.data(), resp.size()) == REDIS_OK);
    void* reply = nullptr;
    BOOST_TEST_REQUIRE(redisReaderGetReply(reader.get(), &reply) == REDIS_OK);
    BOOST_TEST_REQUIRE(reply != nullptr);
    return {static_cast<redisReply*>(reply), freeReplyObject};
}

std::string bulk(const std::string& text) {
    return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
}

/// A stream entry [id, [field, value, ...]].
std::string entry(const std::string& id, std::initializer_list<std::string> fields) {
    std::string out = "*2\r\n" + bulk(id) + "*" + std::to_string(fields.size()) + "\r\n";
    for (const auto& field : fields) {
        out += bulk(field);
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_decoding)

BOOST_AUTO_TEST_CASE(a_message_event_keeps_every_field_and_its_owner) {
    const auto reply = parse(
        entry("1700000000000-3", {"k", "m", "s", "42", "n", "ann", "v", "hi\nthere", "o", "node-a",
                                  "r", "f00d", "p", "7", "i", "12", "t", "1700000000123"}));
    const auto event = decode_event(*reply);
    BOOST_TEST_REQUIRE(event.has_value());
    BOOST_TEST(event->entry == "1700000000000-3");
    BOOST_TEST(event->seq == 42u);
    BOOST_TEST((event->kind == hub::Event::Kind::message));
    BOOST_TEST(event->name == "ann");
    BOOST_TEST(event->text == "hi\nthere");
    BOOST_TEST(event->id == 12u);
    BOOST_TEST(event->stamp == 1700000000123);
    BOOST_TEST(event->owner.node == "node-a");
    BOOST_TEST(event->owner.incarnation == "f00d");
    BOOST_TEST(event->owner.connection == "7");
}

BOOST_AUTO_TEST_CASE(joins_and_leaves_are_told_apart_and_malformed_entries_refused) {
    const auto join =
        parse(entry("1-1", {"k", "j", "s", "1", "n", "bob", "v", "2026-12-05T07:00:00.000Z"}));
    BOOST_TEST((decode_event(*join)->kind == hub::Event::Kind::join));
    const auto leave = parse(entry("1-2", {"k", "l", "s", "2", "n", "bob"}));
    BOOST_TEST((decode_event(*leave)->kind == hub::Event::Kind::leave));

    BOOST_TEST(!decode_event(*parse(entry("1-3", {"k", "x", "s", "3"}))).has_value());  // kind
    BOOST_TEST(!decode_event(*parse(entry("1-4", {"k", "m"}))).has_value());            // no number
    BOOST_TEST(!decode_event(*parse(bulk("not an entry"))).has_value());
}

BOOST_AUTO_TEST_CASE(an_owner_tag_names_node_incarnation_connection_and_join_time) {
    const auto owner = parse_owner("node-a\nbeef\n9\n2026-12-05T07:00:00.000Z");
    BOOST_TEST_REQUIRE(owner.has_value());
    BOOST_TEST(owner->node == "node-a");
    BOOST_TEST(owner->incarnation == "beef");
    BOOST_TEST(owner->connection == "9");
    BOOST_TEST(owner->joined == "2026-12-05T07:00:00.000Z");
    // The tag of an older version (no incarnation) is not taken for one.
    BOOST_TEST(!parse_owner("node-a\n9\n2026-12-05T07:00:00.000Z").has_value());
}

BOOST_AUTO_TEST_CASE(a_kept_message_and_an_xread_reply_decode) {
    const auto reply = parse(entry("17-1", {"n", "cid", "c", "x", "t", "5"}));
    const auto kept = decode_message(*reply);  // views into the reply
    BOOST_TEST_REQUIRE(kept.has_value());
    BOOST_TEST(kept->id == 17u);
    BOOST_TEST(kept->name == "cid");
    BOOST_TEST(kept->content == "x");
    BOOST_TEST(kept->stamp == 5);

    const auto xread =
        parse("*1\r\n*2\r\n" + bulk("chat:events") + "*2\r\n" + entry("1-1", {"k", "l", "s", "1"}) +
              entry("1-2", {"k", "l", "s", "2"}));
    BOOST_TEST(stream_entries(*xread).size() == 2u);
    BOOST_TEST(stream_entries(*parse("*-1\r\n")).empty());  // nil: nothing new
}

BOOST_AUTO_TEST_SUITE_END()
