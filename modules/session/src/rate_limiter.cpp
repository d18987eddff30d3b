#include "chat/session/rate_limiter.hpp"

#include <algorithm>

namespace chat::session {

RateLimiter::RateLimiter(double rate, double burst, unsigned flood_limit) noexcept
    : rate_(rate), burst_(std::max(burst, 1.0)), flood_limit_(flood_limit), tokens_(burst_) {}

RateLimiter::Verdict RateLimiter::admit(Clock::time_point now) noexcept {
    if (rate_ <= 0) {
        return Verdict::accept;
    }
    if (last_ && now > *last_) {
        const std::chrono::duration<double> elapsed = now - *last_;
        tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
    }
    last_ = now;
    if (tokens_ >= burst_) {
        rejected_ = 0;  // calm again
    }
    if (tokens_ >= 1) {
        tokens_ -= 1;
        return Verdict::accept;
    }
    return ++rejected_ > flood_limit_ ? Verdict::disconnect : Verdict::reject;
}

}  // namespace chat::session
