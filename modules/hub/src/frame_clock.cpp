#include "chat/hub/frame_clock.hpp"

#include <algorithm>
#include <chrono>

namespace chat::hub {

namespace {
constexpr std::uint64_t running = 1;
std::uint64_t stamp_of(std::uint64_t state) {
    return state >> 1;
}
}  // namespace

FrameClock::FrameClock(Source source) noexcept : source_(source) {
    if (source_ == Source::sequencer) {
        using namespace std::chrono;
        const auto behind = system_clock::now() - seconds(1);
        state_ = static_cast<std::uint64_t>(
                     duration_cast<milliseconds>(behind.time_since_epoch()).count())
                 << 1;
    }
}

std::uint64_t FrameClock::now_ms() const noexcept {
    if (source_ == Source::sequencer) {
        return 0;  // only what the sequencer said counts
    }
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::int64_t FrameClock::begin_fan_out(std::int64_t floor) noexcept {
    auto state = state_.load();
    for (;;) {
        // max(): the wall clock may step back; the stamps never do.
        const auto stamp = std::max({stamp_of(state), now_ms(),
                                     static_cast<std::uint64_t>(std::max<std::int64_t>(floor, 0))});
        if (state_.compare_exchange_weak(state, (stamp << 1) | running)) {
            return static_cast<std::int64_t>(stamp);
        }
    }
}

void FrameClock::end_fan_out() noexcept {
    state_.fetch_and(~running);
}

std::int64_t FrameClock::stamp_local() noexcept {
    auto state = state_.load();
    for (;;) {
        if ((state & running) != 0) {
            return static_cast<std::int64_t>(stamp_of(state));
        }
        const auto stamp = std::max(stamp_of(state), now_ms());
        if (stamp == stamp_of(state) || state_.compare_exchange_weak(state, stamp << 1)) {
            return static_cast<std::int64_t>(stamp);
        }
    }
}

void FrameClock::advance(std::int64_t floor) noexcept {
    const auto wanted = static_cast<std::uint64_t>(std::max<std::int64_t>(floor, 0));
    auto state = state_.load();
    while (stamp_of(state) < wanted &&
           !state_.compare_exchange_weak(state, (wanted << 1) | (state & running))) {
    }
}

}  // namespace chat::hub
