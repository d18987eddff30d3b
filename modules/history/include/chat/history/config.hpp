#pragma once
// Where and how much history is kept.

#include <cstddef>
#include <filesystem>

namespace chat::history {

struct Config {
    /// The SQLite file (its folder is created); empty: in memory only, with a
    /// fresh epoch per process.
    std::filesystem::path db = "data/chat.db";
    std::size_t keep = 100'000;  // newest messages kept in each room; older ones are pruned
    /// Rooms that exist besides the lobby, at most (rule 17): a room that
    /// would be one more first makes the quietest room without users forgotten.
    std::size_t max_rooms = 100'000;
};

}  // namespace chat::history
