#include "chat/hub/welcome_list.hpp"

#include "chat/chat.pb.h"

namespace chat::hub {

void WelcomeList::join(const std::string& name, const std::string& joined) {
    if (const auto old = by_name_.find(name); old != by_name_.end()) {
        remove(old->second);
    }
    // protobuf writes the entry: a ChatRequest whose only field is this one
    // user_list entry is exactly that entry's bytes.
    ChatRequest one;
    (*one.mutable_user_list())[name] = joined;
    const auto entry = one.SerializeAsString();
    order_.push_back(Entry{name, bytes_.size(), entry.size()});
    bytes_.append(entry);
    by_name_.emplace(order_.back().name, std::prev(order_.end()));

    if (order_.size() > limit_) {
        const auto oldest = order_.begin();
        start_ = oldest->offset + oldest->size;
        by_name_.erase(oldest->name);
        order_.erase(oldest);
    }
    // The bytes that fell off are reclaimed once they outweigh the rest.
    if (start_ > 0 && start_ >= bytes_.size() - start_) {
        bytes_.erase(0, start_);
        for (auto& listed : order_) {
            listed.offset -= start_;
        }
        start_ = 0;
    }
}

void WelcomeList::leave(const std::string& name) {
    if (const auto entry = by_name_.find(name); entry != by_name_.end()) {
        remove(entry->second);
    }
}

void WelcomeList::remove(std::list<Entry>::iterator entry) {
    bytes_.erase(entry->offset, entry->size);
    for (auto later = std::next(entry); later != order_.end(); ++later) {
        later->offset -= entry->size;
    }
    by_name_.erase(entry->name);
    order_.erase(entry);
}

void WelcomeList::clear() {
    bytes_.clear();
    start_ = 0;
    by_name_.clear();
    order_.clear();
}

}  // namespace chat::hub
