// What the Lua scripts leave in Redis, decoded without a Redis: replies are
// parsed from RESP text by the ReplyReader a connection parses with; and the
// reader itself.
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include <hiredis/hiredis.h>

#include "event_decoding.hpp"
#include "redis_connection.hpp"
#include "reply_reader.hpp"

using namespace chat;
using namespace chat::cluster;

namespace {

/// "*2\r\n..." parsed into a reply, as a connection parses it.
Reply parse(const std::string& resp) {
    ReplyReader reader;
    BOOST_TEST_REQUIRE(reader.feed(resp));
    Reply reply;
    BOOST_TEST_REQUIRE(reader.next(reply));
    BOOST_TEST_REQUIRE(reply != nullptr);
    return reply;
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

/// An event entry as the scripts append it: one field "e", the lines packed.
std::string event(const std::string& id, const std::string& packed) {
    return entry(id, {"e", packed});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_decoding)

BOOST_AUTO_TEST_CASE(a_message_event_keeps_every_field_and_its_owner) {
    const auto reply = parse(
        event("1700000000000-3", "m\n42\n99\nnode-a\nf00d\n7\n12\n1700000000123\nann\nhi\nthere"));
    const auto decoded = decode_event(*reply);
    BOOST_TEST_REQUIRE(decoded.has_value());
    BOOST_TEST(decoded->entry == "1700000000000-3");
    BOOST_TEST(decoded->seq == 42u);
    BOOST_TEST(decoded->global == 99u);
    BOOST_TEST((decoded->kind == hub::Event::Kind::message));
    BOOST_TEST(decoded->name == "ann");
    BOOST_TEST(decoded->text == "hi\nthere");
    BOOST_TEST(decoded->id == 12u);
    BOOST_TEST(decoded->stamp == 1700000000123);
    BOOST_TEST(decoded->owner.node == "node-a");
    BOOST_TEST(decoded->owner.incarnation == "f00d");
    BOOST_TEST(decoded->owner.connection == "7");
}

BOOST_AUTO_TEST_CASE(joins_and_leaves_are_told_apart_and_malformed_entries_refused) {
    const auto join =
        parse(event("1-1", "j\n1\n1\na\nf00d\n3\n0\n5\nbob\n2026-12-05T07:00:00.000Z"));
    const auto joined = decode_event(*join);
    BOOST_TEST_REQUIRE(joined.has_value());
    BOOST_TEST((joined->kind == hub::Event::Kind::join));
    BOOST_TEST(joined->text == "2026-12-05T07:00:00.000Z");
    const auto leave = parse(event("1-2", "l\n2\n2\na\nf00d\n3\n0\n6\nbob\n"));
    const auto left = decode_event(*leave);
    BOOST_TEST_REQUIRE(left.has_value());
    BOOST_TEST((left->kind == hub::Event::Kind::leave));
    BOOST_TEST(left->name == "bob");
    BOOST_TEST(left->text.empty());

    BOOST_TEST(!decode_event(*parse(event("1-3", "x\n3\n3\na\nf\n3\n0\n6\nbob\n"))).has_value());
    BOOST_TEST(!decode_event(*parse(event("1-4", "m\n0\n4\na\nf\n3\n1\n6\nbob\nhi")))
                    .has_value());                                                    // no number
    BOOST_TEST(!decode_event(*parse(event("1-5", "m\n5\n5\na\nf\n3"))).has_value());  // cut short
    BOOST_TEST(
        !decode_event(*parse(entry("1-6", {"k", "m", "s", "6"}))).has_value());  // not packed
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

    // Two streams: the lobby's and a room's, each with its entries.
    const auto xread =
        parse("*2\r\n*2\r\n" + bulk("chat:events") + "*2\r\n" +
              event("1-1", "l\n1\n1\na\nf\n3\n0\n5\nann\n") +
              event("1-2", "l\n2\n2\na\nf\n3\n0\n5\nbob\n") + "*2\r\n" + bulk("chat:{r:x}:events") +
              "*1\r\n" + event("1-3", "l\n1\n3\na\nf\n3\n0\n5\ncid\n"));
    const auto streams = stream_entries(*xread);
    BOOST_TEST_REQUIRE(streams.size() == 2u);
    BOOST_TEST(streams[0].stream == "chat:events");
    BOOST_TEST(streams[0].entries.size() == 2u);
    BOOST_TEST(streams[1].stream == "chat:{r:x}:events");
    BOOST_TEST_REQUIRE(streams[1].entries.size() == 1u);
    const auto room_event = decode_event(*streams[1].entries[0]);
    BOOST_TEST_REQUIRE(room_event.has_value());
    BOOST_TEST(room_event->seq == 1u);
    BOOST_TEST(room_event->global == 3u);
    BOOST_TEST(stream_entries(*parse("*-1\r\n")).empty());  // nil: nothing new
}

BOOST_AUTO_TEST_CASE(a_room_state_lists_users_and_the_newest_messages_without_a_gap) {
    const std::string users = "*4\r\n" + bulk("ann") +
                              bulk("a\nf00d\n3\n2026-12-05T07:00:00.000Z") + bulk("old") +
                              bulk("no incarnation\n1\n2026");
    // Newest first, as XREVRANGE gives them: 9, 8, then 6 (7 trimmed).
    const std::string newest = "*3\r\n" + entry("9-1", {"n", "ann", "c", "nine", "t", "90"}) +
                               entry("8-1", {"n", "ann", "c", "eight", "t", "80"}) +
                               entry("6-1", {"n", "ann", "c", "six", "t", "60"});
    const auto reply = parse("*8\r\n" + bulk("e1") + bulk("1700-5") + bulk("41") + bulk("9") +
                             bulk("1234") + users + newest + bulk("77"));
    const auto room = decode_room_state(*reply, true);
    BOOST_TEST_REQUIRE(room.has_value());
    BOOST_TEST(room->epoch == "e1");
    BOOST_TEST(room->last_entry == "1700-5");
    BOOST_TEST(room->last_seq == 41u);
    BOOST_TEST(room->last_id == 9u);
    BOOST_TEST(room->stamp == 1234);
    BOOST_TEST(room->global == 77u);
    BOOST_TEST_REQUIRE(room->users.size() == 1u);  // the malformed tag is left out
    BOOST_TEST(room->users[0].name == "ann");
    BOOST_TEST(room->users[0].owner.incarnation == "f00d");
    BOOST_TEST_REQUIRE(room->newest.size() == 2u);  // 8 and 9: nothing below the gap
    BOOST_TEST(room->newest[0].id == 8u);
    BOOST_TEST(room->newest[1].content == "nine");

    BOOST_TEST(!decode_room_state(*parse("*2\r\n" + bulk("e1") + bulk("x")), true).has_value());

    // A room's (the open script's): the same without the epoch.
    const auto opened = parse("*7\r\n" + bulk("1700-5") + bulk("41") + bulk("9") + bulk("1234") +
                              users + newest + bulk("77"));
    const auto state = decode_room_state(*opened, false);
    BOOST_TEST_REQUIRE(state.has_value());
    BOOST_TEST(state->epoch.empty());
    BOOST_TEST(state->last_seq == 41u);
    BOOST_TEST(state->newest.size() == 2u);
    BOOST_TEST(!decode_room_state(*opened, true).has_value());
}

BOOST_AUTO_TEST_CASE(a_reply_keeps_its_objects_after_the_reader_moves_on_or_goes) {
    Reply first;
    Reply second;
    {
        ReplyReader reader;
        // Every kind hiredis makes, nested, with a nil array and an empty
        // one, then a second reply that arrives in two pieces.
        const std::string nested =
            "*6\r\n" + bulk("text") + ":-42\r\n+OK\r\n-ERR no\r\n" + "*2\r\n$-1\r\n*-1\r\n*0\r\n";
        const std::string big(5000, 'x');  // beyond the arena's first block
        const std::string next = "*1\r\n" + bulk(big);
        BOOST_TEST_REQUIRE(reader.feed(nested + next.substr(0, 10)));
        BOOST_TEST_REQUIRE(reader.next(first));
        BOOST_TEST_REQUIRE(first != nullptr);
        BOOST_TEST_REQUIRE(reader.next(second));
        BOOST_TEST(second == nullptr);  // not all there yet
        BOOST_TEST_REQUIRE(reader.feed(next.substr(10)));
        BOOST_TEST_REQUIRE(reader.next(second));
        BOOST_TEST_REQUIRE(second != nullptr);
        Reply none;
        BOOST_TEST_REQUIRE(reader.next(none));
        BOOST_TEST(none == nullptr);
    }
    const auto items = elements(*first);
    BOOST_TEST_REQUIRE(items.size() == 6u);
    BOOST_TEST(text(*items[0]) == "text");
    BOOST_TEST(items[1]->type == REDIS_REPLY_INTEGER);
    BOOST_TEST(items[1]->integer == -42);
    BOOST_TEST(items[2]->type == REDIS_REPLY_STATUS);
    BOOST_TEST(text(*items[2]) == "OK");
    BOOST_TEST(is_error(*items[3]));
    BOOST_TEST(text(*items[3]) == "ERR no");
    const auto inner = elements(*items[4]);
    BOOST_TEST_REQUIRE(inner.size() == 2u);
    BOOST_TEST(is_nil(*inner[0]));
    BOOST_TEST(is_nil(*inner[1]));
    BOOST_TEST(items[5]->type == REDIS_REPLY_ARRAY);
    BOOST_TEST(elements(*items[5]).empty());
    const auto big = elements(*second);
    BOOST_TEST_REQUIRE(big.size() == 1u);
    BOOST_TEST(text(*big[0]) == std::string(5000, 'x'));
}

BOOST_AUTO_TEST_CASE(bytes_that_are_not_resp_are_refused) {
    ReplyReader reader;
    BOOST_TEST_REQUIRE(reader.feed("?nonsense\r\n"));
    Reply reply;
    BOOST_TEST(!reader.next(reply));
}

BOOST_AUTO_TEST_SUITE_END()
