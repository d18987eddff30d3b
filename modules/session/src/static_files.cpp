#include "chat/session/static_files.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace chat::session {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> percent_decode(std::string_view text) {
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        if (i + 2 >= text.size()) {
            return std::nullopt;
        }
        const int high = hex(text[i + 1]);
        const int low = hex(text[i + 2]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
    }
    return out;
}

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
    const auto decoded = percent_decode(path);
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
