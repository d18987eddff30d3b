#include "reply_reader.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <memory_resource>
#include <new>

#include <hiredis/hiredis.h>

namespace chat::cluster {

/// The objects of one reply. Small replies fit in its own first block.
class ReplyArena {
  public:
    /// Null when memory runs out: hiredis then reports it (an exception must
    /// not cross its C code).
    void* allocate(std::size_t bytes, std::size_t alignment) noexcept {
        try {
            return memory_.allocate(bytes, alignment);
        } catch (const std::bad_alloc&) {
            return nullptr;
        }
    }

  private:
    std::array<std::byte, 256> first_{};
    std::pmr::monotonic_buffer_resource memory_{first_.data(), first_.size()};
};

namespace {

// The functions hiredis's reader makes a reply's objects with: the reader
// hands each the arena as its task's privdata.
ReplyArena& arena_of(const redisReadTask* task) {
    return *static_cast<ReplyArena*>(task->privdata);
}

redisReply* make_object(const redisReadTask* task, int type) {
    void* memory = arena_of(task).allocate(sizeof(redisReply), alignof(redisReply));
    if (memory == nullptr) {
        return nullptr;
    }
    auto* object = new (memory) redisReply{};
    object->type = type;
    if (task->parent != nullptr) {
        auto* parent = static_cast<redisReply*>(task->parent->obj);
        parent->element[task->idx] = object;
    }
    return object;
}

void* make_string(const redisReadTask* task, char* text, std::size_t size) {
    auto* copy = static_cast<char*>(arena_of(task).allocate(size + 1, alignof(char)));
    auto* object =
        copy == nullptr ? nullptr : make_object(task, task->type);  // string, status, error
    if (object == nullptr) {
        return nullptr;
    }
    std::memcpy(copy, text, size);
    copy[size] = '\0';
    object->str = copy;
    object->len = size;
    return object;
}

void* make_array(const redisReadTask* task, int count) {
    const auto size = static_cast<std::size_t>(std::max(count, 0));
    redisReply** element = nullptr;
    if (size > 0) {
        element = static_cast<redisReply**>(
            arena_of(task).allocate(size * sizeof(redisReply*), alignof(redisReply*)));
        if (element == nullptr) {
            return nullptr;
        }
        std::fill_n(element, size, nullptr);
    }
    auto* object = make_object(task, REDIS_REPLY_ARRAY);
    if (object != nullptr) {
        object->element = element;
        object->elements = size;
    }
    return object;
}

void* make_integer(const redisReadTask* task, long long value) {
    auto* object = make_object(task, REDIS_REPLY_INTEGER);
    if (object != nullptr) {
        object->integer = value;
    }
    return object;
}

void* make_nil(const redisReadTask* task) {
    return make_object(task, REDIS_REPLY_NIL);
}

/// Nothing: a reply's objects go with its arena.
void free_object(void* /*object*/) {}

const redisReplyObjectFunctions arena_functions{make_string, make_array, make_integer, make_nil,
                                                free_object};

}  // namespace

ReplyReader::ReplyReader()
    // hiredis only reads the functions through the pointer it asks for.
    : reader_(redisReaderCreateWithFunctions(
                  const_cast<
                      redisReplyObjectFunctions*>(  // NOLINT(cppcoreguidelines-pro-type-const-cast)
                      &arena_functions)),
              redisReaderFree) {
    if (!reader_) {
        throw std::bad_alloc();
    }
    // hiredis frees its buffer once empty if it grew past 16 KiB: with an
    // XREAD reply of many events, a large block freed and taken again per
    // call, and glibc merging free blocks each time (malloc_consolidate
    // showed in profiles). Kept up to this size, and freed beyond.
    reader_->maxbuf = std::size_t{1} << 20;
    next_arena();
}

ReplyReader::~ReplyReader() = default;

void ReplyReader::next_arena() {
    arena_ = std::make_shared<ReplyArena>();
    reader_->privdata = arena_.get();
}

bool ReplyReader::feed(std::string_view bytes) {
    return redisReaderFeed(reader_.get(), bytes.data(), bytes.size()) == REDIS_OK;
}

bool ReplyReader::next(Reply& reply) {
    reply.reset();
    void* parsed = nullptr;
    if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK) {
        return false;
    }
    if (parsed != nullptr) {
        // The reply keeps its arena; the next one is made in a new one.
        reply = Reply(std::move(arena_), static_cast<const redisReply*>(parsed));
        next_arena();
    }
    return true;
}

}  // namespace chat::cluster
