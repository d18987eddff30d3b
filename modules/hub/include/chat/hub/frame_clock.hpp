#pragma once
// Timestamps of outgoing frames: never decreasing on any connection.

#include <atomic>
#include <cstdint>

namespace chat::hub {

/// The contract wants every frame's timestamp (ms since the epoch) to never
/// decrease on a connection. The hub stamps a broadcast once and then pushes it
/// into every recipient's queue, which takes a while; meanwhile a session may
/// queue a frame of its own (an error, a heartbeat answer). Stamped with the
/// wall clock, that frame could carry a later time than a broadcast still on its
/// way to the same queue. So while a fan-out runs, local frames take the
/// fan-out's stamp; otherwise the clock's. Lock-free; one word of state.
class FrameClock {
  public:
    /// The hub, before pushing a frame to queues: its timestamp.
    std::int64_t begin_fan_out() noexcept;
    /// The hub, after the last push of that frame.
    void end_fan_out() noexcept;
    /// A session, for a frame of its own; call it under the destination queue's
    /// lock and push the frame before releasing it (FrameQueue does this).
    std::int64_t stamp_local() noexcept;

  private:
    static std::int64_t now_ms() noexcept;
    std::atomic<std::uint64_t> state_{0};  // (stamp << 1) | fan-out running
};

/// begin_fan_out() .. end_fan_out() for a scope.
class FanOut {
  public:
    explicit FanOut(FrameClock& clock) noexcept : clock_(clock), stamp_(clock.begin_fan_out()) {}
    ~FanOut() { clock_.end_fan_out(); }
    FanOut(const FanOut&) = delete;
    FanOut& operator=(const FanOut&) = delete;
    std::int64_t stamp() const noexcept { return stamp_; }

  private:
    FrameClock& clock_;
    std::int64_t stamp_;
};

}  // namespace chat::hub
