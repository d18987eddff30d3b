#include "chat/session/static_files.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "chat/net/percent_decode.hpp"

namespace chat::session {

namespace fs = std::filesystem;

namespace {

std::string_view mime_type(const fs::path& file) {
    const auto ext = file.extension().string();
    if (ext == ".html" || ext == ".htm")
        return "text/html; charset=utf-8";
    if (ext == ".js" || ext == ".mjs")
        return "text/javascript; charset=utf-8";
    if (ext == ".css")
        return "text/css; charset=utf-8";
    if (ext == ".json" || ext == ".map")
        return "application/json";
    if (ext == ".svg")
        return "image/svg+xml";
    if (ext == ".png")
        return "image/png";
    if (ext == ".jpg" || ext == ".jpeg")
        return "image/jpeg";
    if (ext == ".ico")
        return "image/vnd.microsoft.icon";
    if (ext == ".wasm")
        return "application/wasm";
    if (ext == ".txt" || ext == ".proto")
        return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

}  // namespace

StaticFiles::StaticFiles(const fs::path& root, const fs::path& assets) {
    std::error_code ec;
    auto canonical_root = fs::canonical(root, ec);
    if (ec || !fs::is_directory(canonical_root, ec)) {
        throw std::runtime_error("www folder " + root.string() + " is not a readable folder" +
                                 (ec ? ": " + ec.message() : std::string()));
    }
    roots_.push_back(std::move(canonical_root));
    if (!assets.empty()) {
        if (auto canonical_assets = fs::canonical(assets, ec);
            !ec && fs::is_directory(canonical_assets, ec)) {
            roots_.push_back(std::move(canonical_assets));
        }
    }
}

std::variant<StaticFiles::Found, StaticFiles::Refused> StaticFiles::resolve(
    std::string_view path) const {
    const auto decoded = net::percent_decode(path);
    if (!decoded || decoded->empty() || decoded->front() != '/' ||
        decoded->find_first_of(std::string_view("\0\\", 2)) != std::string::npos) {
        return Refused::bad_request;
    }
    fs::path relative;
    std::size_t begin = 1;
    while (begin <= decoded->size()) {
        const auto end = std::min(decoded->find('/', begin), decoded->size());
        const std::string_view segment = std::string_view(*decoded).substr(begin, end - begin);
        begin = end + 1;
        if (segment.empty()) {
            continue;  // "//x" is "/x"
        }
        if (segment == "." || segment == "..") {
            return Refused::bad_request;
        }
        if (segment.front() == '.') {
            return Refused::not_found;
        }
        relative /= segment;
    }
    if (relative.empty()) {
        relative = "home.html";
    }
    for (const auto& root : roots_) {
        // The real path, symbolic links followed, must still be inside its root.
        std::error_code ec;
        auto file = fs::canonical(root / relative, ec);
        if (ec || !fs::is_regular_file(file, ec)) {
            continue;
        }
        const auto inside = file.lexically_relative(root);
        if (inside.empty() || *inside.begin() == "..") {
            continue;
        }
        return Found{file, mime_type(file)};
    }
    return Refused::not_found;
}

}  // namespace chat::session
