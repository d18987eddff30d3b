#pragma once
// The www folder, and the only way a request path becomes a file in it.

#include <filesystem>
#include <string_view>
#include <variant>

namespace chat::session {

class StaticFiles {
  public:
    struct Found {
        std::filesystem::path file;  // canonical, inside the root
        std::string_view mime_type;
    };
    enum class Refused { bad_request, not_found };

    /// Throws std::runtime_error naming `root` if it is not a readable folder.
    explicit StaticFiles(const std::filesystem::path& root);

    const std::filesystem::path& root() const noexcept { return root_; }

    /// The file for a request target ("/home.html?x=1"; "/" is "/home.html").
    /// Percent-escapes are decoded first; a malformed escape, a NUL or backslash,
    /// or a "." or ".." segment is a bad request; hidden files (".git"), folders,
    /// missing files and anything whose real path leaves the root are not found.
    std::variant<Found, Refused> resolve(std::string_view target) const;

  private:
    std::filesystem::path root_;
};

/// The path part of a request target: up to '?' or '#'.
std::string_view target_path(std::string_view target);

}  // namespace chat::session
