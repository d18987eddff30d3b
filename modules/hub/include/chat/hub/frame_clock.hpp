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
///
/// In a cluster (rule 15) a message is stamped once, by the sequencer, and
/// every node sends that stamp. A node's own frames must then never run ahead
/// of a message still on its way from the sequencer, so a sequenced clock
/// does not read the wall clock at all: it moves only with the sequencer's
/// time (the events applied, and the sequencer's word that nothing is pending).
class FrameClock {
  public:
    enum class Source { wall, sequencer };
    /// A sequenced clock starts a second behind the wall clock: frames a node
    /// sends before it first hears from the sequencer need a stamp, and one
    /// that is not ahead of the sequencer's first (clocks a second apart are
    /// out of the question on one network).
    explicit FrameClock(Source source = Source::wall) noexcept;

    /// The hub, before pushing a frame to queues: its timestamp, at least `floor`.
    std::int64_t begin_fan_out(std::int64_t floor = 0) noexcept;
    /// The hub, after the last push of that frame.
    void end_fan_out() noexcept;
    /// A session, for a frame of its own; call it under the destination queue's
    /// lock and push the frame before releasing it (FrameQueue does this).
    std::int64_t stamp_local() noexcept;
    /// The hub: no frame stamped from now on is below `floor`.
    void advance(std::int64_t floor) noexcept;

  private:
    std::uint64_t now_ms() const noexcept;
    const Source source_;
    std::atomic<std::uint64_t> state_{0};  // (stamp << 1) | fan-out running
};

/// begin_fan_out() .. end_fan_out() for a scope.
class FanOut {
  public:
    explicit FanOut(FrameClock& clock, std::int64_t floor = 0) noexcept
        : clock_(clock), stamp_(clock.begin_fan_out(floor)) {}
    ~FanOut() { clock_.end_fan_out(); }
    FanOut(const FanOut&) = delete;
    FanOut& operator=(const FanOut&) = delete;
    std::int64_t stamp() const noexcept { return stamp_; }

  private:
    FrameClock& clock_;
    std::int64_t stamp_;
};

}  // namespace chat::hub
