#pragma once
// hiredis's reply reader, with each reply's objects in an arena of its own.

#include <memory>
#include <string_view>

struct redisReader;
struct redisReply;

namespace chat::cluster {

/// A parsed reply; null only alongside an error.
using Reply = std::shared_ptr<const redisReply>;

class ReplyArena;

/// Parses the replies in the bytes a Redis connection reads. hiredis's own
/// functions allocate each object of a reply apart (an XREAD reply of a busy
/// cluster holds some five an event, and parsing and freeing them took a
/// sixth of a node's time); here hiredis makes them through the functions
/// its reader takes for that (redisReplyObjectFunctions), in an arena the
/// reply keeps: a few growing blocks, freed with the reply. A reply stays
/// valid after the reader has moved on, or gone.
class ReplyReader {
  public:
    ReplyReader();
    ~ReplyReader();
    ReplyReader(const ReplyReader&) = delete;
    ReplyReader& operator=(const ReplyReader&) = delete;

    /// Takes in bytes as they come; false if hiredis cannot (out of memory).
    bool feed(std::string_view bytes);

    /// The next whole reply into `reply` (null when the rest has not come
    /// yet); false if the bytes are not RESP, or memory ran out: the reader
    /// is then unusable.
    bool next(Reply& reply);

  private:
    void next_arena();

    std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
    std::shared_ptr<ReplyArena> arena_;  // where the next reply is made
};

}  // namespace chat::cluster
