// Rule 7: the token bucket and the flood limit.
#include <boost/test/unit_test.hpp>

#include "chat/session/rate_limiter.hpp"

using chat::session::RateLimiter;
using Verdict = RateLimiter::Verdict;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(rate_limiter)

BOOST_AUTO_TEST_CASE(a_full_burst_passes_then_frames_are_rejected) {
    RateLimiter limiter(20, 40, 200);
    const auto t = RateLimiter::Clock::time_point{} + 1h;
    for (int i = 0; i < 40; ++i) {
        BOOST_TEST_REQUIRE((limiter.admit(t) == Verdict::accept), "frame " << i);
    }
    BOOST_TEST((limiter.admit(t) == Verdict::reject));
}

BOOST_AUTO_TEST_CASE(tokens_come_back_at_the_rate) {
    RateLimiter limiter(20, 40, 200);
    auto t = RateLimiter::Clock::time_point{} + 1h;
    for (int i = 0; i < 40; ++i) {
        limiter.admit(t);
    }
    BOOST_TEST((limiter.admit(t) == Verdict::reject));
    t += 50ms;  // one token at 20/s
    BOOST_TEST((limiter.admit(t) == Verdict::accept));
    BOOST_TEST((limiter.admit(t) == Verdict::reject));
    t += 1s;  // twenty
    for (int i = 0; i < 20; ++i) {
        BOOST_TEST_REQUIRE((limiter.admit(t) == Verdict::accept), "frame " << i);
    }
    BOOST_TEST((limiter.admit(t) == Verdict::reject));
}

BOOST_AUTO_TEST_CASE(flooding_past_the_limit_disconnects) {
    RateLimiter limiter(20, 40, 200);
    const auto t = RateLimiter::Clock::time_point{} + 1h;
    for (int i = 0; i < 40; ++i) {
        limiter.admit(t);
    }
    for (int i = 0; i < 200; ++i) {
        BOOST_TEST_REQUIRE((limiter.admit(t) == Verdict::reject), "rejected frame " << i);
    }
    BOOST_TEST((limiter.admit(t) == Verdict::disconnect));
}

BOOST_AUTO_TEST_CASE(a_client_that_calms_down_starts_a_new_count) {
    RateLimiter limiter(20, 40, 10);
    auto t = RateLimiter::Clock::time_point{} + 1h;
    for (int i = 0; i < 40 + 10; ++i) {
        limiter.admit(t);  // burst, then 10 rejected
    }
    t += 2s;  // the whole burst is back
    for (int i = 0; i < 40; ++i) {
        BOOST_TEST_REQUIRE((limiter.admit(t) == Verdict::accept));
    }
    for (int i = 0; i < 10; ++i) {
        BOOST_TEST_REQUIRE((limiter.admit(t) == Verdict::reject), "rejected frame " << i);
    }
    BOOST_TEST((limiter.admit(t) == Verdict::disconnect));
}

BOOST_AUTO_TEST_CASE(rate_zero_switches_the_limit_off) {
    RateLimiter limiter(0, 40, 0);
    const auto t = RateLimiter::Clock::time_point{} + 1h;
    for (int i = 0; i < 10'000; ++i) {
        BOOST_TEST_REQUIRE((limiter.admit(t) == Verdict::accept));
    }
}

BOOST_AUTO_TEST_SUITE_END()
