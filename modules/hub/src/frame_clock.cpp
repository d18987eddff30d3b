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

std::int64_t FrameClock::now_ms() noexcept {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t FrameClock::begin_fan_out() noexcept {
    auto state = state_.load();
    for (;;) {
        // max(): the wall clock may step back; the stamps never do.
        const auto stamp = std::max(stamp_of(state), static_cast<std::uint64_t>(now_ms()));
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
        const auto stamp = std::max(stamp_of(state), static_cast<std::uint64_t>(now_ms()));
        if (stamp == stamp_of(state) || state_.compare_exchange_weak(state, stamp << 1)) {
            return static_cast<std::int64_t>(stamp);
        }
    }
}

}  // namespace chat::hub
