#pragma once
// The www folder, and the only way a request path becomes a file in it.

#include <filesystem>
#include <string_view>
#include <variant>
#include <vector>

namespace chat::session {

class StaticFiles {
  public:
    struct Found {
        std::filesystem::path file;  // canonical, inside the root
        std::string_view mime_type;
    };
    enum class Refused { bad_request, not_found };

    /// Files are looked up in `root`, then in `assets` where given and present
    /// (what the build stages, such as the page's vendored library).
    /// Throws std::runtime_error naming `root` if it is not a readable folder.
    explicit StaticFiles(const std::filesystem::path& root,
                         const std::filesystem::path& assets = {});

    const std::filesystem::path& root() const noexcept { return roots_.front(); }

    /// The file for the path of a request target ("/home.html"; "/" is
    /// "/home.html"). Percent-escapes are decoded first; a malformed escape, a
    /// NUL or backslash, or a "." or ".." segment is a bad request; hidden
    /// files (".git"), folders, missing files and anything whose real path
    /// leaves its folder are not found.
    std::variant<Found, Refused> resolve(std::string_view path) const;

  private:
    std::vector<std::filesystem::path> roots_;  // canonical
};

}  // namespace chat::session
