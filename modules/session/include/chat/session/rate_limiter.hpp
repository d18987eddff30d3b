#pragma once
// Rule 7: a token bucket per connection, and the flood limit behind it.

#include <chrono>
#include <optional>

namespace chat::session {

/// `rate` tokens a second up to `burst`; a frame takes one. A frame finding no
/// token is rejected; a client that keeps sending regardless is told to go
/// after `flood_limit` rejected frames. The count starts again once the client
/// has been quiet long enough to refill its whole burst. A rate of 0 admits all.
class RateLimiter {
  public:
    using Clock = std::chrono::steady_clock;
    enum class Verdict { accept, reject, disconnect };

    RateLimiter(double rate, double burst, unsigned flood_limit) noexcept;

    Verdict admit(Clock::time_point now) noexcept;

  private:
    double rate_;
    double burst_;
    unsigned flood_limit_;
    double tokens_;
    unsigned rejected_ = 0;
    std::optional<Clock::time_point> last_;
};

}  // namespace chat::session
