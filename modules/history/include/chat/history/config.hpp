#pragma once
// Where and how much history is kept.

#include <cstddef>
#include <filesystem>

namespace chat::history {

struct Config {
    /// The SQLite file (its folder is created); empty: in memory only, with a
    /// fresh epoch per process.
    std::filesystem::path db = "data/chat.db";
    std::size_t keep = 100'000;  // newest messages kept; older ones are pruned
};

}  // namespace chat::history
