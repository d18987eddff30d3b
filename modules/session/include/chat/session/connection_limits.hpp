#pragma once
// Admission of connections, so that one host or a crowd cannot take every
// file descriptor: at most `max_per_address` TCP connections (HTTP or chat)
// from one address, checked at accept, and at most `max_connections` chat
// connections in all, checked at the WebSocket upgrade. 0 switches a limit
// off. Thread-safe; a Ticket gives its place back when it is destroyed.

#include <atomic>
#include <cstddef>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace chat::session {

class ConnectionLimits {
  public:
    ConnectionLimits(std::size_t max_connections, std::size_t max_per_address) noexcept
        : max_connections_(max_connections), max_per_address_(max_per_address) {}
    ConnectionLimits(const ConnectionLimits&) = delete;
    ConnectionLimits& operator=(const ConnectionLimits&) = delete;

    /// One admitted connection; moves, never copies. The limits must outlive it.
    class Ticket {
      public:
        Ticket() noexcept = default;
        Ticket(Ticket&& other) noexcept;
        Ticket& operator=(Ticket&& other) noexcept;
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        ~Ticket();

      private:
        friend class ConnectionLimits;
        enum class Kind { none, address, chat };
        Ticket(ConnectionLimits* limits, Kind kind,
               const boost::asio::ip::address& address) noexcept
            : limits_(limits), kind_(kind), address_(address) {}
        void release() noexcept;

        ConnectionLimits* limits_ = nullptr;
        Kind kind_ = Kind::none;
        boost::asio::ip::address address_;
    };

    /// A place for a connection from `address`; nullopt if it has its share.
    std::optional<Ticket> admit_address(const boost::asio::ip::address& address);
    /// A place for a chat connection; nullopt if the server is full.
    std::optional<Ticket> admit_chat() noexcept;

    std::size_t chat_connections() const noexcept {
        return chat_connections_.load(std::memory_order_relaxed);
    }
    /// Addresses with at least one connection (the map never holds more).
    std::size_t addresses() const;

  private:
    const std::size_t max_connections_;
    const std::size_t max_per_address_;
    std::atomic<std::size_t> chat_connections_{0};
    mutable std::mutex mutex_;  // per_address_ only: taken once per accept and close
    std::unordered_map<boost::asio::ip::address, std::size_t> per_address_;
};

}  // namespace chat::session
