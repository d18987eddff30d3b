// libFuzzer target: bytes in as an HTTP request, through Beast's parser (with
// the server's limits), the router, and static-file resolution against a www
// folder made at start-up. Checked: a resolved file is always inside the www
// folder, and the router answers every parsed request with a status.

#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <variant>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "chat/metrics/metrics.hpp"
#include "chat/session/router.hpp"
#include "chat/session/static_files.hpp"

namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

/// A www folder with a page, a subfolder, a hidden file, and a secret beside it.
struct World {
    World() {
        base = fs::temp_directory_path() / ("chat-fuzz-" + std::to_string(::getpid()));
        root = base / "www";
        fs::create_directories(root / "sub");
        std::ofstream(root / "home.html") << "home";
        std::ofstream(root / "sub" / "a.js") << "a";
        std::ofstream(root / ".hidden") << "hidden";
        std::ofstream(base / "secret.txt") << "secret";
        fs::create_directory_symlink(base, root / "escape");
    }
    ~World() {
        std::error_code ignored;
        fs::remove_all(base, ignored);
    }
    World(const World&) = delete;
    World& operator=(const World&) = delete;
    fs::path base;
    fs::path root;
};

bool inside(const fs::path& file, const fs::path& root) {
    const auto canonical_root = fs::canonical(root);
    const auto relative = fs::canonical(file).lexically_relative(canonical_root);
    return !relative.empty() && *relative.begin() != "..";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const World world;
    static const chat::session::StaticFiles files(world.root);
    static chat::metrics::Metrics metrics;
    static const chat::session::Config config;
    static const std::atomic<bool> accepting{true};
    static const chat::session::Router router(files, metrics, config, accepting);

    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(8 * 1024);
    parser.eager(true);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (!ec && !parser.is_done()) {
        parser.put_eof(ec);
    }
    // Any target, parsed or not, goes through path resolution.
    const std::string raw(reinterpret_cast<const char*>(data), size);
    for (const auto& target : {raw.substr(0, raw.find(' ')), raw}) {
        const auto found = files.resolve(chat::session::target_path(target));
        if (const auto* file = std::get_if<chat::session::StaticFiles::Found>(&found)) {
            require(inside(file->file, world.root));
            require(file->file.filename() != "secret.txt");
        }
    }
    if (ec || !parser.is_done()) {
        return 0;
    }
    auto request = parser.release();
    chat::session::join_list_fields(request);
    const auto target = std::string(request.target());
    const auto found = files.resolve(chat::session::target_path(target));
    if (const auto* file = std::get_if<chat::session::StaticFiles::Found>(&found)) {
        require(inside(file->file, world.root));
    }
    if (!chat::session::Router::is_chat_upgrade(request)) {
        auto response = router.respond(request);
        (void)response;
    }
    return 0;
}
