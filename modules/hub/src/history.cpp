#include "chat/hub/history.hpp"

#include <algorithm>
#include <random>
#include <string_view>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "chat/chat.pb.h"

namespace chat::hub {

void MessageRing::push(std::uint64_t id, Frame message) {
    if (capacity_ == 0) {
        return;
    }
    if (messages_.empty() || id != first_id_ + messages_.size()) {
        messages_.clear();  // not consecutive: start over from this one
        first_id_ = id;
    }
    messages_.push_back(std::move(message));
    if (messages_.size() > capacity_) {
        messages_.pop_front();
        ++first_id_;
    }
}

std::vector<Frame> MessageRing::newest(std::size_t count) const {
    const auto n = std::min(count, messages_.size());
    return {messages_.end() - static_cast<std::ptrdiff_t>(n), messages_.end()};
}

std::vector<Frame> MessageRing::after(std::uint64_t id, std::size_t limit) const {
    const auto end_id = first_id_ + messages_.size();  // one past the newest
    if (messages_.empty() || id + 1 >= end_id) {
        return {};
    }
    const auto missing = end_id - (id + 1);
    if (id + 1 < first_id_ || missing > limit) {
        return newest(limit);
    }
    return newest(missing);
}

Frame history_frame(std::span<const Frame> messages, std::int64_t stamp, const std::string& room) {
    using google::protobuf::internal::WireFormatLite;
    ChatRequest head;
    head.set_type("history");
    head.set_room(room);
    head.set_timestamp(stamp);
    std::string bytes = head.SerializeAsString();
    {
        google::protobuf::io::StringOutputStream stream(&bytes);
        google::protobuf::io::CodedOutputStream out(&stream);
        // Field 8 (history), length-delimited: the tag, the length, and the
        // message's own bytes, exactly as serialising the message would.
        const auto tag = WireFormatLite::MakeTag(ChatRequest::kHistoryFieldNumber,
                                                 WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
        for (const auto& message : messages) {
            out.WriteTag(tag);
            out.WriteVarint32(static_cast<std::uint32_t>(message->size()));
            out.WriteRaw(message->data(), static_cast<int>(message->size()));
        }
    }
    return std::make_shared<const std::string>(std::move(bytes));
}

std::string new_epoch() {
    // 64 random bits in hex: two histories sharing one is out of reach.
    std::random_device random;
    constexpr std::string_view digits = "0123456789abcdef";
    std::string epoch;
    for (int word = 0; word < 2; ++word) {
        auto bits = random();
        for (int i = 0; i < 8; ++i, bits >>= 4) {
            epoch.push_back(digits[bits & 0xF]);
        }
    }
    return epoch;
}

}  // namespace chat::hub
