#include "chat/session/connection_limits.hpp"

#include <utility>

namespace chat::session {

ConnectionLimits::Ticket::Ticket(Ticket&& other) noexcept
    : limits_(std::exchange(other.limits_, nullptr)),
      kind_(std::exchange(other.kind_, Kind::none)),
      address_(std::move(other.address_)) {}

ConnectionLimits::Ticket& ConnectionLimits::Ticket::operator=(Ticket&& other) noexcept {
    if (this != &other) {
        release();
        limits_ = std::exchange(other.limits_, nullptr);
        kind_ = std::exchange(other.kind_, Kind::none);
        address_ = std::move(other.address_);
    }
    return *this;
}

ConnectionLimits::Ticket::~Ticket() {
    release();
}

void ConnectionLimits::Ticket::release() noexcept {
    if (limits_ == nullptr) {
        return;
    }
    if (kind_ == Kind::chat) {
        limits_->chat_connections_.fetch_sub(1, std::memory_order_relaxed);
    } else if (kind_ == Kind::address) {
        const std::scoped_lock lock(limits_->mutex_);
        const auto it = limits_->per_address_.find(address_);
        if (it != limits_->per_address_.end() && --it->second == 0) {
            limits_->per_address_.erase(it);
        }
    }
    limits_ = nullptr;
    kind_ = Kind::none;
}

std::optional<ConnectionLimits::Ticket> ConnectionLimits::admit_address(
    const boost::asio::ip::address& address) {
    if (max_per_address_ == 0) {
        return Ticket{};
    }
    const std::scoped_lock lock(mutex_);
    auto& count = per_address_[address];
    if (count >= max_per_address_) {
        return std::nullopt;  // count >= 1 here: the entry was there before
    }
    ++count;
    return Ticket{this, Ticket::Kind::address, address};
}

std::optional<ConnectionLimits::Ticket> ConnectionLimits::admit_chat() noexcept {
    if (max_connections_ == 0) {
        chat_connections_.fetch_add(1, std::memory_order_relaxed);
        return Ticket{this, Ticket::Kind::chat, {}};
    }
    auto current = chat_connections_.load(std::memory_order_relaxed);
    do {
        if (current >= max_connections_) {
            return std::nullopt;
        }
    } while (
        !chat_connections_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
    return Ticket{this, Ticket::Kind::chat, {}};
}

std::size_t ConnectionLimits::addresses() const {
    const std::scoped_lock lock(mutex_);
    return per_address_.size();
}

}  // namespace chat::session
