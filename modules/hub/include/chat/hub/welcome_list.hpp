#pragma once
// The user list a welcome carries, kept serialised: a login costs a copy of
// bytes, not a map of the room built and serialised again (rule 16).

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chat::hub {

/// The latest `limit` users to join, each as its `user_list` entry of a
/// serialised ChatRequest (name -> join time), in the order they joined.
/// Appended after a serialised welcome, the bytes are that welcome's list:
/// protobuf merges a repeated field's entries, wherever they come.
/// A join is an append (the oldest entry falls off past the limit, and its
/// bytes are reclaimed later, all at once); a leave removes the user's entry
/// and moves the bytes after it. A user who fell off is not listed again,
/// so after leaves it may list fewer than `limit` while more are online:
/// rule 16 asks for at most that many, the latest to join. Hub strand only.
class WelcomeList {
  public:
    explicit WelcomeList(std::size_t limit) : limit_(limit == 0 ? 1 : limit) {}

    /// `name` joined at `joined`: the latest entry now (replacing its old one).
    void join(const std::string& name, const std::string& joined);
    /// `name` left: its entry goes, if it has one.
    void leave(const std::string& name);
    void clear();

    /// The users listed: min(limit, users in the room).
    std::size_t size() const noexcept { return order_.size(); }
    /// Their entries, serialised, the latest last.
    std::string_view entries() const noexcept { return std::string_view(bytes_).substr(start_); }

  private:
    struct Entry {
        std::string name;
        std::size_t offset = 0;  // in bytes_
        std::size_t size = 0;
    };

    void remove(std::list<Entry>::iterator entry);

    std::size_t limit_;
    std::string bytes_;       // entries from start_ on; before it, those that fell off
    std::size_t start_ = 0;   // where the oldest listed entry begins
    std::list<Entry> order_;  // oldest first
    std::unordered_map<std::string_view, std::list<Entry>::iterator>
        by_name_;  // views of Entry::name
};

}  // namespace chat::hub
