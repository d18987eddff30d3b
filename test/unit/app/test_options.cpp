// chat_app's options: names, defaults, environment, and errors (exit 2).
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <vector>

#include "options.hpp"

using chat::app::parse_options;

namespace {

chat::app::Parsed parse(std::vector<const char*> args) {
    args.insert(args.begin(), "chat_app");
    return parse_options(static_cast<int>(args.size()), args.data(), "/bundled/www");
}

struct Environment {
    Environment(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
    ~Environment() { unsetenv(name_); }
    const char* name_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(options)

BOOST_AUTO_TEST_CASE(defaults_are_the_contracts) {
    const auto parsed = parse({});
    BOOST_TEST_REQUIRE(parsed.options.has_value());
    const auto& server = parsed.options->server;
    BOOST_TEST(server.address == "0.0.0.0");
    BOOST_TEST(server.port == 9000);
    BOOST_TEST(server.threads >= 1u);
    BOOST_TEST(server.www_root == "/bundled/www");
    BOOST_TEST(server.idle_timeout.count() == 30'000);
    BOOST_TEST(server.max_message_bytes == 65'536u);
    BOOST_TEST(server.max_content_bytes == 4096u);
    BOOST_TEST(server.rate == 20.0);
    BOOST_TEST(server.burst == 40.0);
    BOOST_TEST(server.flood_limit == 200u);
    BOOST_TEST(server.queue_depth == 256u);
    BOOST_TEST(server.queue_bytes == 8'388'608u);  // 8 MiB
    BOOST_TEST(server.shutdown_grace.count() == 5'000);
    BOOST_TEST(server.writers_awake == 16u);
    BOOST_TEST(server.max_rooms_per_user == 100u);
    BOOST_TEST(server.room_cache_bytes == 268'435'456u);  // 256 MiB
    BOOST_TEST(parsed.options->history.max_rooms == 100'000u);
    BOOST_TEST(parsed.options->log.dir == "logs");
}

BOOST_AUTO_TEST_CASE(every_option_is_read) {
    const auto parsed = parse({"--address",
                               "127.0.0.1",
                               "--port",
                               "0",
                               "--threads",
                               "3",
                               "--www",
                               "/w",
                               "--log-dir",
                               "",
                               "--log-level",
                               "debug",
                               "--idle-timeout",
                               "1.5",
                               "--max-message-bytes",
                               "1000",
                               "--max-content-bytes",
                               "100",
                               "--rate",
                               "0",
                               "--burst",
                               "2",
                               "--flood-limit",
                               "9",
                               "--queue-depth",
                               "16",
                               "--queue-bytes",
                               "65536",
                               "--shutdown-grace",
                               "0",
                               "--writers-awake",
                               "3",
                               "--max-rooms",
                               "7",
                               "--max-rooms-per-user",
                               "5",
                               "--room-cache-bytes",
                               "4096"});
    BOOST_TEST_REQUIRE(parsed.options.has_value(), parsed.output);
    const auto& server = parsed.options->server;
    BOOST_TEST(server.address == "127.0.0.1");
    BOOST_TEST(server.port == 0);
    BOOST_TEST(server.threads == 3u);
    BOOST_TEST(server.www_root == "/w");
    BOOST_TEST(parsed.options->log.dir.empty());
    BOOST_TEST((parsed.options->log.level == chat::logging::Level::debug));
    BOOST_TEST(server.idle_timeout.count() == 1500);
    BOOST_TEST(server.max_message_bytes == 1000u);
    BOOST_TEST(server.max_content_bytes == 100u);
    BOOST_TEST(server.rate == 0.0);
    BOOST_TEST(server.burst == 2.0);
    BOOST_TEST(server.flood_limit == 9u);
    BOOST_TEST(server.queue_depth == 16u);
    BOOST_TEST(server.queue_bytes == 65'536u);
    BOOST_TEST(server.shutdown_grace.count() == 0);
    BOOST_TEST(server.writers_awake == 3u);
    BOOST_TEST(parsed.options->history.max_rooms == 7u);
    BOOST_TEST(server.max_rooms_per_user == 5u);
    BOOST_TEST(server.room_cache_bytes == 4096u);
}

BOOST_AUTO_TEST_CASE(environment_variables_under_the_command_line) {
    const Environment port("CHAT_PORT", "9100");
    const Environment idle("CHAT_IDLE_TIMEOUT", "7");
    const Environment unrelated("CHAT_NOT_AN_OPTION", "x");
    const Environment queue_bytes("CHAT_QUEUE_BYTES", "1048576");
    auto parsed = parse({});
    BOOST_TEST_REQUIRE(parsed.options.has_value(), parsed.output);
    BOOST_TEST(parsed.options->server.port == 9100);
    BOOST_TEST(parsed.options->server.idle_timeout.count() == 7000);
    BOOST_TEST(parsed.options->server.queue_bytes == 1'048'576u);
    parsed = parse({"--port", "9200"});
    BOOST_TEST_REQUIRE(parsed.options.has_value());
    BOOST_TEST(parsed.options->server.port == 9200);
}

BOOST_AUTO_TEST_CASE(bad_values_exit_2_with_a_clear_message) {
    const std::vector<std::vector<const char*>> bad = {
        {"--port", "70000"},
        {"--port", "-1"},
        {"--port", "x"},
        {"--threads", "0"},
        {"--idle-timeout", "0"},
        {"--idle-timeout", "-3"},
        {"--rate", "-1"},
        {"--burst", "0"},
        {"--queue-depth", "0"},
        {"--queue-bytes", "0"},
        {"--queue-bytes", "1023"},
        {"--queue-bytes", "-8"},
        {"--queue-bytes", "8M"},
        {"--log-level", "loud"},
        {"--no-such-option"},
        {"--max-content-bytes", "0"},
        {"--max-message-bytes", "70000", "--max-content-bytes", "80000"},
        {"--shutdown-grace", "nan"},
        {"--www", ""}};
    for (const auto& args : bad) {
        const auto parsed = parse(args);
        BOOST_TEST(!parsed.options.has_value(), args.front());
        BOOST_TEST(parsed.exit_code == 2, args.front());
        BOOST_TEST(parsed.output.find("chat_app: ") == 0u, parsed.output);
    }
    const auto parsed = parse({"--port", "70000"});
    BOOST_TEST(parsed.output.find("--port") != std::string::npos);
    BOOST_TEST(parsed.output.find("70000") != std::string::npos);
    const auto bytes = parse({"--queue-bytes", "100"});
    BOOST_TEST(bytes.output.find("--queue-bytes must be between 1024") != std::string::npos,
               bytes.output);
}

BOOST_AUTO_TEST_CASE(help_lists_every_option_and_exits_0) {
    const auto parsed = parse({"--help"});
    BOOST_TEST(!parsed.options.has_value());
    BOOST_TEST(parsed.exit_code == 0);
    for (const auto* option :
         {"--address", "--port", "--threads", "--www", "--log-dir", "--log-level", "--idle-timeout",
          "--max-message-bytes", "--max-content-bytes", "--rate", "--burst", "--flood-limit",
          "--queue-depth", "--queue-bytes", "--shutdown-grace", "CHAT_"}) {
        BOOST_TEST(parsed.output.find(option) != std::string::npos, option);
    }
}

BOOST_AUTO_TEST_CASE(redis_makes_a_cluster_node) {
    BOOST_TEST(!parse({}).options->cluster.has_value());
    const auto parsed = parse({"--redis", "redis://app:s3cret@cache.local:6380/2", "--node-id",
                               "node-1", "--node-timeout", "2.5", "--history-keep", "500"});
    BOOST_TEST_REQUIRE(parsed.options.has_value(), parsed.output);
    const auto& cluster = parsed.options->cluster;
    BOOST_TEST_REQUIRE(cluster.has_value());
    BOOST_TEST(cluster->redis.host == "cache.local");
    BOOST_TEST(cluster->redis.port == "6380");
    BOOST_TEST(cluster->redis.user == "app");
    BOOST_TEST(cluster->redis.password == "s3cret");
    BOOST_TEST(cluster->redis.database == 2);
    BOOST_TEST(cluster->redis.describe() == "cache.local:6380/2");  // no password in logs
    BOOST_TEST(cluster->node_id == "node-1");
    BOOST_TEST(cluster->node_timeout.count() == 2'500);
    BOOST_TEST(cluster->keep == 500u);
    BOOST_TEST(cluster->messages_in_flight == 4096u);
    const auto bounded = parse({"--redis", "redis://h", "--redis-in-flight", "10"});
    BOOST_TEST_REQUIRE(bounded.options.has_value(), bounded.output);
    BOOST_TEST(bounded.options->cluster->messages_in_flight == 10u);

    const auto plain = parse({"--redis", "redis://127.0.0.1"});
    BOOST_TEST_REQUIRE(plain.options.has_value());
    BOOST_TEST(plain.options->cluster->redis.port == "6379");
    BOOST_TEST(plain.options->cluster->redis.password.empty());
    BOOST_TEST(!plain.options->cluster->node_id.empty());  // host name and pid
    const auto password_only = parse({"--redis", "redis://pw@[::1]:7000"});
    BOOST_TEST_REQUIRE(password_only.options.has_value());
    BOOST_TEST(password_only.options->cluster->redis.host == "::1");
    BOOST_TEST(password_only.options->cluster->redis.password == "pw");
    BOOST_TEST(password_only.options->warnings.size() == 1u);  // a password in ps
    BOOST_TEST(password_only.options->warnings.front().find("CHAT_REDIS") != std::string::npos);
    BOOST_TEST(plain.options->warnings.empty());
}

BOOST_AUTO_TEST_CASE(a_redis_password_is_percent_decoded_and_may_come_from_the_environment) {
    const auto parsed = parse({"--redis", "redis://us%40er:p%40ss%3Aw%2Fd%25@h:1"});
    BOOST_TEST_REQUIRE(parsed.options.has_value(), parsed.output);
    BOOST_TEST(parsed.options->cluster->redis.user == "us@er");
    BOOST_TEST(parsed.options->cluster->redis.password == "p@ss:w/d%");
    BOOST_TEST(parsed.options->cluster->redis.host == "h");

    ::setenv("CHAT_REDIS", "redis://:secret@h:2", 1);
    const auto from_environment = parse({});
    ::unsetenv("CHAT_REDIS");
    BOOST_TEST_REQUIRE(from_environment.options.has_value(), from_environment.output);
    BOOST_TEST(from_environment.options->cluster->redis.password == "secret");
    BOOST_TEST(from_environment.options->warnings.empty());  // not visible in ps
}

BOOST_AUTO_TEST_CASE(a_bad_redis_url_or_node_id_is_refused_with_its_reason) {
    for (const auto& [args, reason] : std::vector<std::pair<std::vector<const char*>, std::string>>{
             {{"--redis", "http://h:1"}, "must start with redis://"},
             {{"--redis", "redis://h:0"}, "port must be between"},
             {{"--redis", "redis://h:99999"}, "port must be between"},
             {{"--redis", "redis://:6379"}, "has no host"},
             {{"--redis", "redis://h/x"}, "database must be a number"},
             {{"--redis", "redis://h", "--node-id", "a b"}, "--node-id must be"},
             {{"--redis", "redis://p%4@h"}, "bad percent escape in its password"},
             {{"--redis", "redis://h", "--node-timeout", "0.1"}, "--node-timeout must be"},
             {{"--redis", "redis://h", "--node-timeout", "0.9"}, "at least 1 second"},
             {{"--redis", "redis://h", "--redis-in-flight", "0"}, "--redis-in-flight"}}) {
        const auto parsed = parse(args);
        BOOST_TEST(!parsed.options.has_value());
        BOOST_TEST(parsed.exit_code == 2);
        BOOST_TEST(parsed.output.find(reason) != std::string::npos, parsed.output);
    }
}

BOOST_AUTO_TEST_SUITE_END()
