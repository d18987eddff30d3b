// No request path leaves the www folder.
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "chat/session/router.hpp"
#include "chat/session/static_files.hpp"
#include "test_server.hpp"

using namespace chat::session;
namespace fs = std::filesystem;

namespace {

struct Www {
    Www() {
        fs::create_directories(www / "sub");
        fs::create_directories(www / ".git");
        std::ofstream(www / "home.html") << "home";
        std::ofstream(www / "app.js") << "js";
        std::ofstream(www / "sub" / "a b.css") << "css";
        std::ofstream(www / ".git" / "config") << "secret";
        std::ofstream(dir.path() / "secret.txt") << "secret";
        fs::create_symlink(dir.path() / "secret.txt", www / "link.txt");
    }
    chat::test::TempDir dir;
    fs::path www = dir.path() / "www";
};

bool found(const StaticFiles& files, std::string_view target, std::string_view name) {
    const auto result = files.resolve(target);
    const auto* file = std::get_if<StaticFiles::Found>(&result);
    return file != nullptr && file->file.filename() == name;
}

bool refused(const StaticFiles& files, std::string_view target, StaticFiles::Refused why) {
    const auto result = files.resolve(target);
    const auto* refusal = std::get_if<StaticFiles::Refused>(&result);
    return refusal != nullptr && *refusal == why;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(static_files, Www)

BOOST_AUTO_TEST_CASE(serves_files_of_the_folder) {
    const StaticFiles files(www);
    BOOST_TEST(found(files, "/", "home.html"));
    BOOST_TEST(found(files, "/home.html", "home.html"));
    BOOST_TEST(found(files, chat::session::target_path("/home.html?v=2#top"), "home.html"));
    BOOST_TEST(found(files, "/app.js", "app.js"));
    BOOST_TEST(found(files, "/sub/a%20b.css", "a b.css"));
    BOOST_TEST(found(files, "//app.js", "app.js"));
    const auto js = std::get<StaticFiles::Found>(files.resolve("/app.js"));
    BOOST_TEST(js.mime_type.find("javascript") != std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(dot_segments_encoded_or_not_are_bad_requests) {
    const StaticFiles files(www);
    using enum StaticFiles::Refused;
    for (const auto* target :
         {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
          "/sub/%2e%2e/%2e%2e/secret.txt", "/./home.html", "/..", "/%2e%2e"}) {
        BOOST_TEST(refused(files, target, bad_request), target);
    }
}

BOOST_AUTO_TEST_CASE(malformed_targets_are_bad_requests) {
    const StaticFiles files(www);
    using enum StaticFiles::Refused;
    for (const auto* target : {"", "home.html", "/%zz", "/%2", "/a%00b", "/..%5csecret.txt",
                               "/sub\\..\\..\\secret.txt", "http://x/home.html"}) {
        BOOST_TEST(refused(files, target, bad_request), target);
    }
}

BOOST_AUTO_TEST_CASE(what_is_not_a_visible_file_inside_is_not_found) {
    const StaticFiles files(www);
    using enum StaticFiles::Refused;
    for (const auto* target : {"/missing.html", "/sub", "/sub/", "/.git/config", "/link.txt",
                               "//etc/passwd", "/etc/passwd", "/%2fetc%2fpasswd"}) {
        BOOST_TEST(refused(files, target, not_found), target);
    }
}

BOOST_AUTO_TEST_CASE(the_assets_folder_is_looked_up_after_the_root) {
    const auto assets = dir.path() / "assets";
    fs::create_directories(assets / "vendor");
    std::ofstream(assets / "vendor" / "lib.js") << "lib";
    std::ofstream(assets / "app.js") << "shadowed";
    fs::create_symlink(dir.path() / "secret.txt", assets / "link.txt");
    const StaticFiles files(www, assets);
    const auto lib = std::get<StaticFiles::Found>(files.resolve("/vendor/lib.js"));
    BOOST_TEST(lib.file == fs::canonical(assets / "vendor" / "lib.js"));
    const auto app = std::get<StaticFiles::Found>(files.resolve("/app.js"));  // the root's wins
    BOOST_TEST(app.file == fs::canonical(www / "app.js"));
    using enum StaticFiles::Refused;
    BOOST_TEST(refused(files, "/link.txt", not_found));  // no way out of the assets either
    BOOST_TEST(refused(files, "/vendor/../app.js", bad_request));
    // A missing assets folder is no error: the page says what is missing.
    const StaticFiles without(www, dir.path() / "no-such-folder");
    BOOST_TEST(refused(without, "/vendor/lib.js", not_found));
}

BOOST_AUTO_TEST_CASE(a_missing_root_is_an_error_naming_it) {
    try {
        const StaticFiles files(www / "nope");
        BOOST_FAIL("expected an exception");
    } catch (const std::runtime_error& error) {
        BOOST_TEST(std::string(error.what()).find("nope") != std::string::npos);
    }
}

BOOST_AUTO_TEST_SUITE_END()
